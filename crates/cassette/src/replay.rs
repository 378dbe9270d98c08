//! [`ReplaySpawner`]: serves spawns from a cassette, as fakes that follow the recording.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use process_transport_api::{
    ChildFd, FailureSink, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnError,
    SpawnSpec,
};
use process_transport_fakes::{
    Explorer, FakeChild, MemoryProcessReactor, Script, SignalAction, TerminalModes,
};

use crate::recorder::{env_values, lock};
use crate::{Cassette, CassetteError, Event, FdKind, Recording, Redactions, Refusal};

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
/// // What `output()` of `echo hi` asks for: stdin inherited, stdout and stderr piped.
/// let spec = SpawnSpec::new("echo").arg("hi").child_fd(ChildFd::STDIN, ChildFdMapping::Inherit(0));
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
    /// Each recording and how it is served, in cassette order.
    slots: Arc<Vec<Slot>>,
    /// The slots of each command, in cassette order: a spawn looks at these only.
    by_command: Arc<HashMap<Vec<String>, Vec<usize>>>,
    /// The cassette as given, to rebuild with other redactions.
    cassette: Arc<Cassette>,
    strict: bool,
    /// Where the cassette came from, for messages.
    origin: String,
    /// Mismatches found on any thread, kept for the test's.
    failures: Arc<FailureSink>,
}

impl Drop for ReplaySpawner {
    /// Raises, on the thread that made the replay (the test's), a mismatch found where the
    /// test did not see it: on a task it never joined, say.
    fn drop(&mut self) {
        self.failures.raise_on_home_thread(&format!(
            "ReplaySpawner: the replay of cassette {}",
            self.origin
        ));
    }
}

impl fmt::Debug for ReplaySpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplaySpawner")
            .field("recordings", &self.slots.len())
            .finish()
    }
}

impl ReplaySpawner {
    /// Serves the spawns of `cassette`, comparing stdin bytes with the recording, with this
    /// machine's paths restored ([`Redactions::new`]).
    pub fn new(cassette: Cassette) -> Self {
        Self::build(cassette, true, &Redactions::new())
    }

    /// Serves the spawns of `cassette`, counting stdin bytes without comparing them.
    pub fn lenient(cassette: Cassette) -> Self {
        Self::build(cassette, false, &Redactions::new())
    }

    /// Restores the placeholders of `redactions` (in place of the default, this machine's
    /// paths) before serving: give the redactions the recording used, with this machine's
    /// values.
    ///
    /// ```
    /// use process_transport_cassette::{Cassette, Recording, Redactions, ReplaySpawner};
    /// use process_transport_api::SpawnSpec;
    ///
    /// let recording = Recording::of(&SpawnSpec::new("login").arg("<PASSWORD>"));
    /// let replay = ReplaySpawner::new(Cassette::new(vec![recording]))
    ///     .restoring(&Redactions::new().secret("hunter2", "<PASSWORD>"));
    /// assert_eq!(replay.unused(), ["login hunter2"]);
    /// ```
    pub fn restoring(self, redactions: &Redactions) -> Self {
        let origin = self.origin.clone();
        Self::build((*self.cassette).clone(), self.strict, redactions).named(origin)
    }

    /// Loads the cassette at `path` and serves it strictly.
    ///
    /// # Errors
    /// As [`Cassette::load`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        Cassette::load(path).map(|cassette| Self::new(cassette).named(path.display()))
    }

    /// Names the cassette in messages (a spawn no recording matches, a byte that differs):
    /// its path, say. [`load`](Self::load) names it by its path.
    pub fn named(mut self, origin: impl fmt::Display) -> Self {
        self.origin = origin.to_string();
        self
    }

    /// Lets `explorer` hold what every replayed child does, so that a test runs through the
    /// orders a real child could have produced the same bytes in: the recorded bytes stay
    /// fixed; their chunking, the interleaving of fds, and where the exit falls vary. See
    /// `process-transport-explore`.
    pub fn explored_by(self, explorer: &Explorer) -> Self {
        for slot in self.slots.iter() {
            if let Serve::Play(reactor, _) = &slot.serve {
                reactor.explored_by(explorer);
            }
        }
        self
    }

    fn build(cassette: Cassette, strict: bool, redactions: &Redactions) -> Self {
        let failures = Arc::new(FailureSink::new());
        let given = Arc::new(cassette.clone());
        let cassette = cassette.restored(redactions);
        let mut by_command: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
        let slots = cassette
            .spawns
            .into_iter()
            .enumerate()
            .map(|(index, recording)| {
                by_command
                    .entry(recording.command.clone())
                    .or_default()
                    .push(index);
                let serve = match &recording.refused {
                    Some(refusal) => Serve::Refuse(refusal.clone()),
                    None => {
                        // A reactor of its own per recording: a spawn finds its recording
                        // through `by_command`, not by asking every registration.
                        let reactor = MemoryProcessReactor::strict();
                        let label = format!("spawn {index} (`{}`)", recording.command_line());
                        let (script, player) =
                            Player::script(recording.clone(), label, strict, failures.clone());
                        reactor.register_matching(recording.command_line(), |_| true, script);
                        Serve::Play(reactor, player)
                    }
                };
                Slot {
                    recording,
                    serve,
                    used: AtomicBool::new(false),
                }
            })
            .collect();
        ReplaySpawner {
            slots: Arc::new(slots),
            by_command: Arc::new(by_command),
            cassette: given,
            strict,
            origin: "(in memory)".into(),
            failures,
        }
    }

    /// Why no recording serves `spec`, naming the closest one.
    fn not_found(&self, spec: &SpawnSpec) -> SpawnError {
        let asked = Recording::of(spec);
        let line = asked.command_line();
        let same: Vec<&Slot> = self
            .by_command
            .get(&asked.command)
            .map(|indices| indices.iter().map(|&index| &self.slots[index]).collect())
            .unwrap_or_default();
        let closest = self
            .slots
            .iter()
            .min_by_key(|slot| strsim::levenshtein(&slot.recording.command_line(), &line));
        let hint = match (same.iter().find(|slot| !slot.used()), closest) {
            (_, None) => "; it holds no recordings".to_owned(),
            (Some(slot), _) => {
                let recording = &slot.recording;
                let differs: Vec<String> = slot
                    .differences(&asked, spec)
                    .into_iter()
                    .map(|aspect| match aspect {
                        Aspect::Cwd => {
                            format!("cwd `{}`", recording.cwd.as_deref().unwrap_or(""))
                        }
                        Aspect::Args => "other argument bytes (not UTF-8)".to_owned(),
                        Aspect::Env => format!(
                            "env `{}`{}{}",
                            recording.env.join(" "),
                            if recording.env_cleared {
                                ", env_clear"
                            } else {
                                ""
                            },
                            if recording.env_removed.is_empty() {
                                String::new()
                            } else {
                                format!(", env_remove `{}`", recording.env_removed.join(" "))
                            }
                        ),
                        Aspect::User => {
                            format!("uid {:?}, gid {:?}", recording.uid, recording.gid)
                        }
                        Aspect::Fds => format!("fds `{:?}`", recording.fds),
                        Aspect::Process => format!(
                            "process group {:?}, arg0 {:?}",
                            recording.process_group, recording.arg0
                        ),
                        Aspect::TerminalSize => match recording.pty_size {
                            Some(size) => format!("terminal size {}x{}", size.rows, size.cols),
                            None => "no terminal size".to_owned(),
                        },
                    })
                    .collect();
                format!(
                    "; `{line}` is recorded, but it was recorded with {}",
                    differs.join(", ")
                )
            }
            (None, _) if !same.is_empty() => {
                format!("; `{line}` is recorded, but each recording of it was served already")
            }
            (None, Some(slot)) => format!(
                "; the closest recorded command is `{}`",
                slot.recording.command_line()
            ),
        };
        SpawnError::NotFound(format!(
            "`{line}`: no recording in cassette {} matches{hint}",
            self.origin
        ))
    }

    /// The recordings never served, as their command lines, in cassette order.
    pub fn unused(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|slot| !slot.used())
            .map(|slot| slot.recording.command_line())
            .collect()
    }

    /// What the served recordings still wait for from the protocol: one line per spawn that
    /// stopped short of its recording's end (the protocol never wrote the rest of the
    /// recorded input, never closed, never sent the recorded signal), naming the spawn and
    /// the awaited bytes. Empty when every served recording played to its end.
    pub fn waiting(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|slot| slot.used())
            .filter_map(|slot| match &slot.serve {
                Serve::Play(_, player) => player.waiting_for(),
                Serve::Refuse(_) => None,
            })
            .collect()
    }

    /// The mismatches this replay found so far, on any task or thread, and acknowledges
    /// them: a test that expects a mismatch takes it here, and the replay does not raise it
    /// again at `assert_all_used` or at its drop.
    pub fn take_failures(&self) -> Vec<String> {
        self.failures.take()
    }

    /// The mismatches not raised yet, marking them raised (for `Session::finish`).
    pub(crate) fn failures_to_raise(&self) -> Vec<String> {
        self.failures.to_raise()
    }

    /// Checks that no mismatch was found, that every recording was served, and played to its
    /// end.
    ///
    /// # Panics
    /// On a mismatch found on any task or thread, with its message; when a recording was not
    /// served, naming each; when a served one still waits for the protocol
    /// ([`waiting`](Self::waiting)), naming what it waits for.
    pub fn assert_all_used(&self) {
        let failures = self.failures.to_raise();
        assert!(
            failures.is_empty(),
            "ReplaySpawner: the replay of cassette {} failed: {}",
            self.origin,
            failures.join("; ")
        );
        let unused: Vec<String> = self
            .unused()
            .iter()
            .map(|line| format!("`{line}` (used 0 of 1 times)"))
            .collect();
        assert!(
            unused.is_empty(),
            "ReplaySpawner: {} recorded spawn(s) of cassette {} never served: {}",
            unused.len(),
            self.origin,
            unused.join(", ")
        );
        let waits = self.waiting();
        assert!(
            waits.is_empty(),
            "ReplaySpawner: {} served spawn(s) of cassette {} stopped short of the recording: {}",
            waits.len(),
            self.origin,
            waits.join("; ")
        );
    }
}

/// One recording and how it is served.
struct Slot {
    /// The recording, restored.
    recording: Recording,
    serve: Serve,
    used: AtomicBool,
}

enum Serve {
    /// As a fake child that plays the recording, and the player that knows how far it got.
    Play(MemoryProcessReactor, Arc<Player>),
    /// As the spawn error it recorded.
    Refuse(Refusal),
}

impl Slot {
    fn used(&self) -> bool {
        self.used.load(Ordering::SeqCst)
    }

    /// Takes this slot for a spawn, unless another spawn took it first.
    fn claim(&self) -> bool {
        self.used
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Whether a spawn of `spec` (`asked`, as a recording would hold it) matches this
    /// recording, whose command line is the same.
    fn matches(&self, asked: &Recording, spec: &SpawnSpec) -> bool {
        self.differences(asked, spec).is_empty()
    }

    /// What of a spawn of `spec` (`asked`) differs from this recording, whose command line is
    /// the same as text: the exact bytes of words that are not UTF-8, the cwd (when recorded),
    /// the environment (names set, kept values, a clear, names removed), uid and gid, the fd
    /// map, the terminal size, the process group and `argv[0]`.
    fn differences(&self, asked: &Recording, spec: &SpawnSpec) -> Vec<Aspect> {
        let recording = &self.recording;
        let values_differ = !recording.env_values.is_empty()
            && env_values(spec, &recording.env_values.keys().cloned().collect())
                != recording.env_values;
        [
            (
                recording.cwd.is_some() && asked.cwd != recording.cwd,
                Aspect::Cwd,
            ),
            (asked.command_bytes != recording.command_bytes, Aspect::Args),
            (
                asked.env != recording.env
                    || values_differ
                    || asked.env_cleared != recording.env_cleared
                    || asked.env_removed != recording.env_removed,
                Aspect::Env,
            ),
            (
                (asked.uid, asked.gid) != (recording.uid, recording.gid),
                Aspect::User,
            ),
            (
                same_shape(&asked.fds) != same_shape(&recording.fds) || asked.pty != recording.pty,
                Aspect::Fds,
            ),
            (asked.pty_size != recording.pty_size, Aspect::TerminalSize),
            (
                (&asked.process_group, &asked.arg0) != (&recording.process_group, &recording.arg0),
                Aspect::Process,
            ),
        ]
        .into_iter()
        .filter_map(|(differs, aspect)| differs.then_some(aspect))
        .collect()
    }
}

/// The fd map as a replay compares it: a parent fd above 2 given to the child is "some parent
/// fd", whatever its number, since the number a pipe or file gets changes from run to run (as
/// a temporary path does). The standard fds 0, 1 and 2 are compared as they are.
fn same_shape(fds: &std::collections::BTreeMap<u32, FdKind>) -> Vec<(u32, FdKind)> {
    fds.iter()
        .map(|(fd, kind)| match kind {
            FdKind::Inherit(parent) if *parent > 2 => (*fd, FdKind::Inherit(3)),
            other => (*fd, *other),
        })
        .collect()
}

/// A part of a spawn a recording is matched on, besides its command line.
enum Aspect {
    Args,
    Cwd,
    Env,
    User,
    Fds,
    TerminalSize,
    Process,
}

#[async_trait]
impl ProcessSpawner for ReplaySpawner {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        spec.validate()?;
        let asked = Recording::of(&spec);
        let slot = self.by_command.get(&asked.command).and_then(|indices| {
            indices
                .iter()
                .map(|&index| &self.slots[index])
                .find(|slot| !slot.used() && slot.matches(&asked, &spec) && slot.claim())
        });
        match slot.map(|slot| &slot.serve) {
            Some(Serve::Play(reactor, _)) => reactor.spawn_process(protocol, spec).await,
            Some(Serve::Refuse(refusal)) => Err(refusal.error()),
            None => Err(self.not_found(&spec)),
        }
    }
}

/// Where a replayed child is in its recording.
#[derive(Default)]
struct Progress {
    cursor: usize,
    /// Per input fd: bytes the protocol wrote that the recording has not accounted for yet.
    input: BTreeMap<u32, Vec<u8>>,
    /// Per input fd: how many bytes the recording accounted for, the offset of `input`.
    matched: BTreeMap<u32, usize>,
    /// Input fds closed (by the protocol) or lost (the child closed them): a recorded close
    /// of one by the protocol has nothing left to wait for, as closing a lost pipe does
    /// nothing the child could see.
    inputs_closed: BTreeSet<u32>,
    /// Input fds the protocol closed: no more bytes can come on them.
    closed_by_protocol: BTreeSet<u32>,
    /// Signals the protocol sent.
    signals: usize,
    /// Recorded signals played past.
    signals_played: usize,
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
    failures: Arc<FailureSink>,
}

impl Player {
    fn script(
        recording: Recording,
        label: String,
        strict: bool,
        failures: Arc<FailureSink>,
    ) -> (Script, Arc<Player>) {
        let signals: BTreeSet<String> = recording
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Signal { signal } => Some(signal.clone()),
                _ => None,
            })
            .collect();
        let inputs: Vec<u32> = recording
            .fds
            .iter()
            .filter(|(_, kind)| **kind == FdKind::ParentWrites)
            .map(|(fd, _)| *fd)
            .collect();
        let player = Arc::new(Player {
            recording,
            label,
            strict,
            progress: Mutex::default(),
            failures,
        });
        // A pipe the protocol closed is lost where the recording says, not at the close.
        let held: Vec<u32> = inputs
            .iter()
            .copied()
            .filter(|fd| player.loss_follows_close(*fd))
            .collect();
        let mut script = Script::new().start_with({
            let player = player.clone();
            move |child| {
                if player.recording.pty {
                    // The recorded bytes went through a real terminal already.
                    child.set_terminal_modes(TerminalModes::PASSTHROUGH);
                }
                for fd in &held {
                    child.hold_flush(ChildFd(*fd));
                }
                player.advance(child);
            }
        });
        for fd in inputs {
            let (on_write, on_eof) = (player.clone(), player.clone());
            script = script
                .on_input(ChildFd(fd), move |child, data| {
                    let mut progress = lock(&on_write.progress);
                    progress
                        .input
                        .entry(fd)
                        .or_default()
                        .extend_from_slice(data);
                    drop(progress);
                    on_write.advance(child);
                })
                .on_input_eof(ChildFd(fd), move |child| {
                    let mut progress = lock(&on_eof.progress);
                    progress.inputs_closed.insert(fd);
                    progress.closed_by_protocol.insert(fd);
                    drop(progress);
                    on_eof.advance(child);
                });
        }
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
        (script, player)
    }

    /// What the replay still waits for from the protocol, when it stopped short of the
    /// recording's end without a mismatch: the bytes of a write, a close, a signal.
    fn waiting_for(&self) -> Option<String> {
        let progress = lock(&self.progress);
        if progress.failed {
            return None;
        }
        let what = match self.recording.events.get(progress.cursor)? {
            Event::Write { fd, data } => {
                let have = progress.input.get(fd).map_or(0, Vec::len);
                let offset = progress.matched.get(fd).copied().unwrap_or(0);
                format!(
                    "{} more byte(s) on fd {fd} (it got {have} of the {} recorded at offset {offset}: {})",
                    data.0.len().saturating_sub(have),
                    data.0.len(),
                    crate::cassette::escaped(&data.0)
                )
            }
            Event::Close { fd } => format!("the close of fd {fd}"),
            Event::Signal { signal } => format!("signal {signal}"),
            other => format!("{other:?}"),
        };
        Some(format!("{}: still waits for {what}", self.label))
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
                Event::Write { fd, data } => {
                    let len = data.0.len();
                    let closed = progress.closed_by_protocol.contains(fd);
                    let written = progress.input.entry(*fd).or_default();
                    // Input that ends short of the recording can never match it: fail at the
                    // close rather than wait for bytes that cannot come.
                    let short = written.len() < len;
                    if short && !closed {
                        return;
                    }
                    if short || (self.strict && written[..len] != data.0[..]) {
                        let got = written[..len.min(written.len())].to_vec();
                        let offset = progress.matched.get(fd).copied().unwrap_or(0);
                        progress.failed = true;
                        drop(progress);
                        let name = if *fd == 0 {
                            "stdin (fd 0)".into()
                        } else {
                            format!("fd {fd}")
                        };
                        let how = if short {
                            format!("was closed {} byte(s) short of", len - got.len())
                        } else {
                            "differs from".to_owned()
                        };
                        let text = process_transport_fakes::assert::bytes_difference(
                            &got,
                            &data.0,
                            Some(format_args!(
                                "{}: {name} at offset {offset} {how} the recording",
                                self.label
                            )),
                        )
                        .expect("short or different input differs");
                        self.failures.keep(text.clone());
                        panic!("{text}");
                    }
                    written.drain(..len);
                    *progress.matched.entry(*fd).or_default() += len;
                }
                Event::Close { fd }
                    if self.is_input(*fd) && !progress.inputs_closed.contains(fd) =>
                {
                    return;
                }
                Event::Close { .. } => {}
                Event::Signal { .. } if progress.signals <= progress.signals_played => return,
                Event::Signal { .. } => progress.signals_played += 1,
                Event::Pause | Event::Resume | Event::Resize { .. } => {}
                Event::Output { fd, data } => {
                    progress.cursor += 1;
                    drop(progress);
                    let _ = child.write(ChildFd(*fd), &data.0);
                    continue;
                }
                Event::Lost { fd } => {
                    progress.inputs_closed.insert(*fd);
                    progress.cursor += 1;
                    drop(progress);
                    if self.recording.pty && *fd == 1 {
                        // A terminal's output ends when the child's side is closed on every
                        // fd: fd 2 is the terminal too.
                        child.close(ChildFd::STDERR);
                    }
                    // The child's end closes; the loss of a pipe the protocol closed is
                    // delivered now if its flush was held, and was already otherwise.
                    child.close(ChildFd(*fd));
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

    /// Whether the recording has the protocol close `fd`, then its loss.
    fn loss_follows_close(&self, fd: u32) -> bool {
        let events = &self.recording.events;
        events
            .iter()
            .position(|event| *event == Event::Close { fd })
            .is_some_and(|close| events[close..].contains(&Event::Lost { fd }))
    }

    /// Whether child fd `fd` is a pipe the protocol writes.
    fn is_input(&self, fd: u32) -> bool {
        self.recording.fds.get(&fd) == Some(&FdKind::ParentWrites)
    }
}
