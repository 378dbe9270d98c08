//! Twisted's `MemoryProcessTransport`, fixed: a process transport that records what the
//! protocol does to it and follows the shared rules of section 4.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use process_transport_api::{
    implement::{Delivery, Dispatcher, EventQueue, FdMap, FdSet, PipeState, ProcessModel},
    Address, ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, ProcessTransport, PtySize,
    PushProducer, Signal, SpawnSpec, Transport, TransportError,
};

use crate::call_log::{CallLog, Shared, StoredCall, TransportCall};
use crate::explore::{Explorer, ScriptEvent};
use crate::fake_state::{FakeState, Held};
use crate::terminal::Terminal;
use crate::{FakeChild, Script};

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
/// exiting; or a [`Script`] plays it. Every call and every delivered event is kept, in order, in
/// [`call_log`](Self::call_log). Clones share state, so the test keeps one and hands one to the
/// code under test.
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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<FakeState>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) spec: SpawnSpec,
    pub(crate) log: CallLog,
    pub(crate) script: Mutex<Option<Arc<Script>>>,
    /// What the script must react to, in order; never handled re-entrantly.
    pub(crate) script_events: EventQueue<ScriptEvent>,
    /// Where a misuse is kept for the test's thread (the reactor's), besides its panic.
    pub(crate) failures: std::sync::OnceLock<Arc<process_transport_api::implement::FailureSink>>,
    /// The explorer that holds this child's events, if one does.
    pub(crate) explorer: std::sync::OnceLock<Explorer>,
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
        Self::for_spec(SpawnSpec::new("fake"))
    }

    /// A transport with the fd map `child_fds` and pid [`DEFAULT_PID`], with no protocol.
    pub fn with_child_fds(child_fds: &BTreeMap<ChildFd, ChildFdMapping>) -> Self {
        let mut spec = SpawnSpec::new("fake");
        for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
            spec = spec.no_child_fd(fd);
        }
        for (&fd, &mapping) in child_fds {
            spec = spec.child_fd(fd, mapping);
        }
        Self::for_spec(spec)
    }

    /// A transport for a process spawned with `spec` (its fd map, and the spec its
    /// [`child`](Self::child) reports), pid [`DEFAULT_PID`], with no protocol.
    pub fn for_spec(spec: SpawnSpec) -> Self {
        Self::connected(spec, Some(DEFAULT_PID), None)
    }

    pub(crate) fn connected(
        spec: SpawnSpec,
        pid: Option<u32>,
        protocol: Option<Box<dyn ProcessProtocol>>,
    ) -> Self {
        let log = CallLog::default();
        let observer = log.clone();
        let dispatcher = Dispatcher::raising_panics(protocol).observed_by(Arc::new(
            move |delivery: &Delivery| observer.delivered(delivery),
        ));
        let mut model = ProcessModel::new(&spec.transport_fds(), pid);
        model.shown_by(&dispatcher);
        let terminal = spec
            .get_use_pty()
            .then(|| Terminal::new(spec.get_pty_size().unwrap_or_default()));
        let transport = MemoryProcessTransport {
            inner: Arc::new(Inner {
                state: Mutex::new(FakeState {
                    model,
                    written: FdMap::new(),
                    unread: FdMap::new(),
                    closed: Vec::new(),
                    signals: Vec::new(),
                    child_closed: FdSet::new(),
                    held: VecDeque::new(),
                    chunk_size: None,
                    flush_held: FdSet::new(),
                    terminal,
                    ended: None,
                    explore: None,
                }),
                dispatcher,
                spec,
                log,
                script: Mutex::new(None),
                script_events: EventQueue::new(),
                explorer: std::sync::OnceLock::new(),
                failures: std::sync::OnceLock::new(),
            }),
        };
        let weak = Arc::downgrade(&transport.inner);
        transport
            .inner
            .dispatcher
            .set_panic_handler(Some(Arc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    MemoryProcessTransport { inner }.end_after_panic();
                }
            })));
        transport
    }

    /// A callback of the protocol panicked: as the real transport does, the child is killed
    /// (`SIGKILL`, unless it had already exited) and every pipe is closed; its script stops.
    fn end_after_panic(&self) {
        self.script_slot().take();
        self.act(|state, out| {
            let fds: Vec<ChildFd> = state.model.pipes().map(|(fd, _, _)| fd).collect();
            for fd in fds {
                state.child_closed.insert(fd);
                state.model.pipe_lost(fd, out);
            }
            state.held.clear();
            let killed = ProcessEnd::from_signal(Signal::Kill.linux_number());
            state.model.process_exited(killed, out);
        });
    }

    /// Delivers the child's output in chunks of at most `bytes` (`Some(1)`: one byte at a
    /// time, to shake out framing bugs); `None` delivers each write whole (the default).
    pub fn set_chunk_size(&self, bytes: Option<usize>) {
        self.lock().chunk_size = bytes.map(|bytes| bytes.max(1));
    }

    /// The ordered log of calls on this transport and events it delivered.
    pub fn call_log(&self) -> CallLog {
        self.inner.log.clone()
    }

    /// The child's exit, once it exited (under an [`Explorer`], maybe before the protocol is
    /// shown it).
    pub fn exited(&self) -> Option<ProcessEnd> {
        self.lock().child_exit()
    }

    /// Logs `call`, runs it, and logs its error if it fails; events it causes follow it.
    fn logged<T>(
        &self,
        call: impl Into<StoredCall>,
        run: impl FnOnce() -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let index = self.inner.log.call(call);
        let result = run();
        if let Err(err) = &result {
            self.inner.log.failed(index, err.to_string());
        }
        result
    }

    /// Closes `fds` in one step, so that the child (a script) sees them all closed at once,
    /// as a real child does, and tells the script which of its inputs closed.
    fn close_fds(&self, fds: &[ChildFd]) {
        self.act(|state, out| {
            for &fd in fds {
                let was_open = state.model.pipe_state(fd) == Some(PipeState::Open);
                let writes = state.model.pipe_mapping(fd) == Some(ChildFdMapping::ParentWrites);
                if was_open && writes {
                    // A terminal's end of input (`VEOF`) first hands over an unfinished line.
                    let line = state.terminal.as_mut().map(Terminal::end_input);
                    if let Some(line) = line.filter(|line| !line.is_empty()) {
                        state.unread.get_or_default(fd).push(Arc::from(line));
                        self.queue_script_event(ScriptEvent::Written(fd));
                    }
                }
                state.close_child_fd(fd, out);
                if was_open && writes && state.model.pipe_state(fd) != Some(PipeState::Open) {
                    self.queue_script_event(ScriptEvent::Closed(fd));
                }
            }
            if state.parent_hung_up() {
                // The parent closed its side of the terminal: the kernel sends `SIGHUP`.
                self.queue_script_event(ScriptEvent::Signalled(Signal::Hup));
            }
        });
        self.run_script_events();
    }

    fn lose(&self) {
        self.close_fds(&ProcessModel::LOSE_CONNECTION_ORDER);
    }

    /// Records the write; the bytes reach the child unless its end is already gone (the
    /// protocol not having been shown that yet), when they are recorded and dropped.
    fn write_fd(&self, fd: ChildFd, data: Shared) -> Result<(), TransportError> {
        let result = self.act(|state, out| {
            let reaches_child = state.model.admit_write(fd)?;
            state.written.get_or_default(fd).push(data.clone());
            if !reaches_child {
                return Ok(());
            }
            let data = match state.terminal.as_mut() {
                Some(terminal) => {
                    let typed = terminal.type_in(&data);
                    state.emit(ChildFd::STDOUT, &typed.echo, out);
                    Arc::from(typed.input)
                }
                None => data,
            };
            if data.is_empty() {
                return Ok(());
            }
            let unread = state.unread.get_or_default(fd);
            unread.push(data);
            let buffered = unread.len();
            state.model.set_buffered(fd, buffered, out);
            self.queue_script_event(ScriptEvent::Written(fd));
            Ok(())
        });
        self.run_script_events();
        result
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

    /// Keeps the misuses of this child in `sink` too (the reactor's), so that one made on a
    /// task the test never joins still fails the test.
    pub(crate) fn report_failures_to(
        &self,
        sink: Arc<process_transport_api::implement::FailureSink>,
    ) {
        let _ = self.inner.failures.set(sink);
    }

    /// Panics with the misuse `text`, having kept it for the test's thread.
    pub(crate) fn misuse(&self, text: String) -> ! {
        if let Some(sink) = self.inner.failures.get() {
            sink.keep(text.clone());
        }
        panic!("{text}");
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

    /// The spec this transport's process was spawned with.
    pub fn spec(&self) -> &SpawnSpec {
        &self.inner.spec
    }

    /// Every byte written to the child's stdin (fd 0).
    pub fn value(&self) -> Vec<u8> {
        self.value_of(ChildFd::STDIN)
    }

    /// Every byte written to child fd `fd`.
    pub fn value_of(&self, fd: ChildFd) -> Vec<u8> {
        self.lock()
            .written
            .get(fd)
            .map(|writes| writes.concat())
            .unwrap_or_default()
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

    /// The size of the child's pseudo-terminal, as set at spawn or by the last
    /// `resize_pty`; `None` when it was spawned without `use_pty`.
    pub fn pty_size(&self) -> Option<PtySize> {
        self.lock().terminal.as_ref().map(|terminal| terminal.size)
    }
}

impl Transport for MemoryProcessTransport {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.write_to_child(ChildFd::STDIN, data)
    }

    fn lose_connection(&self) {
        self.inner.log.call(TransportCall::LoseConnection);
        self.lose();
    }

    /// The fake has no buffer to drop, so aborting is losing the connection.
    fn abort_connection(&self) {
        self.inner.log.call(TransportCall::AbortConnection);
        self.lose();
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
        self.logged(TransportCall::RegisterProducer { streaming }, || {
            self.act(|state, out| state.model.register_producer(producer, streaming, out))
        })
    }

    fn unregister_producer(&self) -> Result<(), TransportError> {
        self.logged(TransportCall::UnregisterProducer, || {
            self.act(|state, _| {
                let producer = state.model.unregister_producer()?;
                self.inner.dispatcher.forget_producer(&producer);
                Ok(())
            })
        })
    }
}

impl PushProducer for MemoryProcessTransport {
    fn pause_producing(&self) {
        self.inner.log.call(TransportCall::PauseProducing);
        self.lock().model.set_reading_paused(true);
    }

    /// Resumes delivery and first delivers, in order, the output held while paused.
    fn resume_producing(&self) {
        self.inner.log.call(TransportCall::ResumeProducing);
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
        self.inner.log.call(TransportCall::StopProducing);
        self.lose();
    }
}

#[async_trait]
impl ProcessTransport for MemoryProcessTransport {
    fn pid(&self) -> Option<u32> {
        self.lock().model.pid()
    }

    fn close_child_fd(&self, fd: ChildFd) {
        self.inner.log.call(TransportCall::CloseChildFd(fd));
        self.close_fds(&[fd]);
    }

    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError> {
        // The bytes are copied once, and shared by the log and the buffers.
        let data: Shared = Arc::from(data);
        self.logged(StoredCall::Write(fd, data.clone()), || {
            self.write_fd(fd, data)
        })
    }

    fn resize_pty(&self, size: PtySize) -> Result<(), TransportError> {
        self.logged(TransportCall::ResizePty(size), || {
            let mut state = self.lock();
            let terminal = state.terminal.as_mut().ok_or(TransportError::NoTerminal)?;
            terminal.size = size;
            Ok(())
        })
    }

    fn signal_process(&self, signal: Signal) -> Result<(), TransportError> {
        self.logged(TransportCall::SignalProcess(signal), || {
            {
                let mut state = self.lock();
                state.model.check_signal(signal)?;
                state.signals.push(signal);
                // Between the exit and its delivery the signal is accepted and goes nowhere.
                if state.model.signal_reaches_child() {
                    self.queue_script_event(ScriptEvent::Signalled(signal));
                }
            }
            self.run_script_events();
            Ok(())
        })
    }

    async fn ended(&self) -> ProcessEnd {
        self.inner.dispatcher.ended().await
    }
}
