//! Twisted's `MemoryProcessTransport`, fixed: a process transport that records what the
//! protocol does to it and follows the shared rules of section 4.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use process_transport_api::{
    Address, ChildFd, ChildFdMapping, CloseAction, Delivery, Dispatcher, ProcessEnd, ProcessModel,
    ProcessProtocol, ProcessTransport, PushProducer, Signal, SpawnSpec, Transport, TransportError,
};

use crate::FakeChild;

/// The pid a [`MemoryProcessTransport`] reports unless given another.
pub const DEFAULT_PID: u32 = 1000;

/// A [`ProcessTransport`] with no process behind it, that records every call.
///
/// What it records, and how a test reads it back:
/// - the bytes written to each child fd: [`value`](Self::value) (fd 0) and
///   [`value_of`](Self::value_of);
/// - the fds the parent closed, in order: [`closed_child_fds`](Self::closed_child_fds);
/// - the signals sent, in order: [`signals`](Self::signals).
///
/// It knows its fd map: a write to an fd that is not a pipe the parent writes is
/// `Err(UnknownChildFd)`, a write after a close `Err(ChildFdClosed)`, a signal after the exit
/// `Err(ProcessExitedAlready)`; the rules are the workspace's one
/// [`ProcessModel`], which the real transport follows too.
///
/// The test plays the child through [`child`](Self::child): output on an fd, closing an fd,
/// exiting. Clones share state, so the test keeps one and hands one to the code under test.
///
/// ```
/// use process_transport_api::{ChildFd, ProcessTransport, Signal, Transport, TransportError};
/// use process_transport_fakes::MemoryProcessTransport;
///
/// let transport = MemoryProcessTransport::new();
/// transport.write(b"quit\n").unwrap();
/// transport.signal_process(Signal::Term).unwrap();
/// transport.close_stdin();
/// assert_eq!(transport.value(), b"quit\n");
/// assert_eq!(transport.signals(), [Signal::Term]);
/// assert_eq!(transport.closed_child_fds(), [ChildFd::STDIN]);
/// assert!(matches!(transport.write(b"more"), Err(TransportError::ChildFdClosed(ChildFd(0)))));
///
/// transport.child().exit(0);
/// assert_eq!(transport.pid(), None);
/// assert!(matches!(transport.signal_process(Signal::Kill), Err(TransportError::ProcessExitedAlready)));
/// ```
#[derive(Clone)]
pub struct MemoryProcessTransport {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<FakeState>,
    pub(crate) dispatcher: Dispatcher,
}

pub(crate) struct FakeState {
    pub(crate) model: ProcessModel,
    /// Every byte the parent wrote, per fd.
    pub(crate) written: BTreeMap<ChildFd, Vec<u8>>,
    /// Bytes the parent wrote that the child has not read yet, per fd.
    pub(crate) unread: BTreeMap<ChildFd, VecDeque<u8>>,
    pub(crate) closed: Vec<ChildFd>,
    pub(crate) signals: Vec<Signal>,
    /// Fds the child closed (its output there is over).
    pub(crate) child_closed: BTreeSet<ChildFd>,
    /// Output held while the transport is paused, delivered in order on resume.
    pub(crate) held: VecDeque<Held>,
}

pub(crate) enum Held {
    Data(ChildFd, Vec<u8>),
    Eof(ChildFd),
}

impl fmt::Debug for MemoryProcessTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryProcessTransport")
            .field("model", &state.model)
            .field("closed_child_fds", &state.closed)
            .field("signals", &state.signals)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryProcessTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryProcessTransport {
    /// A transport with the default fd map (0 written by the parent, 1 and 2 read) and pid
    /// [`DEFAULT_PID`], with no protocol.
    pub fn new() -> Self {
        Self::with_child_fds(SpawnSpec::new("fake").get_child_fds())
    }

    /// A transport with the fd map `child_fds` and pid [`DEFAULT_PID`], with no protocol.
    pub fn with_child_fds(child_fds: &BTreeMap<ChildFd, ChildFdMapping>) -> Self {
        Self::connected(child_fds, Some(DEFAULT_PID), None)
    }

    pub(crate) fn connected(
        child_fds: &BTreeMap<ChildFd, ChildFdMapping>,
        pid: Option<u32>,
        protocol: Option<Box<dyn ProcessProtocol>>,
    ) -> Self {
        MemoryProcessTransport {
            inner: Arc::new(Inner {
                state: Mutex::new(FakeState {
                    model: ProcessModel::new(child_fds, pid),
                    written: BTreeMap::new(),
                    unread: BTreeMap::new(),
                    closed: Vec::new(),
                    signals: Vec::new(),
                    child_closed: BTreeSet::new(),
                    held: VecDeque::new(),
                }),
                dispatcher: Dispatcher::new(protocol),
            }),
        }
    }

    /// Sets the pid [`pid`](ProcessTransport::pid) reports until the exit.
    pub fn set_pid(&self, pid: Option<u32>) {
        self.lock().model.set_pid(pid);
    }

    /// Sets the stdin high-water mark above which a push producer is paused (64 KiB by
    /// default).
    pub fn set_high_water(&self, bytes: usize) {
        self.lock().model.set_high_water(bytes);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Runs one step of the state machine and delivers what it produced.
    pub(crate) fn act<R>(&self, step: impl FnOnce(&mut FakeState, &mut Vec<Delivery>) -> R) -> R {
        self.inner.dispatcher.act(&self.inner.state, step)
    }

    /// The handle through which the test plays the child of this transport.
    pub fn child(&self) -> FakeChild {
        FakeChild::new(self.clone())
    }

    /// Every byte written to the child's stdin (fd 0).
    pub fn value(&self) -> Vec<u8> {
        self.value_of(ChildFd::STDIN)
    }

    /// Every byte written to child fd `fd`.
    pub fn value_of(&self, fd: ChildFd) -> Vec<u8> {
        self.lock().written.get(&fd).cloned().unwrap_or_default()
    }

    /// The fds the parent closed (by `close_child_fd`, `close_stdin` and the others, or
    /// `lose_connection`), in the order it closed them; a close that had no effect is not
    /// listed.
    pub fn closed_child_fds(&self) -> Vec<ChildFd> {
        self.lock().closed.clone()
    }

    /// The signals sent, in order; a refused one is not listed.
    pub fn signals(&self) -> Vec<Signal> {
        self.lock().signals.clone()
    }

    /// The registered producer and whether it is streaming.
    pub fn producer(&self) -> Option<(Arc<dyn PushProducer>, bool)> {
        self.lock().model.producer()
    }

    /// `true` while the transport, as a producer, is paused: the child's output is held.
    pub fn is_paused(&self) -> bool {
        self.lock().model.reading_paused()
    }

    /// The end reason, once `process_ended` was delivered.
    pub fn ended_now(&self) -> Option<ProcessEnd> {
        self.inner.dispatcher.ended_now()
    }
}

impl FakeState {
    pub(crate) fn close_child_fd(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        match self.model.close_child_fd(fd, out) {
            CloseAction::Nothing => return,
            // The fake's pipe takes every byte at once: the flush is already done.
            CloseAction::FlushThenClose => self.model.pipe_lost(fd, out),
            CloseAction::StopReading => {}
        }
        self.closed.push(fd);
    }
}

impl Transport for MemoryProcessTransport {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.write_to_child(ChildFd::STDIN, data)
    }

    fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError> {
        self.write(&data.concat())
    }

    fn lose_connection(&self) {
        self.act(|state, out| {
            for fd in ProcessModel::LOSE_CONNECTION_ORDER {
                state.close_child_fd(fd, out);
            }
        });
    }

    /// The fake has no buffer to drop, so aborting is losing the connection.
    fn abort_connection(&self) {
        self.lose_connection();
    }

    fn host(&self) -> Address {
        Address::Process
    }

    fn peer(&self) -> Address {
        Address::Process
    }

    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError> {
        self.act(|state, out| state.model.register_producer(producer, streaming, out))
    }

    fn unregister_producer(&self) -> Result<(), TransportError> {
        self.lock().model.unregister_producer()
    }
}

impl PushProducer for MemoryProcessTransport {
    fn pause_producing(&self) {
        self.lock().model.set_reading_paused(true);
    }

    /// Resumes delivery and first delivers, in order, the output held while paused.
    fn resume_producing(&self) {
        self.act(|state, out| {
            state.model.set_reading_paused(false);
            while let Some(held) = state.held.pop_front() {
                match held {
                    Held::Data(fd, data) if state.model.is_readable(fd) => {
                        out.push(Delivery::ChildData(fd, data));
                    }
                    Held::Data(..) => {}
                    Held::Eof(fd) => state.model.pipe_lost(fd, out),
                }
            }
        });
    }

    /// As with Twisted's process transports, stopping is losing the connection.
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

#[async_trait]
impl ProcessTransport for MemoryProcessTransport {
    fn pid(&self) -> Option<u32> {
        self.lock().model.pid()
    }

    fn close_stdin(&self) {
        self.close_child_fd(ChildFd::STDIN);
    }

    fn close_stdout(&self) {
        self.close_child_fd(ChildFd::STDOUT);
    }

    fn close_stderr(&self) {
        self.close_child_fd(ChildFd::STDERR);
    }

    fn close_child_fd(&self, fd: ChildFd) {
        self.act(|state, out| state.close_child_fd(fd, out));
    }

    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError> {
        self.act(|state, out| {
            state.model.check_write(fd)?;
            state.written.entry(fd).or_default().extend(data);
            let unread = state.unread.entry(fd).or_default();
            unread.extend(data);
            let buffered = unread.len();
            state.model.set_buffered(fd, buffered, out);
            Ok(())
        })
    }

    fn signal_process(&self, signal: Signal) -> Result<(), TransportError> {
        let mut state = self.lock();
        state.model.check_signal()?;
        state.signals.push(signal);
        Ok(())
    }

    async fn ended(&self) -> ProcessEnd {
        self.inner.dispatcher.ended().await
    }
}
