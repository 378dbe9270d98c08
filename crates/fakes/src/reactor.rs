//! Twisted's `MemoryProcessReactor`: a spawner that starts no process and hands the test the
//! child to play.

use std::ffi::OsStr;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use process_transport_api::{
    implement::Delivery, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};

use crate::registration::{words, Matcher, Registration};
use crate::{FakeChild, MemoryProcessTransport, Script, DEFAULT_PID};

/// A [`ProcessSpawner`] that records every spawn and starts no process.
///
/// A command may be played by a registered [`Script`] ([`register`](Self::register)), or by the
/// test through the returned [`FakeChild`]. A [`strict`](Self::strict) reactor refuses
/// unregistered commands with `SpawnError::NotFound`, as the real transport refuses a
/// missing program.
///
/// Each `spawn_process` checks the spec as the real spawner does (a NUL byte is
/// `SpawnError::InvalidSpec`), creates a [`MemoryProcessTransport`] with the spec's fd map and
/// the next pid (from [`DEFAULT_PID`] up), calls the protocol's `make_connection` before
/// returning, and keeps a [`FakeChild`] through which the test plays the child and gets the
/// protocol back. Clones share the record.
///
/// ```
/// use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec};
/// use process_transport_fakes::MemoryProcessReactor;
/// use std::sync::Arc;
///
/// #[derive(Default)]
/// struct Lines(Vec<u8>, Option<ProcessEnd>);
/// impl ProcessProtocol for Lines {
///     fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
///         transport.write(b"3\n1\n2\n").unwrap();
///         transport.close_stdin();
///     }
///     fn child_data_received(&mut self, _fd: ChildFd, data: &[u8]) {
///         self.0.extend_from_slice(data);
///     }
///     fn process_ended(&mut self, end: ProcessEnd) {
///         self.1 = Some(end);
///     }
/// }
///
/// let reactor = MemoryProcessReactor::new();
/// let transport = futures_executor::block_on(
///     reactor.spawn_process(Box::new(Lines::default()), SpawnSpec::new("sort")),
/// )
/// .unwrap();
///
/// let child = reactor.last_child();
/// assert_eq!(reactor.spawns()[0].get_executable(), "sort");
/// assert_eq!(child.read(ChildFd::STDIN), b"3\n1\n2\n");
/// assert!(child.at_eof(ChildFd::STDIN));
/// child.write(ChildFd::STDOUT, b"1\n2\n3\n").unwrap();
/// child.exit(0);
///
/// assert_eq!(futures_executor::block_on(transport.ended()), ProcessEnd::Done);
/// child.with_protocol(|lines: &mut Lines| {
///     assert_eq!(lines.0, b"1\n2\n3\n");
///     assert_eq!(lines.1, Some(ProcessEnd::Done));
/// });
/// ```
#[derive(Clone, Default)]
pub struct MemoryProcessReactor {
    shared: Arc<Shared>,
}

/// What clones of a reactor share, in one allocation.
#[derive(Default)]
struct Shared {
    children: Mutex<Vec<FakeChild>>,
    setup: Mutex<Setup>,
    passed: Mutex<Vec<SpawnSpec>>,
    refused: Mutex<Vec<crate::RefusedSpawn>>,
    /// Misuses of its children, kept for the thread that made the reactor.
    failures: Arc<process_transport_api::implement::FailureSink>,
}

/// The reactor's scripts and options.
#[derive(Default)]
struct Setup {
    registrations: Vec<Registration>,
    strict: bool,
    chunk_size: Option<usize>,
    /// The explorer that holds the events of children spawned from now on.
    explorer: Option<crate::Explorer>,
    pass_through: Option<Arc<dyn ProcessSpawner>>,
}

/// What a spawn resolves to.
enum Found {
    Script(Registration),
    Unscripted,
    PassThrough(Arc<dyn ProcessSpawner>),
}

impl fmt::Debug for MemoryProcessReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProcessReactor")
            .field("children", &*self.lock())
            .finish()
    }
}

impl MemoryProcessReactor {
    /// A reactor with no spawns yet. A command with no script registered is spawned all the
    /// same, and the test plays it through its [`FakeChild`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A reactor that spawns only registered commands. Any other fails: with
    /// `SpawnError::NotFound` when no registration names its executable, as the real
    /// transport fails for a missing program; with `SpawnError::Unregistered`, naming the
    /// closest registered command, when the executable is known but not this command line.
    pub fn strict() -> Self {
        let reactor = Self::default();
        reactor.setup().strict = true;
        reactor
    }

    fn setup(&self) -> MutexGuard<'_, Setup> {
        self.shared
            .setup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, matcher: Matcher, script: Script) -> Registration {
        let mut setup = self.setup();
        let registration = Registration::new(matcher, script, setup.registrations.len());
        setup.registrations.push(registration.clone());
        registration
    }

    /// Registers `script` for the command line `command` (the executable, then the
    /// arguments), matched exactly. The returned [`Registration`] lists the children it
    /// played and can limit how often it plays ([`Registration::times`]).
    pub fn register<I, S>(&self, command: I, script: Script) -> Registration
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.add(Matcher::Exact(words(command)), script)
    }

    /// Registers `script` for `executable` whatever its arguments.
    pub fn register_program(&self, executable: impl AsRef<OsStr>, script: Script) -> Registration {
        self.add(Matcher::Program(executable.as_ref().to_owned()), script)
    }

    /// Registers `script` for every command line that starts with `prefix` (the executable,
    /// then the first arguments): `["git", "commit"]` matches `git commit -m x`.
    pub fn register_prefix<I, S>(&self, prefix: I, script: Script) -> Registration
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.add(Matcher::Prefix(words(prefix)), script)
    }

    /// Registers `script` for every spawn whose spec satisfies `matches`; `description`
    /// names it in reports ([`unused`](Self::unused), errors). A regular expression over
    /// [`SpawnSpec::command_line`] is one such predicate.
    pub fn register_matching(
        &self,
        description: impl Into<String>,
        matches: impl Fn(&SpawnSpec) -> bool + Send + Sync + 'static,
        script: Script,
    ) -> Registration {
        self.add(
            Matcher::Predicate(description.into(), Arc::new(matches)),
            script,
        )
    }

    /// Sends every spawn that no registration matches to `spawner` (real processes, say)
    /// instead of playing it here or refusing it. Such spawns are recorded in
    /// [`passed_through`](Self::passed_through), not in [`spawns`](Self::spawns).
    pub fn pass_through(&self, spawner: Arc<dyn ProcessSpawner>) {
        self.setup().pass_through = Some(spawner);
    }

    /// The specs sent on to the [`pass_through`](Self::pass_through) spawner, in order.
    pub fn passed_through(&self) -> Vec<SpawnSpec> {
        self.shared
            .passed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every registration, in the order they were made.
    pub fn registrations(&self) -> Vec<Registration> {
        self.setup().registrations.clone()
    }

    /// The registrations not used as expected: never used, or used fewer times than their
    /// [`times`](Registration::times) limit. Each as its description and use count.
    pub fn unused(&self) -> Vec<Registration> {
        self.registrations()
            .into_iter()
            .filter(|registration| !registration.used_as_expected())
            .collect()
    }

    /// Checks that every registration was used as expected (see [`unused`](Self::unused)).
    ///
    /// # Panics
    /// When one was not, naming each with how often it was used.
    pub fn assert_all_used(&self) {
        let unused = self.unused();
        if !unused.is_empty() {
            let list: Vec<String> = unused.iter().map(Registration::report).collect();
            panic!(
                "MemoryProcessReactor: {} registration(s) not used as expected: {}",
                unused.len(),
                list.join(", ")
            );
        }
    }

    /// Delivers the output of children spawned from now on in chunks of at most `bytes`
    /// (`Some(1)`: one byte at a time); a script's own chunk size wins.
    pub fn set_chunk_size(&self, bytes: Option<usize>) {
        self.setup().chunk_size = bytes;
    }

    /// Lets `explorer` hold what every child spawned from now on does (its output, the losses
    /// of its fds, its exit, its script's reactions) until it releases it, in the order it is
    /// told: see [`Explorer`](crate::Explorer).
    pub fn explored_by(&self, explorer: &crate::Explorer) {
        self.setup().explorer = Some(explorer.clone());
    }

    /// Finds what plays `spec` and counts the use: exact command lines first, then prefixes
    /// (the longest first), predicates, programs. Within one kind, a registration limited
    /// with [`Registration::times`] that has uses left comes first (the earliest such), then
    /// the latest unlimited one.
    fn find(&self, spec: &SpawnSpec) -> Result<Found, SpawnError> {
        let found = spec.validate().and_then(|()| self.find_registered(spec));
        match found {
            Ok(Found::Script(registration)) => match registration.script().spawn_failure() {
                Some(failure) => Err(failure.error(spec)),
                None => Ok(Found::Script(registration)),
            },
            Err(err) => {
                self.shared
                    .refused
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(crate::RefusedSpawn::new(spec, &err));
                Err(err)
            }
            other => other,
        }
    }

    /// The misuses of its children found so far, on any task or thread, acknowledged: a
    /// test that expects one takes it here, and the reactor does not raise it again when it
    /// drops.
    pub fn take_failures(&self) -> Vec<String> {
        self.shared.failures.take()
    }

    /// The spawns refused, in order: a spec that does not validate, and, on a strict reactor,
    /// a command no registration matches. A refusal a script asked for
    /// ([`Script::fail_spawn`]) is a use of its registration, not listed here.
    pub fn refused(&self) -> Vec<crate::RefusedSpawn> {
        self.shared
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks that no spawn was refused ([`refused`](Self::refused)): code that swallows the
    /// error of a command nobody registered (a probe for an optional tool, say) still fails
    /// the test.
    ///
    /// # Panics
    /// When one was, naming each command line and its error.
    pub fn assert_no_refused(&self) {
        let refused = self.refused();
        assert!(
            refused.is_empty(),
            "MemoryProcessReactor: {} spawn(s) refused: {}",
            refused.len(),
            refused
                .iter()
                .map(|refusal| format!("`{}` ({})", refusal.command_line(), refusal.error()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn find_registered(&self, spec: &SpawnSpec) -> Result<Found, SpawnError> {
        let setup = self.setup();
        // The first of the best-ranked, as a stable sort would put it first.
        let found = setup
            .registrations
            .iter()
            .filter(|registration| registration.has_uses_left() && registration.matches(spec))
            .min_by_key(|registration| registration.rank());
        if let Some(found) = found {
            found.take_use();
            return Ok(Found::Script(found.clone()));
        }
        if let Some(spawner) = &setup.pass_through {
            return Ok(Found::PassThrough(spawner.clone()));
        }
        if !setup.strict {
            return Ok(Found::Unscripted);
        }
        let executable = spec.get_executable();
        if !setup
            .registrations
            .iter()
            .any(|registration| registration.names_program(executable))
        {
            return Err(SpawnError::NotFound(
                executable.to_string_lossy().into_owned(),
            ));
        }
        let command = spec.command_line();
        let closest = setup
            .registrations
            .iter()
            .map(Registration::description)
            .min_by_key(|described| strsim::levenshtein(described, &command));
        Err(SpawnError::Unregistered { command, closest })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<FakeChild>> {
        self.shared
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns without a runtime: what `spawn_process` does, returning the child handle.
    ///
    /// # Errors
    /// As `spawn_process`; and `SpawnError::InvalidSpec` for a spawn that would pass through
    /// to another spawner, which only the async `spawn_process` can do.
    pub fn spawn(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<FakeChild, SpawnError> {
        match self.find(&spec)? {
            Found::Script(registration) => Ok(self.play(protocol, spec, Some(registration)).0),
            Found::Unscripted => Ok(self.play(protocol, spec, None).0),
            Found::PassThrough(_) => Err(SpawnError::InvalidSpec(format!(
                "cannot spawn {:?}: it passes through to another spawner, which \
                 MemoryProcessReactor::spawn cannot wait for; use spawn_process",
                spec.command_line()
            ))),
        }
    }

    fn play(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
        registration: Option<Registration>,
    ) -> (FakeChild, Arc<dyn ProcessTransport>) {
        let (chunk_size, explorer) = {
            let setup = self.setup();
            (setup.chunk_size, setup.explorer.clone())
        };
        let child = {
            let mut children = self.lock();
            let pid = DEFAULT_PID + u32::try_from(children.len()).unwrap_or(u32::MAX - DEFAULT_PID);
            let transport = MemoryProcessTransport::connected(spec, Some(pid), Some(protocol));
            let child = transport.child();
            children.push(child.clone());
            child
        };
        let transport = child.transport();
        transport.report_failures_to(self.shared.failures.clone());
        transport.set_chunk_size(chunk_size);
        if let Some(explorer) = &explorer {
            transport.explore_with(explorer);
        }
        if let Some(registration) = registration {
            registration.record(child.clone());
            // Queued before make_connection, so that the child starts before it reacts to
            // anything the protocol does there.
            transport.install_script(registration.script());
        }
        // The protocol and the spawn's caller get the same handle.
        let handle: Arc<dyn ProcessTransport> = Arc::new(transport.clone());
        let connection = handle.clone();
        transport.act(|_, out| out.push(Delivery::MakeConnection(connection)));
        transport.run_script_events();
        (child, handle)
    }

    /// Every spec spawned, in order.
    pub fn spawns(&self) -> Vec<SpawnSpec> {
        self.lock()
            .iter()
            .map(|child| child.spec().clone())
            .collect()
    }

    /// Every child spawned, in order.
    pub fn children(&self) -> Vec<FakeChild> {
        self.lock().clone()
    }

    /// The child of spawn number `index` (from 0).
    ///
    /// # Panics
    /// When there were not that many spawns.
    pub fn child(&self, index: usize) -> FakeChild {
        let children = self.lock();
        children.get(index).cloned().unwrap_or_else(|| {
            panic!(
                "MemoryProcessReactor::child({index}): only {} spawn(s) happened",
                children.len()
            )
        })
    }

    /// The child of the latest spawn.
    ///
    /// # Panics
    /// When nothing was spawned.
    pub fn last_child(&self) -> FakeChild {
        self.lock()
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("MemoryProcessReactor::last_child: nothing was spawned"))
    }
}

impl Drop for MemoryProcessReactor {
    /// Raises, on the thread that made the reactor (the test's), a misuse of one of its
    /// children made where the test did not see it: on a task it never joined, say.
    fn drop(&mut self) {
        self.shared
            .failures
            .raise_on_home_thread("MemoryProcessReactor: a fake child");
    }
}

#[async_trait]
impl ProcessSpawner for MemoryProcessReactor {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        let (_, handle) = match self.find(&spec)? {
            Found::Script(registration) => self.play(protocol, spec, Some(registration)),
            Found::Unscripted => self.play(protocol, spec, None),
            Found::PassThrough(spawner) => {
                self.shared
                    .passed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(spec.clone());
                return spawner.spawn_process(protocol, spec).await;
            }
        };
        Ok(handle)
    }
}
