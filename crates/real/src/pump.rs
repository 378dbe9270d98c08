//! The tasks that move bytes between the pipes and the model, and report the exit.

use std::future::{poll_fn, Future};
use std::io;
use std::sync::Arc;
use std::task::Poll;

use process_transport_api::{
    implement::{Delivery, PipeState},
    ChildFd, ProcessEnd,
};

use crate::buffers;
use crate::shared::{PumpGuard, Shared, State};
use crate::sys::{self, ChildHandle, ExitWatch, Status};

/// How much one read takes from a pipe at most.
const READ_CHUNK: usize = 256 * 1024;

/// How much the first read of a pipe takes: an idle or quiet child costs little memory, and
/// each read that fills the buffer makes it four times larger, up to [`READ_CHUNK`].
const FIRST_READ_CHUNK: usize = 4 * 1024;

enum Flush {
    /// Some bytes went out; try again.
    Progress,
    /// The pipe is full; wait until it is writable.
    Full,
    /// Nothing to write; wait for a write, a close, or the child closing its end.
    Idle,
    /// The parent closed the fd and everything is written: close it.
    Close,
    /// The pipe is gone.
    Gone,
}

impl State {
    fn flush(&mut self, fd: ChildFd, sender: &sys::Sender, out: &mut Vec<Delivery>) -> Flush {
        let state = match self.model.pipe_state(fd) {
            None | Some(PipeState::Lost) => return Flush::Gone,
            Some(state) => state,
        };
        let buffer = self.buffers.entry(fd).or_default();
        if buffer.is_empty() {
            return match state {
                PipeState::Closing => Flush::Close,
                _ => Flush::Idle,
            };
        }
        match sender.try_write(buffer.pending()) {
            Ok(n) => {
                buffer.consume(n);
                let left = buffer.len();
                self.model.set_buffered(fd, left, out);
                Flush::Progress
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Flush::Full,
            // EPIPE: the child closed its end; what is buffered can never be delivered.
            Err(_) => {
                buffer.clear();
                self.model.pipe_lost(fd, out);
                Flush::Gone
            }
        }
    }
}

/// Writes what the parent buffers for `fd` until the fd is closed by either side.
pub(crate) async fn write_pump(guard: PumpGuard, fd: ChildFd, sender: Arc<sys::Sender>) {
    pump_writes(&guard.0, fd, &sender).await;
    // The last owners of the pipe's write end: it closes before the guard counts this pump
    // as gone.
    let mut state = guard.0.lock();
    state.senders.remove(&fd);
    state.growth.closed(fd);
    let terminal = state.terminal.is_some();
    drop(state);
    drop(sender);
    if terminal {
        // The terminal's output side closes too if the parent closed it already.
        guard.0.wake(ChildFd::STDOUT);
    }
}

async fn pump_writes(shared: &Shared, fd: ChildFd, sender: &sys::Sender) {
    let Some(waker) = shared.wakers.get(&fd) else {
        return;
    };
    loop {
        let notified = waker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match shared.act(|state, out| state.flush(fd, sender, out)) {
            Flush::Progress => {}
            Flush::Full => {
                if shared.lock().growth.full(fd, sender) {
                    continue;
                }
                tokio::select! {
                    _ = sender.writable() => {}
                    _ = &mut notified => {}
                }
            }
            Flush::Idle => {
                tokio::select! {
                    // A write end reports an error once every reader closed the pipe.
                    _ = sys::hung_up(sender) => {
                        shared.act(|state, out| {
                            if let Some(buffer) = state.buffers.get_mut(&fd) {
                                buffer.clear();
                            }
                            state.model.pipe_lost(fd, out);
                        });
                        return;
                    }
                    _ = &mut notified => {}
                }
            }
            Flush::Close => {
                shared.act(|state, out| state.model.pipe_lost(fd, out));
                return;
            }
            Flush::Gone => return,
        }
    }
}

enum Read {
    /// This many bytes were read (and delivered, unless the parent closed the fd).
    Data(usize),
    Wait,
    Paused,
    Stop,
}

impl State {
    /// Reads at most `size` bytes into a buffer of their own, delivered as they are: no
    /// zeroing and no copy.
    fn read(&mut self, fd: ChildFd, size: usize, out: &mut Vec<Delivery>) -> Read {
        // The parent closed a terminal's output but still types on it: what the child prints
        // is read and dropped, so that it never blocks on a full terminal, and the terminal's
        // end is still seen.
        let deliver = self.model.is_readable(fd);
        if !deliver
            && (self.terminal.is_none()
                || self.model.pipe_state(ChildFd::STDIN) == Some(PipeState::Lost))
        {
            self.receivers.remove(&fd);
            return Read::Stop;
        }
        if deliver && self.model.reading_paused() {
            return Read::Paused;
        }
        let Some(receiver) = self.receivers.get(&fd) else {
            return Read::Stop;
        };
        // Given back to the kept buffers once the protocol has seen it (see `buffers`).
        let mut data = buffers::take(size);
        let read = match receiver.try_read_buf(&mut data) {
            Ok(n) if n > 0 => Read::Data(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Read::Wait,
            // End of file, or the pipe broke (`EIO` on a terminal whose child side is
            // closed): it closes before its loss is delivered.
            Ok(_) | Err(_) => Read::Stop,
        };
        match read {
            // A few bytes do not hold on to a large buffer while they are queued: they are
            // copied out, and the buffer goes straight back.
            Read::Data(n)
                if deliver && n <= FIRST_READ_CHUNK && data.capacity() > FIRST_READ_CHUNK =>
            {
                out.push(Delivery::ChildData(fd, data.to_vec()));
                buffers::give(data);
            }
            Read::Data(_) if deliver => out.push(Delivery::ChildData(fd, data)),
            Read::Stop => {
                buffers::give(data);
                self.output_ended(fd, out);
            }
            _ => buffers::give(data),
        }
        read
    }
}

/// Reads what the child writes on `fd` and delivers it, until end of file or a parent close.
/// The pipe belongs to the state; the pump only borrows it under the lock.
pub(crate) async fn read_pump(guard: PumpGuard, fd: ChildFd) {
    let shared = &guard.0;
    let Some(waker) = shared.wakers.get(&fd) else {
        return;
    };
    let mut size = FIRST_READ_CHUNK;
    loop {
        let notified = waker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match shared.act(|state, out| state.read(fd, size, out)) {
            Read::Data(n) if n >= size => {
                // A read that fills the buffer: the child writes a lot; larger reads, and a
                // larger pipe, cost less per byte.
                let state = &mut *shared.lock();
                if let Some(receiver) = state.receivers.get(&fd) {
                    state.growth.full(fd, receiver);
                }
                size = (size * 4).min(READ_CHUNK);
            }
            Read::Data(_) => {}
            Read::Wait => {
                let readable = poll_fn(|cx| match shared.lock().receivers.get(&fd) {
                    Some(receiver) => receiver.poll_read_ready(cx).map(|_| ()),
                    None => Poll::Ready(()),
                });
                tokio::select! {
                    _ = readable => {}
                    _ = &mut notified => {}
                }
            }
            Read::Paused => notified.await,
            Read::Stop => {
                shared.lock().growth.closed(fd);
                // On a terminal, fd 0's task learns that the terminal is gone.
                shared.wake(ChildFd::STDIN);
                return;
            }
        }
    }
}

/// What happens when the exit pump is dropped before it reaped the child (the tokio runtime
/// shut down while the child ran, maybe before the pump was ever polled): every pipe closes in
/// this process, as when a `tokio::process::Child`'s handles are dropped, and its loss is
/// reported; the child is reaped on a thread of its own, so it is not left a zombie, and its
/// exit is reported from there. So a child spawned on one runtime can be waited on another
/// (its `ended()` and a protocol waiting for the exit are served without any runtime).
struct Orphan {
    child: Option<ChildHandle>,
    shared: Arc<Shared>,
}

impl Orphan {
    /// The pump reaped the child: nothing is left to do on drop.
    fn reaped(&mut self) {
        self.child = None;
    }
}

impl Drop for Orphan {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            self.shared.act(|state, out| {
                let fds: Vec<ChildFd> = state
                    .senders
                    .keys()
                    .chain(state.receivers.keys())
                    .copied()
                    .collect();
                state.senders.clear();
                state.receivers.clear();
                state.buffers.clear();
                state.close_terminal();
                for fd in fds {
                    state.model.pipe_lost(fd, out);
                }
            });
            let shared = self.shared.clone();
            crate::sys::reap_orphan(child, move |status| {
                shared.act(|state, out| state.model.process_exited(end_of(Ok(status)), out));
            });
        }
    }
}

/// The end a reaped status stands for.
fn end_of(waited: io::Result<Status>) -> ProcessEnd {
    match waited {
        Ok((Some(code), _)) => ProcessEnd::from_exit_code(code),
        Ok((None, Some(signal))) => ProcessEnd::from_signal(signal),
        // Reaped elsewhere (someone called wait on every child): the end is unknown.
        Ok((None, None)) | Err(_) => ProcessEnd::Terminated {
            exit_code: None,
            signal: None,
        },
    }
}

/// Waits for the child's exit (woken by `watch`, made at the spawn, before the child could be
/// reaped), reaps it, then reports the exit. The orphan guard is made before the future is
/// first polled, so that it acts even then.
pub(crate) fn exit_pump(
    guard: PumpGuard,
    child: ChildHandle,
    watch: ExitWatch,
) -> impl Future<Output = ()> {
    let mut orphan = Orphan {
        child: Some(child.clone()),
        shared: guard.0.clone(),
    };
    async move {
        let shared = &guard.0;
        let waited = wait(shared, &child, watch).await;
        orphan.reaped();
        drop(child);
        let end = end_of(waited);
        shared.act(|state, out| {
            state.model.process_exited(end, out);
            state.close_terminal();
        });
    }
}

async fn wait(shared: &Shared, child: &ChildHandle, mut watch: ExitWatch) -> io::Result<Status> {
    loop {
        {
            let mut slot = shared.child_slot();
            let reaped = match child.try_reap() {
                Ok(None) => None,
                Ok(Some(status)) => Some(Ok(status)),
                Err(err) => Some(Err(err)),
            };
            if let Some(reaped) = reaped {
                slot.take();
                return reaped;
            }
        }
        watch.changed().await?;
    }
}
