//! [`ReplaySpawner`]: serves spawns from a cassette, as fakes that follow the recording.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use process_transport_api::{
    ChildFd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnError, SpawnSpec,
};
use process_transport_fakes::{
    FakeChild, MemoryProcessReactor, Registration, Script, SignalAction,
};

use crate::recorder::lock;
use crate::{Cassette, CassetteError, Event, Recording};

/// A [`ProcessSpawner`] that serves spawns from a [`Cassette`]: no process starts.
///
/// A spawn is matched by its command line and, where recorded, its working directory and the
/// names of the variables its spec set; several recordings of one command are served in the
/// order they were recorded. Each child is a fake of the `MemoryProcessReactor` (so every
/// error of the shared behaviour table is the real one) that plays its recording: output the
/// real child printed after it had been sent N bytes on stdin is delivered once the protocol
/// has written N bytes; the exit and the losses come where they came.
///
/// Strict by default: stdin bytes that differ from the recording panic (a fake's misuse
/// check) with the spawn, the fd, the offset and both sides rendered as byte strings;
/// [`lenient`](Self::lenient) counts stdin bytes without comparing them. A spawn no recording
/// matches is refused as `SpawnError::NotFound`; [`assert_all_used`](Self::assert_all_used)
/// reports recordings never served.
///
/// ```
/// use process_transport_cassette::{Cassette, Event, Recording, ReplaySpawner};
/// use process_transport_command::Command;
/// use process_transport_api::{ChildFd, ChildFdMapping, SpawnSpec};
/// use std::sync::Arc;
///
/// // What `output()` of `echo hi` asks for: stdin on the null device, stdout and stderr piped.
/// let spec = SpawnSpec::new("echo").arg("hi").child_fd(ChildFd::STDIN, ChildFdMapping::Null);
/// let mut recording = Recording::of(&spec);
/// recording.events = vec![
///     Event::Output { fd: 1, data: (&b"hi\n"[..]).into() },
///     Event::Lost { fd: 1 },
///     Event::Lost { fd: 2 },
///     Event::Exited { code: Some(0), signal: None },
/// ];
/// let replay = ReplaySpawner::new(Cassette::new(vec![recording]));
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let out = Command::new("echo").arg("hi").spawner(Arc::new(replay.clone())).output().await.unwrap();
/// assert_eq!(out.stdout, b"hi\n");
/// # });
/// replay.assert_all_used();
/// ```
#[derive(Clone)]
pub struct ReplaySpawner {
    reactor: MemoryProcessReactor,
    registrations: Vec<Registration>,
}

impl fmt::Debug for ReplaySpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplaySpawner")
            .field("recordings", &self.registrations.len())
            .finish()
    }
}

impl ReplaySpawner {
    /// Serves the spawns of `cassette`, comparing stdin bytes with the recording.
    pub fn new(cassette: Cassette) -> Self {
        Self::build(cassette, true)
    }

    /// Serves the spawns of `cassette`, counting stdin bytes without comparing them.
    pub fn lenient(cassette: Cassette) -> Self {
        Self::build(cassette, false)
    }

    /// Loads the cassette at `path` and serves it strictly.
    ///
    /// # Errors
    /// As [`Cassette::load`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        Cassette::load(path).map(Self::new)
    }

    fn build(cassette: Cassette, strict: bool) -> Self {
        let reactor = MemoryProcessReactor::strict();
        let registrations = cassette
            .spawns
            .into_iter()
            .enumerate()
            .map(|(index, recording)| {
                let label = format!("spawn {index} (`{}`)", recording.command_line());
                let wanted = recording.clone();
                let script = Player::script(recording, label, strict);
                reactor
                    .register_matching(
                        wanted.command_line(),
                        move |spec| matches(&wanted, spec),
                        script,
                    )
                    .times(1)
            })
            .collect();
        ReplaySpawner {
            reactor,
            registrations,
        }
    }

    /// The recordings never served, as their command lines.
    pub fn unused(&self) -> Vec<String> {
        self.reactor
            .unused()
            .iter()
            .map(Registration::description)
            .collect()
    }

    /// Checks that every recording was served.
    ///
    /// # Panics
    /// When one was not, naming each.
    pub fn assert_all_used(&self) {
        self.reactor.assert_all_used();
    }
}

fn matches(recording: &Recording, spec: &SpawnSpec) -> bool {
    let asked = Recording::of(spec);
    asked.command == recording.command
        && (recording.cwd.is_none() || asked.cwd == recording.cwd)
        && asked.env == recording.env
        && asked.fds == recording.fds
}

#[async_trait]
impl ProcessSpawner for ReplaySpawner {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        self.reactor.spawn_process(protocol, spec).await
    }
}

/// Where a replayed child is in its recording.
#[derive(Default)]
struct Progress {
    cursor: usize,
    /// Bytes the protocol wrote on stdin that the recording has not accounted for yet.
    stdin: Vec<u8>,
    /// How many stdin bytes the recording accounted for: the offset of `stdin`.
    matched: usize,
    /// Stdin is closed (by the protocol) or lost (the child closed it): a recorded close of
    /// it by the protocol has nothing left to wait for, as closing a lost pipe does nothing
    /// the child could see.
    stdin_closed: bool,
    /// Signals the protocol sent.
    signals: usize,
    /// Recorded signals played past.
    signals_played: usize,
    closed_by_parent: BTreeSet<u32>,
    /// A mismatch was reported: the child plays nothing more (a second panic while the first
    /// unwinds, from a drop that closes stdin, would abort the test).
    failed: bool,
}

/// Plays one recording as a fake child.
struct Player {
    recording: Recording,
    label: String,
    strict: bool,
    progress: Mutex<Progress>,
}

impl Player {
    fn script(recording: Recording, label: String, strict: bool) -> Script {
        let signals: BTreeSet<String> = recording
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Signal { signal } => Some(signal.clone()),
                _ => None,
            })
            .collect();
        let player = Arc::new(Player {
            recording,
            label,
            strict,
            progress: Mutex::default(),
        });
        let (on_write, on_eof) = (player.clone(), player.clone());
        let mut script = Script::new()
            .start_with({
                let player = player.clone();
                move |child| player.advance(child)
            })
            .on_stdin(move |child, data| {
                lock(&on_write.progress).stdin.extend_from_slice(data);
                on_write.advance(child);
            })
            .on_stdin_eof(move |child| {
                lock(&on_eof.progress).stdin_closed = true;
                on_eof.advance(child);
            });
        for signal in signals
            .iter()
            .filter_map(|text| text.parse::<Signal>().ok())
        {
            let player = player.clone();
            script = script.on_signal(
                signal,
                SignalAction::Custom(Arc::new(move |child: &FakeChild, _| {
                    lock(&player.progress).signals += 1;
                    player.advance(child);
                })),
            );
        }
        script
    }

    /// Plays every event whose cause has happened, in order, and stops at the first that
    /// waits for the protocol.
    fn advance(&self, child: &FakeChild) {
        let events = &self.recording.events;
        loop {
            let mut progress = lock(&self.progress);
            let Some(event) = events.get(progress.cursor).filter(|_| !progress.failed) else {
                return;
            };
            match event {
                Event::Write { fd: 0, data } => {
                    let len = data.0.len();
                    if progress.stdin.len() < len {
                        return;
                    }
                    if self.strict && progress.stdin[..len] != data.0[..] {
                        let (got, offset) = (progress.stdin[..len].to_vec(), progress.matched);
                        progress.failed = true;
                        drop(progress);
                        process_transport_fakes::assert_bytes_eq!(
                            got,
                            data.0,
                            "{}: stdin (fd 0) at offset {offset} differs from the recording",
                            self.label
                        );
                        return;
                    }
                    progress.stdin.drain(..len);
                    progress.matched += len;
                }
                Event::Close { fd: 0 } if !progress.stdin_closed => return,
                Event::Close { fd } => {
                    progress.closed_by_parent.insert(*fd);
                }
                Event::Signal { .. } if progress.signals <= progress.signals_played => return,
                Event::Signal { .. } => progress.signals_played += 1,
                Event::Write { .. } | Event::Pause | Event::Resume => {}
                Event::Output { fd, data } => {
                    progress.cursor += 1;
                    drop(progress);
                    let _ = child.write(ChildFd(*fd), &data.0);
                    continue;
                }
                Event::Lost { fd } => {
                    let by_parent = progress.closed_by_parent.contains(fd);
                    if *fd == 0 {
                        progress.stdin_closed = true;
                    }
                    progress.cursor += 1;
                    drop(progress);
                    if !by_parent {
                        child.close(ChildFd(*fd));
                    }
                    continue;
                }
                Event::Exited { .. } => {
                    progress.cursor += 1;
                    drop(progress);
                    let end = event.end().expect("an Exited event has an end");
                    if child.transport().exited().is_none() {
                        child.exit_keeping_fds(end);
                    }
                    continue;
                }
            }
            progress.cursor += 1;
        }
    }
}
