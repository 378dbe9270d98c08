//! The rule book of section 4: per-fd state, errors, the producer and the exit, written once.
//!
//! [`ProcessModel`] holds no I/O. A driver (the fake's test handle, the real transport's
//! tokio tasks) tells it what happened and asks it what a call may do; the model answers with
//! errors and appends the [`Delivery`]s the protocol and the producer must receive. Both
//! drivers feed the same model, so the fake cannot drift from the real transport.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::shown::Shown;
use crate::{
    implement::{Dispatcher, FdMap},
    ChildFd, ChildFdMapping, ProcessEnd, ProcessTransport, PushProducer, Signal, TransportError,
};

/// The default high-water mark of a stdin buffer: above it a push producer is paused.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// One call a transport owes its protocol or its registered producer.
///
/// Drivers queue these (see [`Dispatcher`]) and deliver them one at a time,
/// outside every lock.
pub enum Delivery {
    /// `ProcessProtocol::make_connection`.
    MakeConnection(Arc<dyn ProcessTransport>),
    /// `ProcessProtocol::child_data_received`.
    ChildData(ChildFd, Vec<u8>),
    /// `ProcessProtocol::child_connection_lost`.
    ChildConnectionLost(ChildFd),
    /// `ProcessProtocol::process_exited`.
    ProcessExited(ProcessEnd),
    /// `ProcessProtocol::process_ended`.
    ProcessEnded(ProcessEnd),
    /// A call on the registered producer.
    Producer(Arc<dyn PushProducer>, ProducerCall),
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::MakeConnection(_) => f.write_str("MakeConnection"),
            Delivery::ChildData(fd, data) => f
                .debug_tuple("ChildData")
                .field(fd)
                .field(&String::from_utf8_lossy(data))
                .finish(),
            Delivery::ChildConnectionLost(fd) => {
                f.debug_tuple("ChildConnectionLost").field(fd).finish()
            }
            Delivery::ProcessExited(end) => f.debug_tuple("ProcessExited").field(end).finish(),
            Delivery::ProcessEnded(end) => f.debug_tuple("ProcessEnded").field(end).finish(),
            Delivery::Producer(_, call) => f.debug_tuple("Producer").field(call).finish(),
        }
    }
}

/// A call a transport makes on its registered producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProducerCall {
    /// `pause_producing`.
    Pause,
    /// `resume_producing`.
    Resume,
    /// `stop_producing`.
    Stop,
}

/// The state of one pipe in the fd map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PipeState {
    /// Open in both directions.
    Open,
    /// Closed by the parent; buffered bytes are still on their way to the child.
    Closing,
    /// Gone; `child_connection_lost` was queued for it.
    Lost,
}

/// What a driver must do after [`ProcessModel::close_child_fd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseAction {
    /// Nothing: the fd is not a pipe of this process, or was already closed.
    Nothing,
    /// Write out what is buffered for the fd, close it, then call
    /// [`ProcessModel::pipe_lost`].
    FlushThenClose,
    /// Stop reading the fd and close it; the model already queued its loss.
    StopReading,
}

#[derive(Debug)]
struct Pipe {
    mapping: ChildFdMapping,
    state: PipeState,
    buffered: usize,
    /// The parent closed it (rather than the child, or an error).
    closed_by_parent: bool,
}

struct Registered {
    producer: Arc<dyn PushProducer>,
    streaming: bool,
    paused: bool,
}

/// The shared state machine of one process transport: see the [module docs](crate::implement).
///
/// ```
/// use process_transport_api::implement::{Delivery, ProcessModel};
/// use process_transport_api::{ChildFd, ProcessEnd, SpawnSpec, TransportError};
///
/// let spec = SpawnSpec::new("cat");
/// let mut model = ProcessModel::new(spec.get_child_fds(), Some(42));
/// let mut out = Vec::new();
/// assert!(model.check_write(ChildFd::STDIN).is_ok());
/// assert!(matches!(model.check_write(ChildFd::STDOUT), Err(TransportError::UnknownChildFd(ChildFd(1)))));
///
/// model.process_exited(ProcessEnd::Done, &mut out);
/// assert_eq!(model.pid(), None);
/// for fd in [0, 1, 2] {
///     model.pipe_lost(ChildFd(fd), &mut out);
/// }
/// assert!(matches!(out.last(), Some(Delivery::ProcessEnded(ProcessEnd::Done))));
/// ```
pub struct ProcessModel {
    pipes: FdMap<Pipe>,
    pid: Option<u32>,
    exit: Option<ProcessEnd>,
    ended: bool,
    producer: Option<Registered>,
    reading_paused: bool,
    high_water: usize,
    /// What the protocol was shown, when a dispatcher reports it; without one, a change
    /// counts as shown once it is queued.
    shown: Option<Arc<Shown>>,
}

impl fmt::Debug for ProcessModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessModel")
            .field("pipes", &self.pipes)
            .field("pid", &self.pid)
            .field("exit", &self.exit)
            .field("ended", &self.ended)
            .field("producer", &self.producer.as_ref().map(|p| p.streaming))
            .field("reading_paused", &self.reading_paused)
            .field("high_water", &self.high_water)
            .finish()
    }
}

impl ProcessModel {
    /// The model of a process just spawned with fd map `child_fds` and pid `pid`.
    pub fn new(child_fds: &BTreeMap<ChildFd, ChildFdMapping>, pid: Option<u32>) -> Self {
        let pipes = child_fds
            .iter()
            .filter(|(_, mapping)| mapping.is_pipe())
            .map(|(&fd, &mapping)| {
                let pipe = Pipe {
                    mapping,
                    state: PipeState::Open,
                    buffered: 0,
                    closed_by_parent: false,
                };
                (fd, pipe)
            })
            .collect();
        ProcessModel {
            pipes,
            pid,
            exit: None,
            ended: false,
            producer: None,
            reading_paused: false,
            high_water: DEFAULT_HIGH_WATER,
            shown: None,
        }
    }

    /// Lets the model know what `dispatcher` has delivered, so that a change the protocol has
    /// not been shown yet never makes a call fail (section 4): a write to a pipe the child
    /// closed is accepted and dropped until `child_connection_lost` is delivered, a signal
    /// after the exit is accepted and dropped until `process_exited` is. Every driver that
    /// delivers through a [`Dispatcher`] calls this once, at the start.
    pub fn shown_by(&mut self, dispatcher: &Dispatcher) {
        self.shown = Some(dispatcher.shown());
    }

    fn loss_shown(&self, fd: ChildFd) -> bool {
        self.shown.as_ref().is_none_or(|shown| shown.loss(fd))
    }

    fn exit_shown(&self) -> bool {
        self.shown.as_ref().is_none_or(|shown| shown.exit())
    }

    /// Sets the stdin high-water mark (default [`DEFAULT_HIGH_WATER`]).
    pub fn set_high_water(&mut self, bytes: usize) {
        self.high_water = bytes;
    }

    /// The stdin high-water mark.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// The pid, until the exit is known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Sets the pid; ignored once the exit is known.
    pub fn set_pid(&mut self, pid: Option<u32>) {
        if self.exit.is_none() {
            self.pid = pid;
        }
    }

    /// The exit, once known.
    pub fn exit(&self) -> Option<ProcessEnd> {
        self.exit
    }

    /// `true` once `process_ended` was queued.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The state of pipe `fd`, or `None` when `fd` is not a pipe of the map.
    pub fn pipe_state(&self, fd: ChildFd) -> Option<PipeState> {
        self.pipes.get(fd).map(|pipe| pipe.state)
    }

    /// The mapping of pipe `fd`, or `None` when `fd` is not a pipe of the map.
    pub fn pipe_mapping(&self, fd: ChildFd) -> Option<ChildFdMapping> {
        self.pipes.get(fd).map(|pipe| pipe.mapping)
    }

    /// The pipes of the map, in fd order.
    pub fn pipes(&self) -> impl Iterator<Item = (ChildFd, ChildFdMapping, PipeState)> + '_ {
        self.pipes
            .iter()
            .map(|(fd, pipe)| (fd, pipe.mapping, pipe.state))
    }

    /// `true` while pipe `fd` is open and the parent writes it: written bytes reach the
    /// child.
    pub fn is_writable(&self, fd: ChildFd) -> bool {
        matches!(self.admit_write(fd), Ok(true))
    }

    /// `true` while pipe `fd` is open and the parent reads it: the child's output there is
    /// delivered.
    pub fn is_readable(&self, fd: ChildFd) -> bool {
        matches!(
            self.pipes.get(fd),
            Some(Pipe {
                mapping: ChildFdMapping::ParentReads,
                state: PipeState::Open,
                ..
            })
        )
    }

    /// Whether a write to `fd` may go ahead: `UnknownChildFd` unless `fd` is a pipe the
    /// parent writes, `ChildFdClosed` once the parent closed it or the protocol was shown
    /// its loss. See [`admit_write`](Self::admit_write) for where the bytes go.
    pub fn check_write(&self, fd: ChildFd) -> Result<(), TransportError> {
        self.admit_write(fd).map(drop)
    }

    /// Whether a write to `fd` may go ahead, and where its bytes go: `Ok(true)` while the
    /// pipe is open (they go to the child), `Ok(false)` when the child's end is gone but the
    /// protocol has not been shown `child_connection_lost` yet (they are dropped, as the
    /// kernel would drop them); the errors of [`check_write`](Self::check_write) otherwise.
    pub fn admit_write(&self, fd: ChildFd) -> Result<bool, TransportError> {
        match self.pipes.get(fd) {
            Some(pipe) if pipe.mapping == ChildFdMapping::ParentWrites => match pipe.state {
                PipeState::Open => Ok(true),
                PipeState::Lost if !pipe.closed_by_parent && !self.loss_shown(fd) => Ok(false),
                PipeState::Closing | PipeState::Lost => Err(TransportError::ChildFdClosed(fd)),
            },
            _ => Err(TransportError::UnknownChildFd(fd)),
        }
    }

    /// Whether `signal` may be sent: `InvalidSignal` for a number that is not a signal
    /// ([`Signal::is_valid`]), whatever the state; `ProcessExitedAlready` once the protocol
    /// was shown `process_exited`. Between the exit and that delivery a signal is accepted,
    /// and goes nowhere: see [`signal_reaches_child`](Self::signal_reaches_child).
    pub fn check_signal(&self, signal: Signal) -> Result<(), TransportError> {
        if !signal.is_valid() {
            return Err(TransportError::InvalidSignal(signal));
        }
        match self.exit {
            Some(_) if self.exit_shown() => Err(TransportError::ProcessExitedAlready),
            _ => Ok(()),
        }
    }

    /// `true` until the exit is known: a signal sent now can still reach the child.
    pub fn signal_reaches_child(&self) -> bool {
        self.exit.is_none()
    }

    /// The parent closes pipe `fd`. Closing stdin stops and forgets the registered producer.
    pub fn close_child_fd(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) -> CloseAction {
        let Some(pipe) = self.pipes.get_mut(fd) else {
            return CloseAction::Nothing;
        };
        if pipe.state != PipeState::Open {
            return CloseAction::Nothing;
        }
        match pipe.mapping {
            ChildFdMapping::ParentWrites => {
                pipe.state = PipeState::Closing;
                pipe.closed_by_parent = true;
                if fd == ChildFd::STDIN {
                    self.stop_producer(out);
                }
                CloseAction::FlushThenClose
            }
            ChildFdMapping::ParentReads | ChildFdMapping::Inherit(_) | ChildFdMapping::Null => {
                pipe.closed_by_parent = true;
                self.pipe_lost(fd, out);
                CloseAction::StopReading
            }
        }
    }

    /// The fds `lose_connection` closes, in the order it closes them.
    pub const LOSE_CONNECTION_ORDER: [ChildFd; 3] =
        [ChildFd::STDIN, ChildFd::STDERR, ChildFd::STDOUT];

    /// Pipe `fd` is gone: end of file on a pipe the parent reads, the child's end closed on
    /// a pipe the parent writes, or a parent close completed. Queues `child_connection_lost`
    /// once, and `process_ended` if this was the last thing it waited for.
    pub fn pipe_lost(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        let Some(pipe) = self.pipes.get_mut(fd) else {
            return;
        };
        if pipe.state == PipeState::Lost {
            return;
        }
        pipe.state = PipeState::Lost;
        pipe.buffered = 0;
        out.push(Delivery::ChildConnectionLost(fd));
        if fd == ChildFd::STDIN {
            self.stop_producer(out);
        }
        self.maybe_end(out);
    }

    /// The child's exit is known. Queues `process_exited` once (the pid is `None` from now
    /// on), and `process_ended` if every pipe is already lost.
    pub fn process_exited(&mut self, end: ProcessEnd, out: &mut Vec<Delivery>) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(end);
        self.pid = None;
        out.push(Delivery::ProcessExited(end));
        self.maybe_end(out);
    }

    fn maybe_end(&mut self, out: &mut Vec<Delivery>) {
        let all_lost = self
            .pipes
            .values()
            .all(|pipe| pipe.state == PipeState::Lost);
        if let (Some(end), false, true) = (self.exit, self.ended, all_lost) {
            self.ended = true;
            out.push(Delivery::ProcessEnded(end));
        }
    }

    /// Registers a producer for stdin, by the rules of section 4.
    pub fn register_producer(
        &mut self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
        out: &mut Vec<Delivery>,
    ) -> Result<(), TransportError> {
        if self.producer.is_some() {
            return Err(TransportError::ProducerAlreadyRegistered);
        }
        if !self.is_writable(ChildFd::STDIN) {
            out.push(Delivery::Producer(producer, ProducerCall::Stop));
            return Ok(());
        }
        let buffered = self.buffered(ChildFd::STDIN);
        let call = match (streaming, buffered > self.high_water) {
            (false, _) => Some(ProducerCall::Resume),
            (true, true) => Some(ProducerCall::Pause),
            (true, false) => None,
        };
        if let Some(call) = call {
            out.push(Delivery::Producer(producer.clone(), call));
        }
        self.producer = Some(Registered {
            producer,
            streaming,
            paused: call == Some(ProducerCall::Pause),
        });
        Ok(())
    }

    /// Forgets the registered producer and returns it, so that the driver can drop the calls
    /// still queued for it ([`Dispatcher::forget_producer`]).
    pub fn unregister_producer(&mut self) -> Result<Arc<dyn PushProducer>, TransportError> {
        match self.producer.take() {
            Some(registered) => Ok(registered.producer),
            None => Err(TransportError::NoProducerRegistered),
        }
    }

    /// The registered producer and whether it is streaming.
    pub fn producer(&self) -> Option<(Arc<dyn PushProducer>, bool)> {
        self.producer
            .as_ref()
            .map(|registered| (registered.producer.clone(), registered.streaming))
    }

    fn stop_producer(&mut self, out: &mut Vec<Delivery>) {
        if let Some(registered) = self.producer.take() {
            out.push(Delivery::Producer(registered.producer, ProducerCall::Stop));
        }
    }

    /// The bytes buffered for pipe `fd`, as the driver last reported them.
    pub fn buffered(&self, fd: ChildFd) -> usize {
        self.pipes.get(fd).map_or(0, |pipe| pipe.buffered)
    }

    /// The driver reports that `bytes` are now buffered for pipe `fd`. For stdin this pauses
    /// a push producer above the high-water mark and resumes it once the buffer is empty; a
    /// pull producer is resumed each time the buffer empties.
    pub fn set_buffered(&mut self, fd: ChildFd, bytes: usize, out: &mut Vec<Delivery>) {
        let Some(pipe) = self.pipes.get_mut(fd) else {
            return;
        };
        let before = std::mem::replace(&mut pipe.buffered, bytes);
        if fd != ChildFd::STDIN {
            return;
        }
        let Some(registered) = self.producer.as_mut() else {
            return;
        };
        if registered.streaming {
            if !registered.paused && bytes > self.high_water {
                registered.paused = true;
                out.push(Delivery::Producer(
                    registered.producer.clone(),
                    ProducerCall::Pause,
                ));
            } else if registered.paused && bytes == 0 {
                registered.paused = false;
                out.push(Delivery::Producer(
                    registered.producer.clone(),
                    ProducerCall::Resume,
                ));
            }
        } else if before > 0 && bytes == 0 {
            out.push(Delivery::Producer(
                registered.producer.clone(),
                ProducerCall::Resume,
            ));
        }
    }

    /// The driver reports that a write to `fd` went straight into the pipe, leaving the buffer
    /// empty: for stdin, a pull producer is asked for more, as on any drain.
    pub fn wrote_through(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        if fd != ChildFd::STDIN || self.buffered(fd) != 0 {
            return;
        }
        if let Some(registered) = self.producer.as_ref().filter(|r| !r.streaming) {
            out.push(Delivery::Producer(
                registered.producer.clone(),
                ProducerCall::Resume,
            ));
        }
    }

    /// `true` while the transport, as a producer, is paused: output is held, not delivered.
    pub fn reading_paused(&self) -> bool {
        self.reading_paused
    }

    /// Pauses or resumes the delivery of the child's output.
    pub fn set_reading_paused(&mut self, paused: bool) {
        self.reading_paused = paused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpawnSpec;

    fn names(out: &[Delivery]) -> Vec<String> {
        out.iter().map(|d| format!("{d:?}")).collect()
    }

    #[test]
    fn process_ended_waits_for_the_exit_and_every_pipe() {
        let spec = SpawnSpec::new("x").child_fd(ChildFd(3), ChildFdMapping::Inherit(1));
        let mut model = ProcessModel::new(spec.get_child_fds(), Some(7));
        let mut out = Vec::new();
        model.pipe_lost(ChildFd(1), &mut out);
        model.pipe_lost(ChildFd(1), &mut out);
        model.process_exited(ProcessEnd::from_exit_code(2), &mut out);
        model.process_exited(ProcessEnd::Done, &mut out);
        model.pipe_lost(ChildFd(0), &mut out);
        model.pipe_lost(ChildFd(2), &mut out);
        model.pipe_lost(ChildFd(3), &mut out);
        assert_eq!(
            names(&out),
            [
                "ChildConnectionLost(ChildFd(1))",
                "ProcessExited(Terminated { exit_code: Some(2), signal: None })",
                "ChildConnectionLost(ChildFd(0))",
                "ChildConnectionLost(ChildFd(2))",
                "ProcessEnded(Terminated { exit_code: Some(2), signal: None })",
            ]
        );
    }

    #[test]
    fn closing_a_read_pipe_loses_it_at_once_and_a_write_pipe_after_the_flush() {
        let mut model = ProcessModel::new(SpawnSpec::new("x").get_child_fds(), None);
        let mut out = Vec::new();
        assert_eq!(
            model.close_child_fd(ChildFd(1), &mut out),
            CloseAction::StopReading
        );
        assert_eq!(
            model.close_child_fd(ChildFd(1), &mut out),
            CloseAction::Nothing
        );
        assert_eq!(
            model.close_child_fd(ChildFd(0), &mut out),
            CloseAction::FlushThenClose
        );
        assert_eq!(
            model.close_child_fd(ChildFd(9), &mut out),
            CloseAction::Nothing
        );
        assert_eq!(names(&out), ["ChildConnectionLost(ChildFd(1))"]);
        assert_eq!(model.pipe_state(ChildFd(0)), Some(PipeState::Closing));
        assert!(matches!(
            model.check_write(ChildFd(0)),
            Err(TransportError::ChildFdClosed(ChildFd(0)))
        ));
    }
}
