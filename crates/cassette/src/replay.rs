//! [`ReplaySpawner`]: serves spawns from a cassette, as fakes that follow the recording.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use process_transport_api::{
    implement::FailureSink, ChildFd, DefaultAction, ProcessProtocol, ProcessSpawner,
    ProcessTransport, Signal, SpawnError, SpawnSpec,
};
use process_transport_fakes::{
    Explorer, FakeChild, MemoryProcessReactor, Script, SignalAction, TerminalModes,
};

use crate::recorder::{env_digest, env_values, lock};
use crate::volatile::{render, Bindings, Extent, Pattern, Segment, Volatiles};
use crate::{Cassette, CassetteError, Event, FdKind, PatternError, Recording, Redactions, Refusal};

/// How a [`ReplaySpawner`] matches a spawn and its input against a recording, besides the
/// command line: the rules of one cassette. The default is exact: stdin bytes compared, the
/// cwd compared where recorded, every argument compared.
#[derive(Clone, Default)]
pub struct MatchRules {
    lenient_stdin: bool,
    ignore_cwd: bool,
    spawn_details: bool,
    args: Option<ArgsRule>,
    /// Recorded signals a process ignores by default are not waited for: a shim, a process
    /// of its own, can miss one sent while it starts, before it can catch it.
    unwaited_ignored_signals: bool,
}

impl fmt::Debug for MatchRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchRules")
            .field("lenient_stdin", &self.lenient_stdin)
            .field("ignore_cwd", &self.ignore_cwd)
            .field("ignore_spawn_details", &self.spawn_details)
            .field("args", &self.args.as_ref().map(ArgsRule::describe))
            .finish()
    }
}

/// A test's predicate on the recorded and the asked arguments.
type ArgsPredicate = dyn Fn(&[String], &[String]) -> bool + Send + Sync;

/// How arguments are matched, when not word for word.
#[derive(Clone)]
enum ArgsRule {
    /// The recorded and the asked arguments (not the executable) are given to the predicate.
    Predicate(Arc<ArgsPredicate>),
    /// A recorded argument that is a value of the pattern matches any asked argument that is.
    Pattern(Arc<Pattern>),
}

impl ArgsRule {
    fn describe(&self) -> String {
        match self {
            ArgsRule::Predicate(_) => "arguments matched by the test's predicate".into(),
            ArgsRule::Pattern(pattern) => format!(
                "an argument matching `{}` matches any other that does",
                pattern.source()
            ),
        }
    }
}

impl MatchRules {
    /// Exact: the default.
    pub fn exact() -> Self {
        Self::default()
    }

    /// Stdin bytes are counted, not compared: output that answered N bytes comes after N
    /// bytes, whatever they are.
    pub fn lenient_stdin(mut self) -> Self {
        self.lenient_stdin = true;
        self
    }

    #[cfg(feature = "cli")]
    /// Recorded signals a process ignores by default (SIGCHLD, SIGURG, SIGWINCH, SIGCONT)
    /// are played past, not waited for: a shim, a process of its own, misses one sent while
    /// it starts, before it can catch it, as the kernel discards it.
    pub(crate) fn unwaited_ignored_signals(mut self) -> Self {
        self.unwaited_ignored_signals = true;
        self
    }

    /// The working directory is not compared, even where it was recorded.
    pub fn ignore_cwd(mut self) -> Self {
        self.ignore_cwd = true;
        self
    }

    /// Only the command line, the cwd and the kept env values and digests are compared, not
    /// the env names set, the fd map, the user, the terminal or the process group: for a
    /// process that cannot see how it was spawned (a shim on `PATH`, [`Shims`](crate::Shims)).
    pub fn ignore_spawn_details(mut self) -> Self {
        self.spawn_details = true;
        self
    }

    /// The arguments (after the executable) match when `predicate(recorded, asked)` says so,
    /// in place of word for word; the executable is still compared.
    pub fn args_with(
        mut self,
        predicate: impl Fn(&[String], &[String]) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.args = Some(ArgsRule::Predicate(Arc::new(predicate)));
        self
    }

    /// A recorded argument that, as a whole, matches `pattern` matches any asked argument in
    /// its place that does too (say `--seed=[0-9]+`); every other argument is compared.
    ///
    /// # Errors
    /// A [`PatternError`] when the pattern does not parse or matches the empty string.
    pub fn args_matching(mut self, pattern: &str) -> Result<Self, PatternError> {
        self.args = Some(ArgsRule::Pattern(Arc::new(Pattern::new(
            pattern,
            "(argument rule)",
        )?)));
        Ok(self)
    }

    /// The rule that refused a spawn in `aspect`, as a mismatch message names it.
    fn refusing(&self, aspect: &Aspect) -> &'static str {
        match aspect {
            Aspect::Cwd => {
                "rule: the cwd is compared where recorded (MatchRules::ignore_cwd turns it off)"
            }
            Aspect::Env => "rule: the names set, kept values and digests are compared",
            _ => "rule: compared exactly",
        }
    }
}

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
    /// The slots of each executable, in cassette order: a spawn looks at these, and at
    /// those of an executable that holds a placeholder (under `None`).
    by_executable: Arc<HashMap<Option<String>, Vec<usize>>>,
    /// The cassette as given, to rebuild with other redactions or rules.
    cassette: Arc<Cassette>,
    redactions: Redactions,
    rules: MatchRules,
    /// The placeholders of the cassette's volatile values, and what this replay bound them
    /// to: matched, claimed and bound under this lock, so concurrent spawns agree.
    volatiles: Arc<Volatiles>,
    bindings: Arc<Mutex<Bindings>>,
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
        Self::build(cassette, MatchRules::exact(), Redactions::new())
    }

    /// Serves the spawns of `cassette`, counting stdin bytes without comparing them
    /// ([`MatchRules::lenient_stdin`]).
    pub fn lenient(cassette: Cassette) -> Self {
        Self::build(
            cassette,
            MatchRules::exact().lenient_stdin(),
            Redactions::new(),
        )
    }

    /// Matches spawns and their input by `rules` in place of the current ones.
    ///
    /// ```
    /// use process_transport_cassette::{Cassette, MatchRules, Recording, ReplaySpawner};
    /// use process_transport_api::{ProcessSpawner, SpawnSpec};
    /// # struct Quiet; impl process_transport_api::ProcessProtocol for Quiet { fn make_connection(&mut self, _: std::sync::Arc<dyn process_transport_api::ProcessTransport>) {} }
    ///
    /// let recording = Recording::of(&SpawnSpec::new("fuzz").arg("--seed=17"));
    /// let replay = ReplaySpawner::new(Cassette::new(vec![recording]))
    ///     .with_rules(MatchRules::exact().args_matching("--seed=[0-9]+")?);
    /// let spawned = futures_executor::block_on(
    ///     replay.spawn_process(Box::new(Quiet), SpawnSpec::new("fuzz").arg("--seed=99")),
    /// );
    /// assert!(spawned.is_ok());
    /// # Ok::<(), process_transport_cassette::PatternError>(())
    /// ```
    pub fn with_rules(self, rules: MatchRules) -> Self {
        let origin = self.origin.clone();
        Self::build((*self.cassette).clone(), rules, self.redactions.clone()).named(origin)
    }

    /// The rules this replay matches by.
    pub fn rules(&self) -> &MatchRules {
        &self.rules
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
        Self::build(
            (*self.cassette).clone(),
            self.rules.clone(),
            redactions.clone(),
        )
        .named(origin)
    }

    /// What this replay bound each placeholder of a volatile value to so far, by name.
    ///
    /// ```
    /// use process_transport_cassette::{Cassette, Placeholder, Recording, ReplaySpawner};
    /// use process_transport_api::{ProcessSpawner, SpawnSpec};
    /// # struct Quiet; impl process_transport_api::ProcessProtocol for Quiet { fn make_connection(&mut self, _: std::sync::Arc<dyn process_transport_api::ProcessTransport>) {} }
    ///
    /// let mut cassette = Cassette::new(vec![Recording::of(&SpawnSpec::new("rm").arg("-r").arg("<DIR>"))]);
    /// cassette.placeholders.insert("<DIR>".into(), Placeholder { pattern: "/tmp/run[0-9]+".into() });
    /// let replay = ReplaySpawner::new(cassette);
    /// let spec = SpawnSpec::new("rm").arg("-r").arg("/tmp/run42");
    /// futures_executor::block_on(replay.spawn_process(Box::new(Quiet), spec)).unwrap();
    /// assert_eq!(replay.bindings()["<DIR>"], b"/tmp/run42");
    /// ```
    pub fn bindings(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.bindings).clone()
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

    /// A replay of `cassette` by `rules`, restoring `redactions`: what `new`, `restoring` and
    /// `with_rules` make together, built once.
    pub(crate) fn build(cassette: Cassette, rules: MatchRules, redactions: Redactions) -> Self {
        let failures = Arc::new(FailureSink::new());
        let given = Arc::new(cassette.clone());
        let cassette = cassette.restored(&redactions);
        let volatiles = Arc::new(Volatiles::of(
            &cassette.placeholders,
            cassette.framing.is_some(),
        ));
        let bindings: Arc<Mutex<Bindings>> = Arc::default();
        let mut by_executable: HashMap<Option<String>, Vec<usize>> = HashMap::new();
        let slots = cassette
            .spawns
            .into_iter()
            .enumerate()
            .map(|(index, recording)| {
                let executable = recording.command.first().cloned().unwrap_or_default();
                let key = volatiles
                    .segments(executable.as_bytes())
                    .is_none()
                    .then_some(executable);
                by_executable.entry(key).or_default().push(index);
                let serve = match &recording.refused {
                    Some(refusal) => Serve::Refuse(refusal.clone()),
                    None => {
                        // A reactor of its own per recording: a spawn finds its recording
                        // through `by_executable`, not by asking every registration.
                        let reactor = MemoryProcessReactor::strict();
                        let label = format!("spawn {index} (`{}`)", recording.command_line());
                        let (script, player) = Player::script(
                            recording.clone(),
                            label,
                            Shared {
                                strict: !rules.lenient_stdin,
                                unwaited_ignored_signals: rules.unwaited_ignored_signals,
                                failures: failures.clone(),
                                volatiles: volatiles.clone(),
                                bindings: bindings.clone(),
                            },
                        );
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
            by_executable: Arc::new(by_executable),
            cassette: given,
            redactions,
            rules,
            volatiles,
            bindings,
            origin: "(in memory)".into(),
            failures,
        }
    }

    /// The slots a spawn of `executable` may be served from, in cassette order.
    fn candidates(&self, executable: &str) -> Vec<usize> {
        let mut indices: Vec<usize> = [Some(executable.to_owned()), None]
            .iter()
            .filter_map(|key| self.by_executable.get(key))
            .flatten()
            .copied()
            .collect();
        indices.sort_unstable();
        indices
    }

    /// What of a spawn of `spec` (`asked`) differs from `slot`'s recording, by this replay's
    /// rules; `bindings` takes the values a match binds.
    fn differences(
        &self,
        slot: &Slot,
        asked: &Recording,
        spec: &SpawnSpec,
        bindings: &mut Bindings,
    ) -> Vec<Aspect> {
        slot.differences(asked, spec, &self.rules, &self.volatiles, bindings)
    }

    /// Whether the unserved recording of `slot` serves a spawn of `spec` (`asked`), binding
    /// what the match binds into `bindings`.
    fn serves(
        &self,
        slot: &Slot,
        asked: &Recording,
        spec: &SpawnSpec,
        bindings: &mut Bindings,
    ) -> bool {
        !slot.used() && self.differences(slot, asked, spec, bindings).is_empty()
    }

    /// Why no recording serves `spec`, naming the closest one.
    fn not_found(&self, spec: &SpawnSpec) -> SpawnError {
        let asked = Recording::of(spec);
        let line = asked.command_line();
        let executable = asked.command.first().cloned().unwrap_or_default();
        let bound = lock(&self.bindings).clone();
        let same: Vec<&Slot> = self
            .candidates(&executable)
            .into_iter()
            .map(|index| &self.slots[index])
            .filter(|slot| {
                slot.command_matches(&asked, &self.rules, &self.volatiles, &mut bound.clone())
            })
            .collect();
        let closest = self
            .slots
            .iter()
            .min_by_key(|slot| strsim::levenshtein(&slot.recording.command_line(), &line));
        let hint = match (same.iter().find(|slot| !slot.used()), closest) {
            (_, None) => "; it holds no recordings".to_owned(),
            (Some(slot), _) => {
                let recording = &slot.recording;
                let aspects = self.differences(slot, &asked, spec, &mut bound.clone());
                let rule = aspects
                    .first()
                    .map(|aspect| self.rules.refusing(aspect))
                    .unwrap_or("rule: compared exactly");
                let differs: Vec<String> = aspects
                    .into_iter()
                    .map(|aspect| match aspect {
                        Aspect::Cwd => {
                            format!("cwd `{}`", recording.cwd.as_deref().unwrap_or(""))
                        }
                        Aspect::Command => "another command line".to_owned(),
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
                    "; `{line}` is recorded, but it was recorded with {} ({rule})",
                    differs.join(", ")
                )
            }
            (None, _) if !same.is_empty() => {
                format!("; `{line}` is recorded, but each recording of it was served already")
            }
            (None, Some(slot)) => {
                let placeholders = slot
                    .recording
                    .command
                    .iter()
                    .map(|word| self.volatiles.describe(word.as_bytes(), &bound))
                    .filter(|text| !text.is_empty())
                    .collect::<Vec<_>>();
                let rule = match &self.rules.args {
                    Some(rule) => format!(" (rule: {})", rule.describe()),
                    None if placeholders.is_empty() => String::new(),
                    None => format!(" (with {})", placeholders.join(", ")),
                };
                format!(
                    "; the closest recorded command is `{}`{rule}",
                    slot.recording.command_line()
                )
            }
        };
        SpawnError::NotFound(format!(
            "`{line}`: no recording in cassette {} matches{hint}",
            self.origin
        ))
    }

    /// The places (in the cassette) of the recordings served so far, in cassette order.
    pub fn served(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.used())
            .map(|(index, _)| index)
            .collect()
    }

    /// Takes the recordings at `indices` as served already: for a replay that several
    /// processes share ([`Shims`](crate::Shims)), each serving the recordings the others
    /// have not. An index past the cassette's end is ignored.
    pub fn already_served(self, indices: impl IntoIterator<Item = usize>) -> Self {
        for index in indices {
            if let Some(slot) = self.slots.get(index) {
                slot.used.store(true, Ordering::SeqCst);
            }
        }
        self
    }

    /// Starts with the placeholders of `bindings` bound (what another process sharing this
    /// replay bound).
    pub fn with_bindings(self, bindings: BTreeMap<String, Vec<u8>>) -> Self {
        lock(&self.bindings).extend(bindings);
        self
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

    /// Whether the command line of a spawn (`asked`, as a recording would hold it) matches
    /// this recording's as text: word for word, but where the recording holds a placeholder
    /// of a volatile value, which matches (and binds, in `bindings`) a value of its pattern,
    /// and where the rules match arguments otherwise.
    fn command_matches(
        &self,
        asked: &Recording,
        rules: &MatchRules,
        volatiles: &Volatiles,
        bindings: &mut Bindings,
    ) -> bool {
        let recorded = &self.recording.command;
        let Some(((executable, args), (asked_executable, asked_args))) =
            recorded.split_first().zip(asked.command.split_first())
        else {
            return recorded == &asked.command;
        };
        if !volatiles.match_word(executable.as_bytes(), asked_executable.as_bytes(), bindings) {
            return false;
        }
        match &rules.args {
            Some(ArgsRule::Predicate(predicate)) => predicate(args, asked_args),
            rule => {
                args.len() == asked_args.len()
                    && args.iter().zip(asked_args).all(|(recorded, asked)| {
                        let by_rule = matches!(rule, Some(ArgsRule::Pattern(pattern))
                            if pattern.is_value(recorded.as_bytes()) && pattern.is_value(asked.as_bytes()));
                        by_rule || volatiles.match_word(recorded.as_bytes(), asked.as_bytes(), bindings)
                    })
            }
        }
    }

    /// What of a spawn of `spec` (`asked`) differs from this recording, by `rules`: the
    /// command line as text ([`command_matches`](Self::command_matches)), the exact bytes of
    /// words that are not UTF-8, the cwd (when recorded and not ignored), the environment
    /// (names set, kept values and digests, a clear, names removed), uid and gid, the fd map,
    /// the terminal size, the process group and `argv[0]`. The values a match binds are in
    /// `bindings` when nothing differs.
    fn differences(
        &self,
        asked: &Recording,
        spec: &SpawnSpec,
        rules: &MatchRules,
        volatiles: &Volatiles,
        bindings: &mut Bindings,
    ) -> Vec<Aspect> {
        let recording = &self.recording;
        let mut tentative = bindings.clone();
        let mut differs = Vec::new();
        if !self.command_matches(asked, rules, volatiles, &mut tentative) {
            differs.push(Aspect::Command);
        }
        let bytes_differ = match (&recording.command_bytes, &asked.command_bytes) {
            (None, None) => false,
            _ if rules.args.is_some() => false,
            (recorded, asked_bytes) => {
                let words = |exact: &Option<Vec<crate::Bytes>>, text: &[String]| -> Vec<Vec<u8>> {
                    match exact {
                        Some(words) => words.iter().map(|word| word.0.clone()).collect(),
                        None => text.iter().map(|word| word.as_bytes().to_vec()).collect(),
                    }
                };
                let (recorded, asked_words) = (
                    words(recorded, &recording.command),
                    words(asked_bytes, &asked.command),
                );
                recorded.len() != asked_words.len()
                    || !recorded
                        .iter()
                        .zip(&asked_words)
                        .all(|(r, a)| volatiles.match_word(r, a, &mut tentative))
            }
        };
        if bytes_differ {
            differs.push(Aspect::Args);
        }
        let cwd_differs = match (&recording.cwd, &asked.cwd) {
            _ if rules.ignore_cwd => false,
            (None, _) => false,
            (Some(_), None) => true,
            (Some(recorded), Some(asked)) => {
                !volatiles.match_word(recorded.as_bytes(), asked.as_bytes(), &mut tentative)
            }
        };
        if cwd_differs {
            differs.push(Aspect::Cwd);
        }
        let live_values = env_values(spec, &recording.env_values.keys().cloned().collect());
        let values_differ = recording.env_values.iter().any(|(name, recorded)| {
            live_values.get(name).is_none_or(|live| {
                !volatiles.match_word(recorded.as_bytes(), live.as_bytes(), &mut tentative)
            })
        });
        let digests_differ = recording.env_digests.iter().any(|(name, digest)| {
            let live = spec
                .get_env()
                .vars()
                .find(|(set, _)| set.to_string_lossy() == name.as_str())
                .and_then(|(_, value)| value.map(|value| env_digest(value.as_encoded_bytes())));
            live.as_ref() != Some(digest)
        });
        let names_differ = !rules.spawn_details
            && (asked.env != recording.env
                || asked.env_cleared != recording.env_cleared
                || asked.env_removed != recording.env_removed);
        if names_differ || values_differ || digests_differ {
            differs.push(Aspect::Env);
        }
        for (differ, aspect) in [
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
        ] {
            if differ && !rules.spawn_details {
                differs.push(aspect);
            }
        }
        // A process that cannot see how it was spawned can still see what its standard fds
        // are: those must fit.
        if rules.spawn_details && !fds_fit(recording, asked) {
            differs.push(Aspect::Fds);
        }
        if differs.is_empty() {
            *bindings = tentative;
        }
        differs
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

/// Whether the standard fds a shim found (`asked`: a pipe as `ParentReads` or
/// `ParentWrites`, the null device as `Null`, a closed fd as none, a terminal or any other
/// file as `Inherit`, with `pty` when one is a terminal) fit how `recording` mapped them: a
/// recorded parent fd fits anything, as it was the parent's own; a recorded terminal needs
/// one.
fn fds_fit(recording: &Recording, asked: &Recording) -> bool {
    if recording.pty {
        return asked.pty;
    }
    (0..3).all(|fd| match (recording.fds.get(&fd), asked.fds.get(&fd)) {
        (Some(FdKind::Inherit(_)), _) => true,
        // A terminal or a file where the recording had a pipe: what a program run by hand,
        // or with its output sent to a file, is given.
        (Some(FdKind::ParentReads | FdKind::ParentWrites), Some(FdKind::Inherit(_))) => true,
        // A standard fd the child got closed: a Rust program (the shim) finds the null
        // device there, which its runtime opens in place of a closed standard fd.
        (None, Some(FdKind::Null)) => true,
        (recorded, seen) => recorded == seen,
    })
}

/// A part of a spawn a recording is matched on.
enum Aspect {
    /// The command line as text.
    Command,
    /// The exact bytes of words that are not UTF-8.
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
        let index = self.claim(&spec)?;
        self.serve(index, protocol, spec).await
    }
}

impl ReplaySpawner {
    /// Finds the first recording not served yet that a spawn of `spec` matches, takes it and
    /// binds what the match binds: its place in the cassette.
    pub(crate) fn claim(&self, spec: &SpawnSpec) -> Result<usize, SpawnError> {
        self.claim_where(spec, |_| true)
    }

    /// [`claim`](Self::claim), among the recordings whose places `chosen` keeps.
    pub(crate) fn claim_where(
        &self,
        spec: &SpawnSpec,
        chosen: impl Fn(usize) -> bool,
    ) -> Result<usize, SpawnError> {
        let asked = Recording::of(spec);
        let executable = asked.command.first().cloned().unwrap_or_default();
        let mut bindings = lock(&self.bindings);
        let found = self
            .candidates(&executable)
            .into_iter()
            .filter(|index| chosen(*index))
            .find(|index| {
                let slot = &self.slots[*index];
                let mut tentative = bindings.clone();
                let found = self.serves(slot, &asked, spec, &mut tentative) && slot.claim();
                if found {
                    *bindings = tentative;
                }
                found
            });
        drop(bindings);
        found.ok_or_else(|| self.not_found(spec))
    }

    #[cfg(feature = "cli")]
    /// The places of the recordings not served yet that a spawn of `spec` matches, in
    /// cassette order; none is taken.
    pub(crate) fn matching(&self, spec: &SpawnSpec) -> Vec<usize> {
        let asked = Recording::of(spec);
        let executable = asked.command.first().cloned().unwrap_or_default();
        let bindings = lock(&self.bindings);
        self.candidates(&executable)
            .into_iter()
            .filter(|index| self.serves(&self.slots[*index], &asked, spec, &mut bindings.clone()))
            .collect()
    }

    #[cfg(feature = "cli")]
    /// What the recording at `index` reads on stdin before the child does anything its
    /// parent can see (writes, closes, exits), when the bytes are compared exactly and hold
    /// no placeholder: what tells apart recordings of one command whose first answers differ.
    pub(crate) fn first_input(&self, index: usize) -> Option<FirstInput> {
        if self.rules.lenient_stdin {
            return None;
        }
        let mut bytes = Vec::new();
        for event in &self.slots[index].recording.events {
            match event {
                Event::Write { fd: 0, data } if self.volatiles.segments(&data.0).is_none() => {
                    bytes.extend_from_slice(&data.0);
                }
                Event::Write { fd: 0, .. } => return None,
                Event::Close { fd: 0 } => {
                    return Some(FirstInput {
                        bytes,
                        closed: true,
                    })
                }
                Event::Write { .. }
                | Event::Close { .. }
                | Event::Signal { .. }
                | Event::Pause
                | Event::Resume
                | Event::Resize { .. } => {}
                _ => break,
            }
        }
        Some(FirstInput {
            bytes,
            closed: false,
        })
    }

    #[cfg(feature = "cli")]
    /// The recording at `index`, restored.
    pub(crate) fn recording(&self, index: usize) -> &Recording {
        &self.slots[index].recording
    }

    /// Serves the claimed recording at `index` to `protocol`, as a fake child of `spec`.
    pub(crate) async fn serve(
        &self,
        index: usize,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        match &self.slots[index].serve {
            Serve::Play(reactor, _) => reactor.spawn_process(protocol, spec).await,
            Serve::Refuse(refusal) => Err(refusal.error()),
        }
    }
}

#[cfg(feature = "cli")]
/// What a recording reads on stdin before its child does anything its parent can see
/// ([`ReplaySpawner::first_input`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FirstInput {
    /// The bytes read.
    pub(crate) bytes: Vec<u8>,
    /// Whether stdin was closed after them, still before the child did anything.
    pub(crate) closed: bool,
}

#[cfg(feature = "cli")]
impl FirstInput {
    /// Whether `input` (and its close, `ended`) can be the start of what this reads.
    pub(crate) fn fits(&self, input: &[u8], ended: bool) -> bool {
        let common = input.len().min(self.bytes.len());
        input[..common] == self.bytes[..common]
            && !(ended && input.len() < self.bytes.len())
            && !(self.closed && input.len() > self.bytes.len())
    }

    /// Whether `input` holds all of it: the child would answer now.
    pub(crate) fn got(&self, input: &[u8], ended: bool) -> bool {
        input.len() >= self.bytes.len() && (ended || !self.closed)
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
    /// Where in the current recorded write that holds placeholders the input has got to:
    /// the segment, and the bytes of it matched.
    within: (usize, usize),
}

/// What every player of one replay shares.
struct Shared {
    /// Whether stdin bytes are compared ([`MatchRules::lenient_stdin`] turns it off).
    strict: bool,
    /// [`MatchRules::unwaited_ignored_signals`].
    unwaited_ignored_signals: bool,
    failures: Arc<FailureSink>,
    volatiles: Arc<Volatiles>,
    bindings: Arc<Mutex<Bindings>>,
}

/// Plays one recording as a fake child.
struct Player {
    recording: Recording,
    /// Per event: the write or output cut at its placeholders, when it holds any.
    templates: Vec<Option<Vec<Segment>>>,
    label: String,
    shared: Shared,
    progress: Mutex<Progress>,
}

/// How far a recorded write that holds placeholders got.
enum Step {
    /// The input matched all of it.
    Done,
    /// The input matched as far as it goes; more must come.
    Wait,
    /// The input differs: the bytes got, the bytes expected (bound placeholders put in),
    /// and whether the input was closed short of it.
    Differs {
        got: Vec<u8>,
        expected: Vec<u8>,
        short: bool,
    },
}

impl Player {
    fn script(recording: Recording, label: String, shared: Shared) -> (Script, Arc<Player>) {
        let templates = recording
            .events
            .iter()
            .map(|event| match event {
                Event::Write { data, .. } | Event::Output { data, .. } => {
                    shared.volatiles.segments(&data.0)
                }
                _ => None,
            })
            .collect();
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
            templates,
            label,
            shared,
            progress: Mutex::default(),
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
            .filter(|signal| player.waits_for(*signal))
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

    /// Whether a recorded `signal` waits for the protocol to send it (all do, but those a
    /// process ignores by default under [`MatchRules::unwaited_ignored_signals`]).
    fn waits_for(&self, signal: Signal) -> bool {
        !(self.shared.unwaited_ignored_signals
            && matches!(
                signal.default_action(),
                DefaultAction::Ignore | DefaultAction::Continue
            ))
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
                Event::Write { fd, .. } if self.templates[progress.cursor].is_some() => {
                    let segments = self.templates[progress.cursor]
                        .as_deref()
                        .expect("checked above");
                    match self.match_template(&mut progress, *fd, segments) {
                        Step::Done => progress.within = (0, 0),
                        Step::Wait => return,
                        Step::Differs {
                            got,
                            expected,
                            short,
                        } => {
                            let offset = progress.matched.get(fd).copied().unwrap_or(0);
                            progress.failed = true;
                            drop(progress);
                            self.fail(*fd, offset, &got, &expected, short);
                        }
                    }
                }
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
                    if short || (self.shared.strict && written[..len] != data.0[..]) {
                        let got = written[..len.min(written.len())].to_vec();
                        let offset = progress.matched.get(fd).copied().unwrap_or(0);
                        progress.failed = true;
                        drop(progress);
                        self.fail(*fd, offset, &got, &data.0, short);
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
                Event::Signal { signal }
                    if !signal.parse().is_ok_and(|signal| self.waits_for(signal)) => {}
                Event::Signal { .. } if progress.signals <= progress.signals_played => return,
                Event::Signal { .. } => progress.signals_played += 1,
                Event::Pause | Event::Resume | Event::Resize { .. } => {}
                Event::Output { fd, data } => {
                    let index = progress.cursor;
                    progress.cursor += 1;
                    drop(progress);
                    if self.templates[index].is_some() {
                        let bytes = self.shared.volatiles.render_event(
                            events,
                            index,
                            &lock(&self.shared.bindings),
                        );
                        let _ = child.write(ChildFd(*fd), &bytes);
                    } else {
                        let _ = child.write(ChildFd(*fd), &data.0);
                    }
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

    /// Reports input on `fd` that differs from (or was closed short of) the recording, at
    /// `offset`, naming the rule that compared it and the placeholders it held; the panic is
    /// a fake's misuse check, kept for the test's thread too.
    fn fail(&self, fd: u32, offset: usize, got: &[u8], expected: &[u8], short: bool) -> ! {
        let name = if fd == 0 {
            "stdin (fd 0)".into()
        } else {
            format!("fd {fd}")
        };
        let how = if short {
            format!(
                "was closed {} byte(s) short of",
                expected.len().saturating_sub(got.len())
            )
        } else {
            "differs from".to_owned()
        };
        let rule = if self.shared.strict {
            "rule: stdin compared exactly; MatchRules::lenient_stdin counts it instead"
        } else {
            "rule: stdin counted, placeholders matched by their patterns"
        };
        let cursor = lock(&self.progress).cursor;
        let placeholders = match self.recording.events.get(cursor) {
            Some(Event::Write { data, .. }) => self
                .shared
                .volatiles
                .describe(&data.0, &lock(&self.shared.bindings)),
            _ => String::new(),
        };
        let placeholders = if placeholders.is_empty() {
            String::new()
        } else {
            format!("; placeholders: {placeholders}")
        };
        let text = process_transport_fakes::assert::bytes_difference(
            got,
            expected,
            Some(format_args!(
                "{}: {name} at offset {offset} {how} the recording ({rule}{placeholders})",
                self.label
            )),
        )
        .unwrap_or_else(|| {
            format!(
                "{}: {name} at offset {offset} {how} the recording ({rule}{placeholders}): \
                 got {}, a value of the placeholder's pattern was expected",
                self.label,
                crate::cassette::escaped(got)
            )
        });
        self.shared.failures.keep(text.clone());
        panic!("{text}");
    }

    /// Matches the input written on `fd` so far against a recorded write that holds
    /// placeholders, from where the last call stopped: literals byte for byte (counted only,
    /// when stdin is lenient), a bound placeholder as its value, an unbound one as the
    /// longest value of its pattern the input holds, which it then binds. A value is taken
    /// once the pattern can take no further byte, once the input is closed, or when the
    /// input so far ends in a value and the recorded write ended with the placeholder too.
    fn match_template(&self, progress: &mut Progress, fd: u32, segments: &[Segment]) -> Step {
        let closed = progress.closed_by_protocol.contains(&fd);
        let Progress {
            input,
            matched,
            within,
            ..
        } = progress;
        let written = input.entry(fd).or_default();
        let matched = matched.entry(fd).or_default();
        let volatiles = &self.shared.volatiles;
        loop {
            let (segment, done) = *within;
            let Some(current) = segments.get(segment) else {
                return Step::Done;
            };
            let bound = match current {
                Segment::Slot(name) => lock(&self.shared.bindings).get(name).cloned(),
                Segment::Literal(_) | Segment::Length(..) => None,
            };
            let rest = || {
                let bindings = lock(&self.shared.bindings);
                let mut expected = match (current, &bound) {
                    (Segment::Literal(bytes), _) => bytes[done..].to_vec(),
                    (Segment::Slot(_), Some(value)) => value[done..].to_vec(),
                    (Segment::Slot(name), None) => name.as_bytes().to_vec(),
                    (Segment::Length(digits, _), _) => digits.clone(),
                };
                expected.extend(render(&segments[segment + 1..], &bindings));
                expected
            };
            let literal = match (current, &bound) {
                (Segment::Literal(bytes), _) => Some(&bytes[done..]),
                (Segment::Slot(_), Some(value)) => Some(&value[done..]),
                (Segment::Slot(_), None) | (Segment::Length(..), _) => None,
            };
            if let Some(literal) = literal {
                let take = literal.len().min(written.len());
                if self.shared.strict && written[..take] != literal[..take] {
                    return Step::Differs {
                        got: written[..rest().len().min(written.len())].to_vec(),
                        expected: rest(),
                        short: false,
                    };
                }
                written.drain(..take);
                *matched += take;
                if take < literal.len() {
                    if closed {
                        return Step::Differs {
                            got: Vec::new(),
                            expected: rest(),
                            short: true,
                        };
                    }
                    *within = (segment, done + take);
                    return Step::Wait;
                }
                *within = (segment + 1, 0);
                continue;
            }
            // An unbound placeholder binds; a length header's digits are any digits.
            let (pattern, name) = match current {
                Segment::Slot(name) => match volatiles.pattern(name) {
                    Ok(pattern) => (pattern, Some(name)),
                    Err(_) => {
                        return Step::Differs {
                            got: written.clone(),
                            expected: rest(),
                            short: false,
                        }
                    }
                },
                Segment::Length(..) => (volatiles.digits(), None),
                Segment::Literal(_) => unreachable!("a literal was taken above"),
            };
            let ends_piece = segment + 1 == segments.len();
            match pattern.extent(written, closed, ends_piece) {
                Extent::Value(len) => {
                    let value: Vec<u8> = written.drain(..len).collect();
                    *matched += len;
                    if let Some(name) = name {
                        lock(&self.shared.bindings).insert(name.clone(), value);
                    }
                    *within = (segment + 1, 0);
                }
                Extent::More => return Step::Wait,
                Extent::Never => {
                    return Step::Differs {
                        got: written.clone(),
                        expected: rest(),
                        short: closed && written.is_empty(),
                    }
                }
            }
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
