//! [`ReplaySpawner`]: serves spawns from a cassette, as fakes that follow the recording.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use process_transport_api::{
    implement::FailureSink, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError,
    SpawnSpec,
};
use process_transport_fakes::{Explorer, MemoryProcessReactor};

use crate::play::{Player, Shared};
use crate::recorder::{env_digest, env_values, lock};
use crate::rules::ArgsRule;
use crate::volatile::{Bindings, Volatiles};
#[cfg(feature = "cli")]
use crate::Event;
use crate::{Cassette, CassetteError, FdKind, MatchRules, Recording, Redactions, Refusal};

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
pub(crate) enum Aspect {
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
