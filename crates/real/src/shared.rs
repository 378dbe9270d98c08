//! What one child's transport and its pumps share: the model, the buffers of the pipes the
//! parent writes, the terminal, and the count of live pumps.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{
    implement::{CloseAction, Delivery, Dispatcher, ProcessModel},
    ChildFd, Signal, TransportError,
};
use tokio::sync::Notify;

use crate::buffers;
use crate::sys::{self, ChildHandle, PipeHandle};

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) dispatcher: Dispatcher,
    /// One per pipe: wakes its pump after a write, a close, a pause or a resume.
    pub(crate) wakers: BTreeMap<ChildFd, Notify>,
    /// Present until the child is reaped; dropped then (under this lock, which signals take,
    /// so no signal reaches a process that reused the pid), and a pidfd is not kept by a cycle.
    pub(crate) child: Mutex<Option<ChildHandle>>,
    /// How many pump tasks still own a pipe end or the child's handle.
    pub(crate) live_pumps: AtomicUsize,
    /// Notified when the last pump is gone.
    pub(crate) pumps_done: Notify,
}

/// Counts one pump as live until dropped, when the task ends and its fds are closed.
pub(crate) struct PumpGuard(pub(crate) Arc<Shared>);

impl PumpGuard {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        shared.live_pumps.fetch_add(1, Ordering::SeqCst);
        PumpGuard(shared.clone())
    }
}

impl Drop for PumpGuard {
    fn drop(&mut self) {
        if self.0.live_pumps.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.pumps_done.notify_waiters();
        }
    }
}

pub(crate) struct State {
    pub(crate) model: ProcessModel,
    /// Bytes written by the parent and not yet taken by the pipe, per parent-writes fd.
    pub(crate) buffers: BTreeMap<ChildFd, OutBuffer>,
    /// The open parent-writes pipes, shared with their pumps; a write into an empty buffer
    /// goes straight to the pipe.
    pub(crate) senders: BTreeMap<ChildFd, Arc<sys::Sender>>,
    /// The open parent-reads pipes. Only the state owns them, so that closing one closes its
    /// fd at once: the child's next write there fails, as with any closed pipe.
    pub(crate) receivers: BTreeMap<ChildFd, sys::Receiver>,
    /// The pipes made larger.
    pub(crate) growth: PipeGrowth,
    /// The parent's side of the child's terminal, when fds 0, 1 and 2 are one.
    pub(crate) terminal: Option<TerminalSide>,
}

/// What the transport keeps of a child's terminal besides its two fds.
pub(crate) struct TerminalSide {
    /// The last byte written ended a line (or nothing was written): ending the input takes
    /// one `VEOF`, not two.
    at_line_start: bool,
    /// The master side, kept open from the end of the child's output until its exit is
    /// reaped, as a terminal emulator keeps its window: closing it sooner would hang up (send
    /// `SIGHUP` to) a child that closed its fds and has not exited yet.
    held_open: Option<sys::Receiver>,
}

impl Default for TerminalSide {
    fn default() -> Self {
        TerminalSide {
            at_line_start: true,
            held_open: None,
        }
    }
}

/// How many pipes this process keeps grown at once: at 1 MiB each, a quarter of the default
/// per-user soft limit on pipe memory (`/proc/sys/fs/pipe-user-pages-soft`, 64 MiB). Past that
/// limit the kernel makes every new pipe of the user, in any process, two pages small; many
/// busy children at once must not do that to the user's other pipes.
const MAX_GROWN: usize = 16;

/// The pipes of this process that are grown now.
static GROWN: AtomicUsize = AtomicUsize::new(0);

/// The pipes of one child that are grown now. A pipe grows once, the first time it is found
/// full, while the process is under [`MAX_GROWN`]; its share of the budget comes back when its
/// pump ends (the pipe is closed), or at the latest when the child's state is dropped.
pub(crate) struct PipeGrowth {
    grown: Vec<ChildFd>,
    /// Pipes may grow at all (not on the portable path).
    enabled: bool,
}

impl PipeGrowth {
    /// The pipes of a new child: none grown; none may grow unless `enabled`.
    pub(crate) fn new(enabled: bool) -> Self {
        PipeGrowth {
            grown: Vec::new(),
            enabled,
        }
    }

    /// The pipe of `fd` is full: makes it larger if it never grew and the budget allows.
    /// Returns whether it grew now.
    pub(crate) fn full(&mut self, fd: ChildFd, end: &impl PipeHandle) -> bool {
        if !self.enabled || self.grown.contains(&fd) {
            return false;
        }
        let reserved = GROWN.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
            (now < MAX_GROWN).then_some(now + 1)
        });
        if reserved.is_err() {
            return false;
        }
        // Refused by the kernel or not, the pipe is not tried again.
        self.grown.push(fd);
        sys::grow_pipe(end);
        true
    }

    /// The pipe of `fd` is closed: its share of the budget comes back.
    pub(crate) fn closed(&mut self, fd: ChildFd) {
        if let Some(at) = self.grown.iter().position(|&grown| grown == fd) {
            self.grown.swap_remove(at);
            GROWN.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for PipeGrowth {
    fn drop(&mut self) {
        GROWN.fetch_sub(self.grown.len(), Ordering::SeqCst);
    }
}

impl State {
    /// Closes `fd` as the parent: write pipes are flushed by their pump first; read pipes
    /// close here and now.
    pub(crate) fn close_child_fd(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        match self.model.close_child_fd(fd, out) {
            // A terminal's output is drained until its input is closed too (see the read pump).
            CloseAction::StopReading if self.terminal.is_some() => {}
            CloseAction::StopReading => drop(self.receivers.remove(&fd)),
            CloseAction::FlushThenClose => {
                // A terminal's input ends as a user ends it: by typing end of file after what
                // is buffered. Its master side stays open while fd 1 is read.
                let Some(terminal) = &self.terminal else {
                    return;
                };
                if let Some(sender) = self.senders.get(&fd) {
                    let eof = sys::end_of_input(&**sender, terminal.at_line_start);
                    self.buffers.entry(fd).or_default().push(&eof);
                }
            }
            CloseAction::Nothing => {}
        }
    }

    /// End of file on the parent-reads side `fd` (on a terminal, `EIO`: every holder of the
    /// child's side closed it). The pipe closes and is lost; a terminal's input is lost with
    /// its output, fd 0 first, and its master side stays open until the exit is reaped.
    pub(crate) fn output_ended(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        let receiver = self.receivers.remove(&fd);
        if let Some(terminal) = self.terminal.as_mut() {
            if self.model.exit().is_none() {
                terminal.held_open = receiver;
            }
            if let Some(buffer) = self.buffers.get_mut(&ChildFd::STDIN) {
                buffer.clear();
            }
            self.model.pipe_lost(ChildFd::STDIN, out);
        }
        self.model.pipe_lost(fd, out);
    }

    /// The child is reaped (or nobody watches it any more): the terminal's master side, if it
    /// was held open, closes.
    pub(crate) fn close_terminal(&mut self) {
        if let Some(terminal) = self.terminal.as_mut() {
            terminal.held_open = None;
        }
    }
}

/// A byte queue that is consumed from the front without moving bytes on every write.
#[derive(Default)]
pub(crate) struct OutBuffer {
    bytes: Vec<u8>,
    start: usize,
}

impl OutBuffer {
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.bytes.capacity() == 0 {
            self.bytes = buffers::take(data.len());
        }
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Queues `data[start..]`, keeping `data` itself when nothing else is pending.
    pub(crate) fn push_owned(&mut self, data: Vec<u8>, start: usize) {
        if self.is_empty() {
            self.clear();
            self.bytes = data;
            self.start = start;
        } else {
            self.push(&data[start..]);
        }
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.bytes.len() {
            self.clear();
        }
    }

    /// Drops what is pending; the memory goes back to the kept buffers.
    pub(crate) fn clear(&mut self) {
        buffers::give(std::mem::take(&mut self.bytes));
        self.start = 0;
    }
}

impl Drop for OutBuffer {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Bytes the parent writes: lent by the caller, or handed over to be kept instead of copied.
pub(crate) enum Payload<'a> {
    Lent(&'a [u8]),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Lent(data) => data,
            Payload::Owned(data) => data,
        }
    }
}

impl State {
    /// Writes `data` to pipe `fd`: straight into the pipe while nothing is buffered, the rest
    /// into the buffer (an owned payload is kept there, not copied). Returns whether anything
    /// was buffered (the pump must run).
    pub(crate) fn write(
        &mut self,
        fd: ChildFd,
        payload: Payload<'_>,
        out: &mut Vec<Delivery>,
    ) -> Result<bool, TransportError> {
        if !self.model.admit_write(fd)? {
            // The child's end is gone, but the protocol has not been shown it yet.
            return Ok(false);
        }
        let data = payload.bytes();
        if let (Some(terminal), Some(&last)) = (self.terminal.as_mut(), data.last()) {
            terminal.at_line_start = matches!(last, b'\n' | b'\r' | 0x04);
        }
        let mut written = 0;
        let empty = self.buffers.get(&fd).is_none_or(OutBuffer::is_empty);
        if let Some(sender) = self.senders.get(&fd).filter(|_| empty).cloned() {
            // Twice at most: a write that fills the pipe makes it larger, once, and goes on.
            while written < data.len() {
                match sender.try_write(&data[written..]) {
                    Ok(n) => written += n,
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    // EPIPE: the child closed its end. These bytes are dropped, as the kernel
                    // drops what a pipe holds when its reader goes; the protocol learns of the
                    // loss from `child_connection_lost`, not from this call.
                    Err(_) => {
                        self.senders.remove(&fd);
                        self.model.pipe_lost(fd, out);
                        return Ok(false);
                    }
                }
                if written == data.len() || !self.growth.full(fd, &*sender) {
                    break;
                }
            }
        }
        if written == data.len() {
            self.model.wrote_through(fd, out);
            return Ok(false);
        }
        let buffer = self.buffers.entry(fd).or_default();
        match payload {
            Payload::Lent(data) => buffer.push(&data[written..]),
            Payload::Owned(data) => buffer.push_owned(data, written),
        }
        let buffered = buffer.len();
        self.model.set_buffered(fd, buffered, out);
        Ok(true)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs one step of the model and delivers what it produced (see `Dispatcher::act`).
    pub(crate) fn act<R>(&self, step: impl FnOnce(&mut State, &mut Vec<Delivery>) -> R) -> R {
        self.dispatcher.act(&self.state, step)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The child's handle, until it is reaped.
    pub(crate) fn child_slot(&self) -> MutexGuard<'_, Option<ChildHandle>> {
        lock(&self.child)
    }

    /// Wakes the pump of `fd`.
    pub(crate) fn wake(&self, fd: ChildFd) {
        if let Some(waker) = self.wakers.get(&fd) {
            waker.notify_waiters();
        }
    }

    /// Wakes every pump.
    pub(crate) fn wake_all(&self) {
        self.wakers.values().for_each(Notify::notify_waiters);
    }

    /// A callback of the protocol panicked: the child is killed and every pipe closed in this
    /// process, so that the exit is reaped, `process_ended` comes and `ended` resolves (and
    /// reports the panic).
    pub(crate) fn end_after_panic(&self) {
        if let Some(child) = self.child_slot().as_ref() {
            // Fails only when the child is already gone, which is the aim.
            let _ = child.signal(Signal::Kill);
        }
        self.act(|state, out| {
            state.buffers.clear();
            state.receivers.clear();
            state.close_terminal();
            let fds: Vec<ChildFd> = state.model.pipes().map(|(fd, _, _)| fd).collect();
            for fd in fds {
                state.model.pipe_lost(fd, out);
            }
        });
        self.wake_all();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::fd::AsFd;

    use process_transport_api::ChildFd;
    use rustix::pipe::{fcntl_getpipe_size, pipe};

    use super::{OutBuffer, PipeGrowth, MAX_GROWN};

    #[test]
    fn pipes_grow_once_each_and_no_more_than_the_budget_at_once() {
        // The only test of this binary that grows pipes: the process-wide count is its own.
        let pipes: Vec<_> = (0..=MAX_GROWN).map(|_| pipe().unwrap()).collect();
        let mut children: Vec<PipeGrowth> = pipes.iter().map(|_| PipeGrowth::new(true)).collect();
        let grew: Vec<bool> = children
            .iter_mut()
            .zip(&pipes)
            .map(|(child, (_, write))| child.full(ChildFd::STDIN, write))
            .collect();
        assert_eq!(grew.iter().filter(|&&grew| grew).count(), MAX_GROWN);
        assert!(!grew[MAX_GROWN], "the pipe past the budget keeps its size");
        let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .map_or(0, |max| max.trim().parse().unwrap_or(0));
        if max >= 1024 * 1024 {
            assert_eq!(fcntl_getpipe_size(pipes[0].1.as_fd()).unwrap(), 1024 * 1024);
        }
        // A pipe grows once: found full again, it is left alone.
        assert!(!children[0].full(ChildFd::STDIN, &pipes[0].1));
        // A closed pipe gives its share back; a child's dropped state gives back all of its.
        children[0].closed(ChildFd::STDIN);
        let last = &pipes[MAX_GROWN].1;
        assert!(children[MAX_GROWN].full(ChildFd::STDIN, last));
        assert!(!PipeGrowth::new(true).full(ChildFd::STDOUT, &pipes[0].0));
        drop(children.remove(1));
        assert!(PipeGrowth::new(true).full(ChildFd::STDOUT, &pipes[0].0));
    }

    #[test]
    fn an_out_buffer_hands_out_bytes_in_order_across_partial_consumes() {
        let mut buffer = OutBuffer::default();
        buffer.push(b"hello ");
        buffer.consume(2);
        buffer.push(b"world");
        assert_eq!(buffer.pending(), b"llo world");
        assert_eq!(buffer.len(), 9);
        // Past half consumed, the next push compacts without losing the pending bytes.
        buffer.consume(6);
        buffer.push(b"!");
        assert_eq!(buffer.pending(), b"rld!");
        buffer.consume(4);
        assert!(buffer.is_empty());
        buffer.push(b"again");
        buffer.clear();
        assert_eq!((buffer.len(), buffer.pending()), (0, &b""[..]));
    }

    #[test]
    fn an_owned_push_is_kept_when_nothing_is_pending_and_appended_behind_what_is() {
        let mut buffer = OutBuffer::default();
        let owned = b"skip:kept".to_vec();
        let address = owned.as_ptr();
        // The first five bytes went straight into the pipe.
        buffer.push_owned(owned, 5);
        assert_eq!(buffer.pending(), b"kept");
        assert_eq!(buffer.pending().as_ptr(), address.wrapping_add(5), "copied");
        buffer.push(b" lent");
        buffer.push_owned(b"xx owned".to_vec(), 2);
        assert_eq!(buffer.pending(), b"kept lent owned");
        buffer.consume(15);
        assert!(buffer.is_empty());
    }
}
