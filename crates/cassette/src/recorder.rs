//! [`RecordingSpawner`]: every spawn goes through to another spawner, and what crosses its
//! transport is recorded.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use process_transport_api::{
    implement::ProcessModel, Address, ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner,
    ProcessTransport, PtySize, PushProducer, Signal, SpawnError, SpawnSpec, Transport,
    TransportError,
};

use serde::Serialize;

use crate::cassette::write_json;
use crate::redact::Found;
use crate::{
    Cassette, CassetteError, Event, Placeholder, Recording, Redactions, Refusal, SaveTarget,
    FORMAT_VERSION,
};

type Spawns = Arc<Mutex<Vec<Arc<Mutex<Live>>>>>;

/// A recording being made, with the calls still in flight: a call's event takes its place
/// before the call is made (so that it comes before anything the call causes), and is taken
/// out again, by identity, if the call is refused.
struct Live {
    recording: Recording,
    /// Calls made and not yet answered: a token, and the index of the event recorded for it.
    in_flight: Vec<(u64, usize)>,
    next_token: u64,
}

impl Live {
    fn new(recording: Recording) -> Self {
        Live {
            recording,
            in_flight: Vec::new(),
            next_token: 0,
        }
    }

    fn push(&mut self, event: Event) {
        self.recording.events.push(event);
    }

    /// Records the event of a call about to be made; the token settles it.
    fn begin(&mut self, event: Event) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.in_flight.push((token, self.recording.events.len()));
        self.recording.events.push(event);
        token
    }

    /// The call of `token` was taken: its event stays.
    fn accepted(&mut self, token: u64) {
        self.in_flight.retain(|&(held, _)| held != token);
    }

    /// The call of `token` was refused: its event goes, and nothing else moves but the
    /// events after it.
    fn refused(&mut self, token: u64) {
        let Some(place) = self.in_flight.iter().position(|&(held, _)| held == token) else {
            return;
        };
        let (_, index) = self.in_flight.swap_remove(place);
        self.recording.events.remove(index);
        for (_, later) in &mut self.in_flight {
            if *later > index {
                *later -= 1;
            }
        }
    }

    /// The recording without the events of calls still in flight, which may yet be refused.
    fn settled(&self) -> Cow<'_, Recording> {
        if self.in_flight.is_empty() {
            return Cow::Borrowed(&self.recording);
        }
        let mut copy = self.recording.clone();
        let mut pending: Vec<usize> = self.in_flight.iter().map(|&(_, index)| index).collect();
        pending.sort_unstable();
        for index in pending.into_iter().rev() {
            copy.events.remove(index);
        }
        Cow::Owned(copy)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A [`ProcessSpawner`] that passes every spawn to `inner` and records, per spawn and in
/// order, the spec and everything that crosses the transport: the protocol's writes, closes,
/// signals, pauses and resumes, and the child's output, losses and exit. Recording never
/// changes what the protocol sees. Spawns, concurrent ones too, go into one [`Cassette`], in
/// the order they started. Clones share the record.
///
/// ```
/// use process_transport_api::{ProcessSpawner, SpawnSpec};
/// use process_transport_cassette::{Event, RecordingSpawner};
/// use process_transport_fakes::{MemoryProcessReactor, Script};
/// use std::sync::Arc;
/// # struct Quiet; impl process_transport_api::ProcessProtocol for Quiet { fn make_connection(&mut self, _: Arc<dyn process_transport_api::ProcessTransport>) {} }
///
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["echo", "hi"], Script::new().stdout("hi\n").exit(0));
/// let recorder = RecordingSpawner::new(Arc::new(reactor));
/// futures_executor::block_on(recorder.spawn_process(Box::new(Quiet), SpawnSpec::new("echo").arg("hi"))).unwrap();
/// let cassette = recorder.cassette();
/// assert_eq!(cassette.spawns[0].command_line(), "echo hi");
/// assert_eq!(cassette.spawns[0].events[0], Event::Output { fd: 1, data: (&b"hi\n"[..]).into() });
/// ```
#[derive(Clone)]
pub struct RecordingSpawner {
    inner: Arc<dyn ProcessSpawner>,
    spawns: Spawns,
    redactions: Redactions,
    /// The variables whose values are kept, not only their names.
    kept_values: Arc<BTreeSet<String>>,
    /// The variables whose values are kept as digests.
    kept_digests: Arc<BTreeSet<String>>,
}

impl fmt::Debug for RecordingSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingSpawner")
            .field("spawns", &lock(&self.spawns).len())
            .finish()
    }
}

impl RecordingSpawner {
    /// Records what goes through `inner`, with this machine's paths redacted
    /// ([`Redactions::new`]) and environment values not kept.
    pub fn new(inner: Arc<dyn ProcessSpawner>) -> Self {
        RecordingSpawner {
            inner,
            spawns: Arc::default(),
            redactions: Redactions::new(),
            kept_values: Arc::default(),
            kept_digests: Arc::default(),
        }
    }

    /// Redacts `redactions` (in place of the default, this machine's paths) in what
    /// [`cassette`](Self::cassette) gives.
    ///
    /// ```
    /// use process_transport_cassette::{Redactions, RecordingSpawner};
    /// use process_transport_fakes::MemoryProcessReactor;
    /// use std::sync::Arc;
    ///
    /// let recorder = RecordingSpawner::new(Arc::new(MemoryProcessReactor::new()))
    ///     .redacting(Redactions::new().secret_env("API_TOKEN").secret("s3cr3t", "<PASSWORD>"));
    /// # let _ = recorder;
    /// ```
    pub fn redacting(mut self, redactions: Redactions) -> Self {
        self.redactions = redactions;
        self
    }

    /// Keeps the values of the environment variables `names` when a spec sets them (by
    /// default only names are kept); a replay then matches the values too. They are
    /// redacted like everything else.
    pub fn keep_env_values<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kept_values = Arc::new(names.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps a digest (SHA-256) of the values of the environment variables `names` when a
    /// spec sets them: a replay then matches the value without the cassette holding it (a
    /// token, say, whose value decides what the program does).
    ///
    /// ```
    /// use process_transport_api::{ProcessSpawner, SpawnSpec};
    /// use process_transport_cassette::RecordingSpawner;
    /// use process_transport_fakes::{MemoryProcessReactor, Script};
    /// use std::sync::Arc;
    /// # struct Quiet; impl process_transport_api::ProcessProtocol for Quiet { fn make_connection(&mut self, _: Arc<dyn process_transport_api::ProcessTransport>) {} }
    ///
    /// let reactor = MemoryProcessReactor::new();
    /// reactor.register(["deploy"], Script::new().exit(0));
    /// let recorder = RecordingSpawner::new(Arc::new(reactor)).keep_env_digests(["API_TOKEN"]);
    /// let spec = SpawnSpec::new("deploy").env("API_TOKEN", "s3cr3t");
    /// futures_executor::block_on(recorder.spawn_process(Box::new(Quiet), spec)).unwrap();
    /// let json = recorder.cassette().to_json();
    /// assert!(!json.contains("s3cr3t"));
    /// assert!(json.contains("\"API_TOKEN\": \"sha256:"));
    /// ```
    pub fn keep_env_digests<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kept_digests = Arc::new(names.into_iter().map(Into::into).collect());
        self
    }

    /// What was recorded so far, as a cassette, redacted.
    pub fn cassette(&self) -> Cassette {
        Cassette::new(
            lock(&self.spawns)
                .iter()
                .map(|live| lock(live).settled().into_owned())
                .collect(),
        )
        .redacted(&self.redactions)
    }

    /// Saves what was recorded so far at `path` (see [`Cassette::save`]).
    ///
    /// # Errors
    /// As [`Cassette::save`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CassetteError> {
        self.save_to(SaveTarget::open(path)?)
    }

    /// Saves what was recorded so far at a target opened earlier, before the recording was
    /// made ([`SaveTarget::open`]).
    ///
    /// # Errors
    /// `Io` naming the file.
    pub fn save_to(&self, target: SaveTarget) -> Result<(), CassetteError> {
        // Written from the recordings themselves, under their locks: only a recording that
        // holds a value to redact is copied.
        let spawns = lock(&self.spawns).clone();
        let guards: Vec<MutexGuard<'_, Live>> = spawns.iter().map(|r| lock(r)).collect();
        let mut found = Found::default();
        let redacted: Vec<Cow<'_, Recording>> = guards
            .iter()
            .map(|live| {
                let recording = live.settled();
                if self.redactions.occur_in(&recording) {
                    let mut copy = recording.into_owned();
                    self.redactions.redact_recording(&mut copy, &mut found);
                    Cow::Owned(copy)
                } else {
                    recording
                }
            })
            .collect();
        let view = CassetteView {
            version: FORMAT_VERSION,
            placeholders: found.placeholders,
            framing: self
                .redactions
                .is_framed()
                .then_some(crate::Framing::ContentLength),
            spawns: redacted.iter().map(|recording| &**recording).collect(),
        };
        target.save_with(|file| write_json(file, &view))
    }
}

#[async_trait]
impl ProcessSpawner for RecordingSpawner {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        let mut recording = Recording::of(&spec);
        recording.env_values = env_values(&spec, &self.kept_values);
        recording.env_digests = spec
            .get_env()
            .vars()
            .filter_map(|(name, value)| {
                let name = name.to_string_lossy();
                let value = value?;
                self.kept_digests
                    .contains(name.as_ref())
                    .then(|| (name.into_owned(), env_digest(value.as_encoded_bytes())))
            })
            .collect();
        let recording = Arc::new(Mutex::new(Live::new(recording)));
        let wrapper: Arc<Mutex<Option<Arc<dyn ProcessTransport>>>> = Arc::default();
        let tap = Tap {
            protocol,
            recording: recording.clone(),
            wrapper: wrapper.clone(),
        };
        // Listed before the spawn starts, so that spawns keep the order they started in; a
        // spawn that fails is recorded with its error, which a replay gives back.
        lock(&self.spawns).push(recording.clone());
        match self.inner.spawn_process(Box::new(tap), spec).await {
            Ok(transport) => Ok(lock(&wrapper)
                .clone()
                .unwrap_or_else(|| Arc::new(Recorded::new(transport, recording)))),
            Err(err) => {
                lock(&recording).recording.refused = Some(Refusal::of(&err));
                Err(err)
            }
        }
    }
}

/// A cassette of borrowed recordings, serialized as a [`Cassette`] is.
#[derive(Serialize)]
struct CassetteView<'a> {
    version: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    placeholders: BTreeMap<String, Placeholder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    framing: Option<crate::Framing>,
    spawns: Vec<&'a Recording>,
}

/// The values `spec` sets for the variables `kept`.
pub(crate) fn env_values(spec: &SpawnSpec, kept: &BTreeSet<String>) -> BTreeMap<String, String> {
    spec.get_env()
        .vars()
        .filter_map(|(name, value)| {
            let name = name.to_string_lossy();
            let value = value?.to_string_lossy();
            kept.contains(name.as_ref())
                .then(|| (name.into_owned(), value.into_owned()))
        })
        .collect()
}

/// How a cassette stores a secret value that must match: `sha256:` and the digest in hex.
pub(crate) fn env_digest(value: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(value);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// The protocol handed to the inner spawner: records the events, then passes them on.
struct Tap {
    protocol: Box<dyn ProcessProtocol>,
    recording: Arc<Mutex<Live>>,
    wrapper: Arc<Mutex<Option<Arc<dyn ProcessTransport>>>>,
}

impl Tap {
    fn record(&self, event: Event) {
        lock(&self.recording).push(event);
    }
}

impl ProcessProtocol for Tap {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        let recorded: Arc<dyn ProcessTransport> =
            Arc::new(Recorded::new(transport, self.recording.clone()));
        *lock(&self.wrapper) = Some(recorded.clone());
        self.protocol.make_connection(recorded);
    }

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        self.record(Event::Output {
            fd: fd.0,
            data: data.into(),
        });
        self.protocol.child_data_received(fd, data);
    }

    fn child_connection_lost(&mut self, fd: ChildFd) {
        self.record(Event::Lost { fd: fd.0 });
        self.protocol.child_connection_lost(fd);
    }

    fn process_exited(&mut self, reason: ProcessEnd) {
        self.record(Event::exited(reason));
        self.protocol.process_exited(reason);
    }

    fn process_ended(&mut self, reason: ProcessEnd) {
        self.protocol.process_ended(reason);
    }
}

/// The transport the protocol gets: records its calls, then makes them on the real one.
struct Recorded {
    inner: Arc<dyn ProcessTransport>,
    recording: Arc<Mutex<Live>>,
}

impl Recorded {
    fn new(inner: Arc<dyn ProcessTransport>, recording: Arc<Mutex<Live>>) -> Self {
        Recorded { inner, recording }
    }

    /// Records `event`, then makes `call`, so that the event takes its place before anything
    /// the call causes. The call is made without the lock (it may deliver events, which are
    /// recorded too); a refused call leaves no trace, and never moves another call's event.
    fn record<R>(
        &self,
        event: impl FnOnce() -> Event,
        call: impl FnOnce() -> Result<R, TransportError>,
    ) -> Result<R, TransportError> {
        let token = lock(&self.recording).begin(event());
        let result = call();
        let mut live = lock(&self.recording);
        match result {
            Ok(_) => live.accepted(token),
            Err(_) => live.refused(token),
        }
        result
    }

    fn record_always(&self, event: Event) {
        lock(&self.recording).push(event);
    }

    /// Records the closes of `lose_connection`: fds 0, 2 and 1, in that order.
    fn record_standard_closes(&self) {
        let mut live = lock(&self.recording);
        for fd in ProcessModel::LOSE_CONNECTION_ORDER {
            live.push(Event::Close { fd: fd.0 });
        }
    }
}

impl Transport for Recorded {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.write_to_child(ChildFd::STDIN, data)
    }

    /// Recorded as a write of the same bytes; the buffer is handed on to the transport.
    fn write_owned(&self, data: Vec<u8>) -> Result<(), TransportError> {
        let event = Event::Write {
            fd: ChildFd::STDIN.0,
            data: data.as_slice().into(),
        };
        self.record(|| event, || self.inner.write_owned(data))
    }

    fn lose_connection(&self) {
        self.record_standard_closes();
        self.inner.lose_connection();
    }

    fn abort_connection(&self) {
        self.record_standard_closes();
        self.inner.abort_connection();
    }

    fn host(&self) -> Address {
        self.inner.host()
    }

    fn peer(&self) -> Address {
        self.inner.peer()
    }

    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError> {
        self.inner.register_producer(producer, streaming)
    }

    fn unregister_producer(&self) -> Result<(), TransportError> {
        self.inner.unregister_producer()
    }
}

impl PushProducer for Recorded {
    fn pause_producing(&self) {
        self.record_always(Event::Pause);
        self.inner.pause_producing();
    }

    fn resume_producing(&self) {
        self.record_always(Event::Resume);
        self.inner.resume_producing();
    }

    fn stop_producing(&self) {
        self.record_standard_closes();
        self.inner.stop_producing();
    }
}

#[async_trait]
impl ProcessTransport for Recorded {
    fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    fn close_child_fd(&self, fd: ChildFd) {
        self.record_always(Event::Close { fd: fd.0 });
        self.inner.close_child_fd(fd);
    }

    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError> {
        self.record(
            || Event::Write {
                fd: fd.0,
                data: data.into(),
            },
            || self.inner.write_to_child(fd, data),
        )
    }

    fn signal_process(&self, signal: Signal) -> Result<(), TransportError> {
        self.record(
            || Event::Signal {
                signal: signal.to_string(),
            },
            || self.inner.signal_process(signal),
        )
    }

    fn resize_pty(&self, size: PtySize) -> Result<(), TransportError> {
        self.record(
            || Event::Resize {
                rows: size.rows,
                cols: size.cols,
            },
            || self.inner.resize_pty(size),
        )
    }

    async fn ended(&self) -> ProcessEnd {
        self.inner.ended().await
    }
}
