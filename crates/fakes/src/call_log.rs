//! One ordered log of every call made on a fake transport and every event it delivered.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{ChildFd, Delivery, ProcessEnd, ProducerCall, Signal};

/// A call made on a [`MemoryProcessTransport`](crate::MemoryProcessTransport).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportCall {
    /// `write`, `write_sequence` (joined) or `write_to_child`.
    Write(ChildFd, Vec<u8>),
    /// `close_child_fd`, `close_stdin`, `close_stdout` or `close_stderr`.
    CloseChildFd(ChildFd),
    /// `lose_connection`.
    LoseConnection,
    /// `abort_connection`.
    AbortConnection,
    /// `signal_process`.
    SignalProcess(Signal),
    /// `register_producer`, with its `streaming` flag.
    RegisterProducer {
        /// `true` for a push producer.
        streaming: bool,
    },
    /// `unregister_producer`.
    UnregisterProducer,
    /// `pause_producing` on the transport.
    PauseProducing,
    /// `resume_producing` on the transport.
    ResumeProducing,
    /// `stop_producing` on the transport.
    StopProducing,
}

/// Something the transport delivered to its protocol or its producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveredEvent {
    /// `make_connection`.
    MakeConnection,
    /// `child_data_received`.
    ChildDataReceived(ChildFd, Vec<u8>),
    /// `child_connection_lost`.
    ChildConnectionLost(ChildFd),
    /// `process_exited`.
    ProcessExited(ProcessEnd),
    /// `process_ended`.
    ProcessEnded(ProcessEnd),
    /// A call on the registered producer.
    Producer(ProducerCall),
}

/// One line of a [`CallLog`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Logged {
    /// A call on the transport and the error it returned, if any (its text).
    Call(TransportCall, Option<String>),
    /// An event delivered, in delivery order.
    Event(DeliveredEvent),
}

/// The ordered log of a fake transport: calls made on it and events it delivered,
/// interleaved as they happened, for assertions that span fds. Printable, one line per entry.
/// Clones share the log.
///
/// ```
/// use process_transport_api::{ChildFd, ProcessTransport, Transport};
/// use process_transport_fakes::{DeliveredEvent, Logged, MemoryProcessTransport, TransportCall};
///
/// let transport = MemoryProcessTransport::new();
/// transport.write(b"stop\n").unwrap();
/// transport.close_stdin();
/// transport.child().write(ChildFd::STDOUT, "ok\n").unwrap();
/// let log = transport.call_log();
/// assert_eq!(log.entries()[0], Logged::Call(TransportCall::Write(ChildFd::STDIN, b"stop\n".to_vec()), None));
/// assert_eq!(log.events(), [
///     DeliveredEvent::ChildConnectionLost(ChildFd::STDIN),
///     DeliveredEvent::ChildDataReceived(ChildFd::STDOUT, b"ok\n".to_vec()),
/// ]);
/// assert_eq!(log.to_string(), "\
/// -> write_to_child(0, \"stop\\n\")
/// -> close_child_fd(0)
/// <- child_connection_lost(0)
/// <- child_data_received(1, \"ok\\n\")
/// ");
/// ```
#[derive(Clone, Default)]
pub struct CallLog {
    entries: Arc<Mutex<Vec<Logged>>>,
}

impl CallLog {
    fn lock(&self) -> MutexGuard<'_, Vec<Logged>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs `call`; returns its index for [`failed`](Self::failed).
    pub(crate) fn call(&self, call: TransportCall) -> usize {
        let mut entries = self.lock();
        entries.push(Logged::Call(call, None));
        entries.len() - 1
    }

    /// Records that the call logged at `index` failed with `error`.
    pub(crate) fn failed(&self, index: usize, error: String) {
        if let Some(Logged::Call(_, slot)) = self.lock().get_mut(index) {
            *slot = Some(error);
        }
    }

    pub(crate) fn delivered(&self, delivery: &Delivery) {
        let event = match delivery {
            Delivery::MakeConnection(_) => DeliveredEvent::MakeConnection,
            Delivery::ChildData(fd, data) => DeliveredEvent::ChildDataReceived(*fd, data.clone()),
            Delivery::ChildConnectionLost(fd) => DeliveredEvent::ChildConnectionLost(*fd),
            Delivery::ProcessExited(end) => DeliveredEvent::ProcessExited(*end),
            Delivery::ProcessEnded(end) => DeliveredEvent::ProcessEnded(*end),
            Delivery::Producer(_, call) => DeliveredEvent::Producer(*call),
        };
        self.lock().push(Logged::Event(event));
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Vec<Logged> {
        self.lock().clone()
    }

    /// The calls only, in order.
    pub fn calls(&self) -> Vec<TransportCall> {
        self.lock()
            .iter()
            .filter_map(|entry| match entry {
                Logged::Call(call, _) => Some(call.clone()),
                Logged::Event(_) => None,
            })
            .collect()
    }

    /// The delivered events only, in order.
    pub fn events(&self) -> Vec<DeliveredEvent> {
        self.lock()
            .iter()
            .filter_map(|entry| match entry {
                Logged::Event(event) => Some(event.clone()),
                Logged::Call(..) => None,
            })
            .collect()
    }

    /// Forgets every entry so far.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lock().iter()).finish()
    }
}

fn text(data: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(data))
}

impl fmt::Display for TransportCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportCall::Write(fd, data) => write!(f, "write_to_child({fd}, {})", text(data)),
            TransportCall::CloseChildFd(fd) => write!(f, "close_child_fd({fd})"),
            TransportCall::LoseConnection => f.write_str("lose_connection()"),
            TransportCall::AbortConnection => f.write_str("abort_connection()"),
            TransportCall::SignalProcess(signal) => write!(f, "signal_process({signal})"),
            TransportCall::RegisterProducer { streaming } => {
                write!(f, "register_producer(streaming: {streaming})")
            }
            TransportCall::UnregisterProducer => f.write_str("unregister_producer()"),
            TransportCall::PauseProducing => f.write_str("pause_producing()"),
            TransportCall::ResumeProducing => f.write_str("resume_producing()"),
            TransportCall::StopProducing => f.write_str("stop_producing()"),
        }
    }
}

impl fmt::Display for DeliveredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveredEvent::MakeConnection => f.write_str("make_connection"),
            DeliveredEvent::ChildDataReceived(fd, data) => {
                write!(f, "child_data_received({fd}, {})", text(data))
            }
            DeliveredEvent::ChildConnectionLost(fd) => write!(f, "child_connection_lost({fd})"),
            DeliveredEvent::ProcessExited(end) => write!(f, "process_exited({end})"),
            DeliveredEvent::ProcessEnded(end) => write!(f, "process_ended({end})"),
            DeliveredEvent::Producer(call) => write!(f, "producer.{call:?}"),
        }
    }
}

impl fmt::Display for Logged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Logged::Call(call, None) => write!(f, "-> {call}"),
            Logged::Call(call, Some(error)) => write!(f, "-> {call} failed: {error}"),
            Logged::Event(event) => write!(f, "<- {event}"),
        }
    }
}

impl fmt::Display for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in self.lock().iter() {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}
