//! What a `MemoryProcessReactor` registration matches, how often it may play, and the
//! children it played.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{ChildFd, SpawnSpec};

use crate::{FakeChild, Script};

/// A predicate over the spec of a spawn.
pub(crate) type SpecPredicate = Arc<dyn Fn(&SpawnSpec) -> bool + Send + Sync>;

/// What a registration matches.
#[derive(Clone)]
pub(crate) enum Matcher {
    /// The whole command line.
    Exact(Vec<OsString>),
    /// The first words of the command line.
    Prefix(Vec<OsString>),
    /// A predicate, with its description.
    Predicate(String, SpecPredicate),
    /// The executable, whatever the arguments.
    Program(OsString),
}

pub(crate) fn words<I, S>(command: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command.into_iter().map(|w| w.as_ref().to_owned()).collect()
}

fn command_words(spec: &SpawnSpec) -> impl Iterator<Item = &OsStr> {
    std::iter::once(spec.get_executable()).chain(spec.get_args().iter().map(OsString::as_os_str))
}

fn join(words: &[OsString]) -> String {
    words
        .iter()
        .map(|word| word.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Uses {
    limit: Option<usize>,
    taken: usize,
    children: Vec<FakeChild>,
}

struct Entry {
    matcher: Matcher,
    script: Arc<Script>,
    order: usize,
    uses: Mutex<Uses>,
}

/// One script registered on a [`MemoryProcessReactor`](crate::MemoryProcessReactor), as
/// returned by `register` and its kin: what it matches, how often it may play
/// ([`times`](Self::times)) and the children it played, with what they were sent.
/// Clones share the record.
///
/// ```
/// use process_transport_api::{ProcessTransport, SpawnSpec, Signal};
/// use process_transport_fakes::{MemoryProcessReactor, Script, SignalAction};
/// # use process_transport_api::ProcessProtocol;
/// # struct P; impl ProcessProtocol for P { fn make_connection(&mut self, t: std::sync::Arc<dyn ProcessTransport>) { t.write(b"q\n").unwrap(); t.signal_process(Signal::Hup).unwrap(); } }
///
/// let reactor = MemoryProcessReactor::strict();
/// let server = reactor
///     .register(["server", "--port", "80"], Script::new().on_signal(Signal::Hup, SignalAction::Ignore))
///     .times(1);
/// reactor.spawn(Box::new(P), SpawnSpec::new("server").args(["--port", "80"])).unwrap();
///
/// assert_eq!(server.uses(), 1);
/// let child = server.child(0);
/// assert_eq!(child.stdin(), b"q\n");
/// assert_eq!(child.signals(), [Signal::Hup]);
/// // Used up: a second spawn is refused, naming the closest registered command.
/// let err = reactor.spawn(Box::new(P), SpawnSpec::new("server").args(["--port", "80"])).unwrap_err();
/// assert!(err.to_string().contains(r#"the closest registered command is "server --port 80""#));
/// reactor.assert_all_used();
/// ```
#[derive(Clone)]
pub struct Registration(Arc<Entry>);

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("matches", &self.description())
            .field("uses", &self.uses())
            .field("limit", &self.lock().limit)
            .finish()
    }
}

impl Registration {
    pub(crate) fn new(matcher: Matcher, script: Script, order: usize) -> Self {
        Registration(Arc::new(Entry {
            matcher,
            script: Arc::new(script),
            order,
            uses: Mutex::new(Uses {
                limit: None,
                taken: 0,
                children: Vec::new(),
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Uses> {
        self.0.uses.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plays at most `n` spawns; after that it matches nothing, and a spawn falls to the next
    /// registration (or is refused by a strict reactor). Limited registrations of the same
    /// kind play in the order they were made, before unlimited ones: a sequence of answers.
    pub fn times(self, n: usize) -> Self {
        self.lock().limit = Some(n);
        self
    }

    /// How many spawns it played.
    pub fn uses(&self) -> usize {
        self.lock().taken
    }

    /// What it matches, as a command line (`git status`, `git commit …`, `git *`) or the
    /// description given with the predicate.
    pub fn description(&self) -> String {
        match &self.0.matcher {
            Matcher::Exact(words) => join(words),
            Matcher::Prefix(words) => format!("{} …", join(words)),
            Matcher::Predicate(description, _) => description.clone(),
            Matcher::Program(program) => format!("{} *", program.to_string_lossy()),
        }
    }

    /// The children it played, in spawn order.
    pub fn children(&self) -> Vec<FakeChild> {
        self.lock().children.clone()
    }

    /// The signals sent to its children, child by child in spawn order, each child's in the
    /// order they were sent. For one child's, use [`child(i).signals()`](FakeChild::signals).
    ///
    /// ```
    /// use process_transport_api::{ProcessSpawner, Signal, SpawnSpec};
    /// use process_transport_fakes::{MemoryProcessReactor, Script};
    /// use std::sync::Arc;
    /// # struct Quiet; impl process_transport_api::ProcessProtocol for Quiet { fn make_connection(&mut self, _: Arc<dyn process_transport_api::ProcessTransport>) {} }
    ///
    /// let reactor = MemoryProcessReactor::strict();
    /// let server = reactor.register(["server"], Script::new());
    /// for signal in [Signal::Hup, Signal::Term] {
    ///     let transport = futures_executor::block_on(
    ///         reactor.spawn_process(Box::new(Quiet), SpawnSpec::new("server")),
    ///     ).unwrap();
    ///     transport.signal_process(signal).unwrap();
    /// }
    /// assert_eq!(server.signals(), [Signal::Hup, Signal::Term]);
    /// ```
    pub fn signals(&self) -> Vec<process_transport_api::Signal> {
        self.children()
            .iter()
            .flat_map(FakeChild::signals)
            .collect()
    }

    /// The child of its `index`th spawn (from 0).
    ///
    /// # Panics
    /// When it did not play that many spawns.
    pub fn child(&self, index: usize) -> FakeChild {
        let uses = self.lock();
        uses.children.get(index).cloned().unwrap_or_else(|| {
            panic!(
                "Registration::child({index}) of `{}`: it played {} spawn(s)",
                self.description(),
                uses.children.len()
            )
        })
    }

    /// `true` when it was used at least once, and as many times as its limit if it has one.
    pub fn used_as_expected(&self) -> bool {
        let uses = self.lock();
        match uses.limit {
            Some(limit) => uses.taken == limit,
            None => uses.taken > 0,
        }
    }

    pub(crate) fn report(&self) -> String {
        let uses = self.lock();
        match uses.limit {
            Some(limit) => format!(
                "`{}` (used {} of {limit} times)",
                self.description(),
                uses.taken
            ),
            None => format!("`{}` (never used)", self.description()),
        }
    }

    pub(crate) fn has_uses_left(&self) -> bool {
        let uses = self.lock();
        uses.limit.is_none_or(|limit| uses.taken < limit)
    }

    pub(crate) fn take_use(&self) {
        self.lock().taken += 1;
    }

    pub(crate) fn record(&self, child: FakeChild) {
        self.lock().children.push(child);
    }

    pub(crate) fn script(&self) -> Arc<Script> {
        self.0.script.clone()
    }

    pub(crate) fn matches(&self, spec: &SpawnSpec) -> bool {
        match &self.0.matcher {
            Matcher::Exact(words) => command_words(spec).eq(words.iter().map(OsString::as_os_str)),
            Matcher::Prefix(words) => {
                let mut line = command_words(spec);
                words
                    .iter()
                    .all(|word| line.next() == Some(word.as_os_str()))
            }
            Matcher::Predicate(_, predicate) => predicate(spec),
            Matcher::Program(program) => program == spec.get_executable(),
        }
    }

    /// `true` when it names `executable` (a predicate names none).
    pub(crate) fn names_program(&self, executable: &OsStr) -> bool {
        match &self.0.matcher {
            Matcher::Exact(words) | Matcher::Prefix(words) => {
                words.first().map(OsString::as_os_str) == Some(executable)
            }
            Matcher::Predicate(..) => false,
            Matcher::Program(program) => program == executable,
        }
    }

    /// The sort key of the matching order: kind, then limited before unlimited (the earliest
    /// first), then the latest unlimited.
    pub(crate) fn rank(&self) -> (u8, usize, bool, isize) {
        let (kind, longest) = match &self.0.matcher {
            Matcher::Exact(_) => (0, 0),
            Matcher::Prefix(words) => (1, usize::MAX - words.len()),
            Matcher::Predicate(..) => (2, 0),
            Matcher::Program(_) => (3, 0),
        };
        let limited = self.lock().limit.is_some();
        let order = self.0.order as isize;
        (
            kind,
            longest,
            !limited,
            if limited { order } else { -order },
        )
    }
}

impl FakeChild {
    /// Every byte the parent wrote to the child's stdin, read by the child or not.
    pub fn stdin(&self) -> Vec<u8> {
        self.transport().value_of(ChildFd::STDIN)
    }

    /// The signals the parent sent the child, in order.
    pub fn signals(&self) -> Vec<process_transport_api::Signal> {
        self.transport().signals()
    }
}
