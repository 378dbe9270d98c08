//! The test's side of a fake process: play the child of a [`MemoryProcessTransport`].

use std::any::Any;
use std::fmt;

use process_transport_api::{
    implement::{Delivery, PipeState},
    ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, PtySize, Signal, SpawnSpec,
    TransportError,
};

use crate::call_log::Shared;
use crate::downcast::{protocol_as, protocol_into};
use crate::explore::Pending;
use crate::fake_state::{FakeState, Held, Unread};
use crate::{MemoryProcessTransport, TerminalModes};

/// A handle through which a test plays the child of a [`MemoryProcessTransport`]: it writes
/// output on an fd, reads what the parent wrote, closes an fd, and exits. Each step delivers
/// the protocol's events in the order the real transport would (section 5), on the caller's
/// thread, before the method returns.
///
/// From a [`MemoryProcessReactor`](crate::MemoryProcessReactor) it also carries the
/// [`SpawnSpec`] and hands back the protocol as its concrete type.
///
/// ```
/// use process_transport_api::{ChildFd, ProcessEnd, Transport};
/// use process_transport_fakes::MemoryProcessTransport;
///
/// let transport = MemoryProcessTransport::new();
/// let child = transport.child();
/// transport.write(b"ping\n").unwrap();
/// assert_eq!(child.read(ChildFd::STDIN), b"ping\n");
/// child.write(ChildFd::STDOUT, b"pong\n").unwrap();
/// child.exit(3);
/// assert_eq!(transport.ended_now(), Some(ProcessEnd::from_exit_code(3)));
/// ```
#[derive(Clone)]
pub struct FakeChild {
    transport: MemoryProcessTransport,
}

const OWNER: &str = "FakeChild";

impl fmt::Debug for FakeChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(OWNER)
            .field("spec", &self.spec().command_line())
            .field("transport", &self.transport)
            .finish()
    }
}

impl FakeChild {
    pub(crate) fn new(transport: MemoryProcessTransport) -> Self {
        FakeChild { transport }
    }

    /// `true` when the child reads nothing on `fd`: it is the null device, or one of the
    /// parent's own fds, which a fake does not touch (its input is the test harness's, not
    /// the test's), so the child sees end of file at once.
    pub(crate) fn reads_nothing(&self, fd: ChildFd) -> bool {
        matches!(
            self.spec().get_child_fds().get(&fd),
            Some(ChildFdMapping::Null | ChildFdMapping::Inherit(_))
        )
    }

    /// `true` when `fd` is the null device or one of the parent's own fds: not a pipe, and
    /// writes on it succeed without reaching the protocol.
    fn swallows_writes(&self, fd: ChildFd) -> bool {
        matches!(
            self.spec().get_child_fds().get(&fd),
            Some(ChildFdMapping::Null | ChildFdMapping::Inherit(_))
        )
    }

    /// The spec this child was spawned with.
    pub fn spec(&self) -> &SpawnSpec {
        &self.transport.inner().spec
    }

    /// The transport the protocol holds (a clone sharing its state).
    pub fn transport(&self) -> MemoryProcessTransport {
        self.transport.clone()
    }

    /// The child writes `data` on `fd`, a pipe the parent reads; the protocol gets it as one
    /// `child_data_received`, or one per chunk when a chunk size is set (held while the
    /// transport is paused). An empty write delivers nothing.
    ///
    /// A write on an fd mapped to [`ChildFdMapping::Null`] succeeds and goes nowhere, as a
    /// write to `/dev/null` does; so does one on an inherited fd (the parent's own, which a
    /// fake does not touch). Fails with `UnknownChildFd` when `fd` is none of these nor a
    /// pipe the parent reads, and with `ChildFdClosed` once either side closed it, as a real
    /// child's write would fail.
    ///
    /// On a terminal (`use_pty`), fds 0, 1 and 2 all write to the terminal: the protocol gets
    /// the output as fd 1, as the terminal shows it (`\n` as `\r\n` while
    /// [`TerminalModes::crlf`] is on).
    pub fn write(&self, fd: ChildFd, data: impl AsRef<[u8]>) -> Result<(), TransportError> {
        let data = data.as_ref();
        if self.swallows_writes(fd) {
            return Ok(());
        }
        self.transport.act(|state, out| {
            if let Some(terminal) = state.terminal.as_ref() {
                if fd.0 > 2 {
                    return Err(TransportError::UnknownChildFd(fd));
                }
                if terminal.child_closed.contains(fd) || !state.model.is_readable(ChildFd::STDOUT) {
                    return Err(TransportError::ChildFdClosed(fd));
                }
                let shown = terminal.output(data);
                state.emit(ChildFd::STDOUT, &shown, out);
                return Ok(());
            }
            if state.model.pipe_mapping(fd) != Some(ChildFdMapping::ParentReads) {
                return Err(TransportError::UnknownChildFd(fd));
            }
            if state.child_closed.contains(fd) || !state.model.is_readable(fd) {
                return Err(TransportError::ChildFdClosed(fd));
            }
            state.emit(fd, data, out);
            Ok(())
        })
    }

    /// The size of the child's terminal (what `stty size` would print), as set at spawn or
    /// by the protocol's last `resize_pty`; `None` without `use_pty`.
    pub fn terminal_size(&self) -> Option<PtySize> {
        self.transport.pty_size()
    }

    /// The modes of the child's terminal; `None` without `use_pty`.
    pub fn terminal_modes(&self) -> Option<TerminalModes> {
        self.transport.lock().terminal.as_ref().map(|t| t.modes)
    }

    /// The child changes its terminal's modes, as `stty` would: `echo: false` for a password
    /// prompt, [`TerminalModes::PASSTHROUGH`] for a full-screen program.
    ///
    /// # Panics
    /// When the child has no terminal (spawned without `use_pty`).
    pub fn set_terminal_modes(&self, modes: TerminalModes) {
        let has_terminal = match self.transport.lock().terminal.as_mut() {
            Some(terminal) => {
                terminal.modes = modes;
                true
            }
            None => false,
        };
        if !has_terminal {
            self.transport.misuse(format!(
                "FakeChild::set_terminal_modes misuse: `{}` was spawned without use_pty",
                self.spec().command_line()
            ));
        }
    }

    /// Takes what the parent wrote on `fd` that the child has not read yet. Emptying stdin's
    /// buffer resumes a paused push producer and asks a pull producer for more.
    pub fn read(&self, fd: ChildFd) -> Vec<u8> {
        self.read_at_most(fd, usize::MAX)
    }

    /// Takes at most `max` of the bytes the parent wrote on `fd` that the child has not read
    /// yet: a slow reader, for simulated back-pressure.
    pub fn read_at_most(&self, fd: ChildFd, max: usize) -> Vec<u8> {
        self.take_unread(fd, |unread| unread.take(max))
            .unwrap_or_default()
    }

    /// What [`read`](Self::read) takes, shared rather than copied when it is one whole
    /// write: how a script reads.
    pub(crate) fn read_shared(&self, fd: ChildFd) -> Option<Shared> {
        self.take_unread(fd, Unread::take_all)
    }

    /// Takes from what the child has not read on `fd`, and shows the model what is left.
    fn take_unread<T: AsRef<[u8]>>(
        &self,
        fd: ChildFd,
        take: impl FnOnce(&mut Unread) -> T,
    ) -> Option<T> {
        self.transport.act(|state, out| {
            let unread = state.unread.get_mut(fd)?;
            let data = take(unread);
            let left = unread.len();
            if !data.as_ref().is_empty() {
                state.model.set_buffered(fd, left, out);
            }
            Some(data)
        })
    }

    /// How many bytes the parent wrote on `fd` that the child has not read yet.
    pub fn unread(&self, fd: ChildFd) -> usize {
        self.transport
            .lock()
            .unread
            .get(fd)
            .map_or(0, |bytes| bytes.len())
    }

    /// `true` when the child would see end of file on `fd`: the parent closed it (or the
    /// child did) and every byte was read, or `fd` is the null device or inherited from the
    /// parent (which a fake does not read).
    pub fn at_eof(&self, fd: ChildFd) -> bool {
        if self.reads_nothing(fd) {
            return true;
        }
        let state = self.transport.lock();
        let closed = state.model.pipe_mapping(fd) == Some(ChildFdMapping::ParentWrites)
            && !state.model.is_writable(fd);
        closed && state.unread.get(fd).is_none_or(|bytes| bytes.is_empty())
    }

    /// The child closes its end of `fd`. On a pipe the parent reads, the protocol gets
    /// `child_connection_lost` after the fd's data; on a pipe the parent writes, the
    /// protocol gets `child_connection_lost` and further writes fail with `ChildFdClosed`.
    /// No effect on an fd that is not a pipe or is closed already.
    ///
    /// On a terminal, the terminal hangs up once the child closed all of its fds 0, 1 and 2:
    /// the protocol then gets the loss of fd 0 and of fd 1, in that order.
    pub fn close(&self, fd: ChildFd) {
        self.transport.act(|state, out| state.child_close(fd, out));
    }

    /// After the protocol closes `fd` (a pipe it writes), its `child_connection_lost` waits
    /// until the child closes its end ([`close`](Self::close), or the end of the child), as
    /// with a real pipe whose last bytes are still on their way: other events may come
    /// between the close and the loss. By default the loss follows the close at once.
    ///
    /// ```
    /// use process_transport_api::{ChildFd, ProcessTransport, SpawnSpec};
    /// use process_transport_fakes::{DeliveredEvent, MemoryProcessReactor, Script};
    /// # struct P; impl process_transport_api::ProcessProtocol for P { fn make_connection(&mut self, _: std::sync::Arc<dyn process_transport_api::ProcessTransport>) {} }
    ///
    /// let reactor = MemoryProcessReactor::strict();
    /// reactor.register(["cat"], Script::new().start_with(|child| child.hold_flush(ChildFd::STDIN)));
    /// let child = reactor.spawn(Box::new(P), SpawnSpec::new("cat")).unwrap();
    /// child.transport().close_child_fd(ChildFd::STDIN);
    /// let lost = DeliveredEvent::ChildConnectionLost(ChildFd::STDIN);
    /// assert!(!child.transport().call_log().events().contains(&lost));
    /// child.close(ChildFd::STDIN);
    /// assert!(child.transport().call_log().events().contains(&lost));
    /// ```
    pub fn hold_flush(&self, fd: ChildFd) {
        self.transport.lock().flush_held.insert(fd);
    }

    /// The child exits with `code`, closing every fd it still holds first (in fd order):
    /// the protocol gets the remaining `child_connection_lost`s, `process_exited`, then
    /// `process_ended`.
    ///
    /// # Panics
    /// When the child already exited.
    pub fn exit(&self, code: i32) {
        self.end(ProcessEnd::from_exit_code(code));
    }

    /// The child is killed by `signal`, closing every fd it still holds first, as
    /// [`exit`](Self::exit) does. The signal's number is the Linux one.
    ///
    /// # Panics
    /// When the child already exited.
    pub fn kill(&self, signal: Signal) {
        self.end(ProcessEnd::from_signal(signal.linux_number()));
    }

    /// The child ends with `end`, closing every fd it still holds first.
    ///
    /// # Panics
    /// When the child already exited.
    pub fn end(&self, end: ProcessEnd) {
        let transport = self.transport.clone();
        self.transport.act(|state, out| {
            state.check_not_exited("end", &transport);
            let mut open: Vec<ChildFd> = state.model.pipes().map(|(fd, _, _)| fd).collect();
            if state.terminal.is_some() {
                open = vec![ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];
            }
            for fd in open {
                state.child_close(fd, out);
            }
            state.child_exited(end, out);
        });
    }

    /// The child's exit is reported while its fds stay open, as when a grandchild holds
    /// them: `process_ended` waits until they are closed.
    ///
    /// # Panics
    /// When the child already exited.
    pub fn exit_keeping_fds(&self, end: ProcessEnd) {
        let transport = self.transport.clone();
        self.transport.act(|state, out| {
            state.check_not_exited("exit_keeping_fds", &transport);
            state.child_exited(end, out);
        });
    }

    /// Runs `f` on the protocol as its concrete type `P`. Events that `f` causes (a call on
    /// the protocol's transport that closes a pipe or makes a script answer) are delivered
    /// after `f` returns, never under it.
    ///
    /// # Panics
    /// When there is no protocol (a transport made on its own, or taken), or it is not a `P`;
    /// and when called from inside one of the protocol's own callbacks (a misuse: the protocol
    /// is already borrowed there).
    pub fn with_protocol<P: ProcessProtocol, R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
        self.transport
            .inner()
            .dispatcher
            .with_protocol(|protocol| f(protocol_as::<P>(protocol, OWNER)))
            .unwrap_or_else(|| panic!("{OWNER}: the transport has no protocol"))
    }

    /// Takes the protocol back as its concrete type `P`; later events are dropped.
    ///
    /// # Panics
    /// When there is no protocol, or it is not a `P`.
    pub fn take_protocol<P: ProcessProtocol>(&self) -> Box<P> {
        let protocol: Box<dyn Any> = self
            .transport
            .inner()
            .dispatcher
            .take_protocol()
            .unwrap_or_else(|| panic!("{OWNER}: the transport has no protocol"));
        protocol_into::<P>(protocol, OWNER)
    }
}

impl FakeState {
    fn check_not_exited(&self, call: &str, transport: &MemoryProcessTransport) {
        if let Some(end) = self.child_exit() {
            transport.misuse(format!(
                "FakeChild::{call} misuse: the child already exited ({end})"
            ));
        }
    }

    pub(crate) fn child_close(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        if let Some(terminal) = self.terminal.as_mut() {
            if fd.0 > 2 {
                return;
            }
            let hang_up = terminal.child_close(fd);
            if fd == ChildFd::STDIN && self.model.pipe_state(fd) == Some(PipeState::Closing) {
                // The parent ended the input and its flush was held: the child took it.
                self.close_end(fd, out);
            }
            if hang_up {
                self.close_end(ChildFd::STDIN, out);
                self.close_end(ChildFd::STDOUT, out);
            }
            return;
        }
        self.close_end(fd, out);
    }

    /// The child's end of the pipe (or the terminal side) `fd` closes.
    fn close_end(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        let Some(mapping) = self.model.pipe_mapping(fd) else {
            return;
        };
        if !self.child_closed.insert(fd) {
            return;
        }
        if let Some((explorer, me)) = &self.explore {
            explorer.hold(me, Pending::Closed(fd));
            return;
        }
        self.closed_end_shown(fd, mapping, out);
    }

    /// The loss of `fd`, whose child end closed, reaches the protocol (held while paused).
    pub(crate) fn closed_end_shown(
        &mut self,
        fd: ChildFd,
        mapping: ChildFdMapping,
        out: &mut Vec<Delivery>,
    ) {
        if mapping == ChildFdMapping::ParentReads && self.model.reading_paused() {
            self.held.push_back(Held::Eof(fd));
        } else {
            self.model.pipe_lost(fd, out);
        }
    }
}
