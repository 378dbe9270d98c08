//! A protocol that records every event it gets and can react from inside its callbacks, a
//! producer that records the calls it gets, and the check of the order of events.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport};

/// One callback a [`Recorder`] received.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// `make_connection`.
    Connected,
    /// `child_data_received`.
    Data(ChildFd, Vec<u8>),
    /// `child_connection_lost`.
    Lost(ChildFd),
    /// `process_exited`.
    Exited(ProcessEnd),
    /// `process_ended`.
    Ended(ProcessEnd),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Connected => f.write_str("Connected"),
            Event::Data(fd, data) => {
                write!(f, "Data({}, {:?})", fd.0, String::from_utf8_lossy(data))
            }
            Event::Lost(fd) => write!(f, "Lost({})", fd.0),
            Event::Exited(end) => write!(f, "Exited({end:?})"),
            Event::Ended(end) => write!(f, "Ended({end:?})"),
        }
    }
}

/// Called inside each callback, after the event is recorded, with the transport.
pub type Reaction = Box<dyn FnMut(&Event, &Arc<dyn ProcessTransport>) + Send>;

/// The events a [`Recorder`] saw, shared with the test.
#[derive(Clone, Default)]
pub struct Log {
    events: Arc<Mutex<Vec<Event>>>,
    recorded: Arc<tokio::sync::Notify>,
    depth: Arc<AtomicUsize>,
    reentered: Arc<AtomicUsize>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lock().iter()).finish()
    }
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// The bytes received on `fd`, joined.
    pub fn bytes(&self, fd: ChildFd) -> Vec<u8> {
        self.lock()
            .iter()
            .filter_map(|event| match event {
                Event::Data(d, data) if *d == fd => Some(data.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// The events other than data, in order.
    pub fn milestones(&self) -> Vec<Event> {
        self.lock()
            .iter()
            .filter(|event| !matches!(event, Event::Data(..)))
            .cloned()
            .collect()
    }

    /// Waits until `done` holds for the events so far; fails, naming `what`, if that takes
    /// longer than [`HANG_GUARD`](crate::HANG_GUARD). Waits on the events themselves: every
    /// recorded event wakes it.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Event]) -> bool,
    ) -> Result<(), String> {
        let wait = async {
            loop {
                let recorded = self.recorded.notified();
                tokio::pin!(recorded);
                recorded.as_mut().enable();
                if done(&self.lock()) {
                    return;
                }
                recorded.await;
            }
        };
        tokio::time::timeout(crate::HANG_GUARD, wait)
            .await
            .map_err(|_| {
                format!(
                    "no {what} within {:?}; events: {:?}",
                    crate::HANG_GUARD,
                    self.events()
                )
            })
    }

    /// Waits until `event` was recorded.
    pub async fn wait_for(&self, event: Event) -> Result<(), String> {
        self.wait_until(&format!("{event:?}"), |events| events.contains(&event))
            .await
    }

    /// How many times a callback started while another was running (must be 0).
    pub fn reentered(&self) -> usize {
        self.reentered.load(Ordering::SeqCst)
    }

    /// The end reason, once `process_ended` was received.
    pub fn ended(&self) -> Option<ProcessEnd> {
        self.lock().iter().find_map(|event| match event {
            Event::Ended(end) => Some(*end),
            _ => None,
        })
    }
}

/// A [`ProcessProtocol`] that records every callback in a [`Log`] and optionally reacts.
pub struct Recorder {
    log: Log,
    transport: Option<Arc<dyn ProcessTransport>>,
    reaction: Option<Reaction>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder and the log the test keeps.
    pub fn new() -> (Box<Self>, Log) {
        let log = Log::default();
        let recorder = Recorder {
            log: log.clone(),
            transport: None,
            reaction: None,
        };
        (Box::new(recorder), log)
    }

    /// A recorder that calls `reaction` inside every callback.
    pub fn reacting(
        reaction: impl FnMut(&Event, &Arc<dyn ProcessTransport>) + Send + 'static,
    ) -> (Box<Self>, Log) {
        let (mut recorder, log) = Self::new();
        recorder.reaction = Some(Box::new(reaction));
        (recorder, log)
    }

    /// The transport given to `make_connection`.
    pub fn transport(&self) -> Option<&Arc<dyn ProcessTransport>> {
        self.transport.as_ref()
    }

    fn record(&mut self, event: Event) {
        if self.log.depth.fetch_add(1, Ordering::SeqCst) > 0 {
            self.log.reentered.fetch_add(1, Ordering::SeqCst);
        }
        self.log.lock().push(event.clone());
        self.log.recorded.notify_waiters();
        if let (Some(reaction), Some(transport)) = (self.reaction.as_mut(), self.transport.as_ref())
        {
            reaction(&event, transport);
        }
        self.log.depth.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ProcessProtocol for Recorder {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        self.transport = Some(transport);
        self.record(Event::Connected);
    }

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        self.record(Event::Data(fd, data.to_vec()));
    }

    fn child_connection_lost(&mut self, fd: ChildFd) {
        self.record(Event::Lost(fd));
    }

    fn process_exited(&mut self, reason: ProcessEnd) {
        self.record(Event::Exited(reason));
    }

    fn process_ended(&mut self, reason: ProcessEnd) {
        self.record(Event::Ended(reason));
    }
}

/// Checks the order of section 5 on a complete log, for a process whose pipes are `pipes`:
/// `Connected` first and once; every pipe lost exactly once, after its data; `Exited` once;
/// `Ended` once and last, with the same reason as `Exited`.
pub fn check_order(events: &[Event], pipes: &[ChildFd]) -> Result<(), String> {
    if events.first() != Some(&Event::Connected) {
        return Err(format!("make_connection is not first: {events:?}"));
    }
    let count = |wanted: &dyn Fn(&Event) -> bool| events.iter().filter(|e| wanted(e)).count();
    if count(&|e| *e == Event::Connected) != 1 {
        return Err(format!("make_connection more than once: {events:?}"));
    }
    for fd in pipes {
        let lost_at: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| **e == Event::Lost(*fd))
            .map(|(i, _)| i)
            .collect();
        let [lost_at] = lost_at[..] else {
            return Err(format!("fd {fd} lost {} times: {events:?}", lost_at.len()));
        };
        if events[lost_at..]
            .iter()
            .any(|e| matches!(e, Event::Data(d, _) if d == fd))
        {
            return Err(format!("data on fd {fd} after its loss: {events:?}"));
        }
    }
    if let Some(Event::Lost(fd)) = events
        .iter()
        .find(|e| matches!(e, Event::Lost(fd) if !pipes.contains(fd)))
    {
        return Err(format!(
            "fd {fd} is not a pipe but was reported lost: {events:?}"
        ));
    }
    let exited: Vec<ProcessEnd> = events
        .iter()
        .filter_map(|e| match e {
            Event::Exited(end) => Some(*end),
            _ => None,
        })
        .collect();
    let [exit] = exited[..] else {
        return Err(format!("process_exited {} times: {events:?}", exited.len()));
    };
    if events.last() != Some(&Event::Ended(exit)) {
        return Err(format!("process_ended({exit:?}) is not last: {events:?}"));
    }
    if count(&|e| matches!(e, Event::Ended(_))) != 1 {
        return Err(format!("process_ended more than once: {events:?}"));
    }
    Ok(())
}

/// A [`PushProducer`](process_transport_api::PushProducer) that records the calls it gets, in
/// order, and can write to a transport each time it is resumed (a pull producer).
#[derive(Default)]
pub struct RecordingProducer {
    calls: Mutex<Vec<process_transport_api::implement::ProducerCall>>,
    on_resume: Mutex<Option<Box<dyn FnMut() + Send>>>,
}

impl fmt::Debug for RecordingProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingProducer")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl RecordingProducer {
    /// A producer that only records.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A producer that runs `on_resume` each time it is resumed.
    pub fn on_resume(on_resume: impl FnMut() + Send + 'static) -> Arc<Self> {
        Arc::new(RecordingProducer {
            on_resume: Mutex::new(Some(Box::new(on_resume))),
            ..RecordingProducer::default()
        })
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<process_transport_api::implement::ProducerCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, call: process_transport_api::implement::ProducerCall) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

impl process_transport_api::PushProducer for RecordingProducer {
    fn pause_producing(&self) {
        self.record(process_transport_api::implement::ProducerCall::Pause);
    }

    fn resume_producing(&self) {
        self.record(process_transport_api::implement::ProducerCall::Resume);
        if let Some(on_resume) = self
            .on_resume
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            on_resume();
        }
    }

    fn stop_producing(&self) {
        self.record(process_transport_api::implement::ProducerCall::Stop);
    }
}
