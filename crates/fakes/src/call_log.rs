//! One ordered log of every call made on a fake transport and every event it delivered.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{
    implement::{Delivery, ProducerCall},
    ChildFd, ProcessEnd, PtySize, Signal,
};

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
    /// `resize_pty`.
    ResizePty(PtySize),
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
    entries: Arc<Mutex<Vec<Entry>>>,
}

/// Bytes written once and shared by the log and the transport's buffers.
pub(crate) type Shared = Arc<[u8]>;

/// A call as the log keeps it: a write's bytes are shared with the transport's buffers, and
/// copied out only when the log is read.
pub(crate) enum StoredCall {
    Write(ChildFd, Shared),
    Other(TransportCall),
}

impl From<TransportCall> for StoredCall {
    fn from(call: TransportCall) -> Self {
        StoredCall::Other(call)
    }
}

enum Entry {
    Call(StoredCall, Option<String>),
    Event(DeliveredEvent),
}

impl Entry {
    fn call(&self) -> Option<TransportCall> {
        match self {
            Entry::Call(StoredCall::Write(fd, data), _) => {
                Some(TransportCall::Write(*fd, data.to_vec()))
            }
            Entry::Call(StoredCall::Other(call), _) => Some(call.clone()),
            Entry::Event(_) => None,
        }
    }

    fn logged(&self) -> Logged {
        match self {
            Entry::Call(_, error) => Logged::Call(
                self.call().expect("a call entry holds a call"),
                error.clone(),
            ),
            Entry::Event(event) => Logged::Event(event.clone()),
        }
    }
}

/// Entries a log makes room for at its first: a short test's calls and events fit without
/// growing it (growing goes through `realloc`, which in glibc skips the per-thread cache: 5%
/// of the instructions of the fakes bench's protocol test), while a log that stays empty
/// takes no memory.
const FIRST_CAPACITY: usize = 16;

fn push(entries: &mut Vec<Entry>, entry: Entry) {
    if entries.capacity() == 0 {
        entries.reserve_exact(FIRST_CAPACITY);
    }
    entries.push(entry);
}

impl CallLog {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs `call`; returns its index for [`failed`](Self::failed).
    pub(crate) fn call(&self, call: impl Into<StoredCall>) -> usize {
        let mut entries = self.lock();
        push(&mut entries, Entry::Call(call.into(), None));
        entries.len() - 1
    }

    /// Records that the call logged at `index` failed with `error`.
    pub(crate) fn failed(&self, index: usize, error: String) {
        if let Some(Entry::Call(_, slot)) = self.lock().get_mut(index) {
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
        push(&mut self.lock(), Entry::Event(event));
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Vec<Logged> {
        self.lock().iter().map(Entry::logged).collect()
    }

    /// The calls only, in order.
    pub fn calls(&self) -> Vec<TransportCall> {
        self.lock().iter().filter_map(Entry::call).collect()
    }

    /// The delivered events only, in order.
    pub fn events(&self) -> Vec<DeliveredEvent> {
        self.lock()
            .iter()
            .filter_map(|entry| match entry {
                Entry::Event(event) => Some(event.clone()),
                Entry::Call(..) => None,
            })
            .collect()
    }

    /// How many calls and how many delivered events are logged.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let entries = self.lock();
        let calls = entries
            .iter()
            .filter(|entry| matches!(entry, Entry::Call(..)))
            .count();
        (calls, entries.len() - calls)
    }

    /// Forgets every entry so far.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.lock().iter().map(Entry::logged))
            .finish()
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
            TransportCall::ResizePty(size) => write!(f, "resize_pty({size})"),
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
            writeln!(f, "{}", entry.logged())?;
        }
        Ok(())
    }
}
