//! Twisted's `MemoryProcessReactor`: a spawner that starts no process and hands the test the
//! child to play.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use process_transport_api::{
    Delivery, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};

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
    children: Arc<Mutex<Vec<FakeChild>>>,
    setup: Arc<Mutex<Setup>>,
}

/// The reactor's scripts and options.
#[derive(Default)]
struct Setup {
    /// Scripts by the whole command line (executable then arguments).
    commands: Vec<(Vec<OsString>, Arc<Script>)>,
    /// Scripts by executable, whatever the arguments.
    programs: Vec<(OsString, Arc<Script>)>,
    strict: bool,
    chunk_size: Option<usize>,
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

    /// A reactor that spawns only registered commands: any other fails with
    /// `SpawnError::NotFound`, as the real transport fails for a missing program.
    pub fn strict() -> Self {
        let reactor = Self::default();
        reactor.setup().strict = true;
        reactor
    }

    fn setup(&self) -> MutexGuard<'_, Setup> {
        self.setup.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `script` for the command line `command` (the executable, then the
    /// arguments), matched exactly; a later registration of the same line wins.
    pub fn register<I, S>(&self, command: I, script: Script)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let words: Vec<OsString> = command.into_iter().map(|w| w.as_ref().to_owned()).collect();
        self.setup().commands.insert(0, (words, Arc::new(script)));
    }

    /// Registers `script` for `executable` whatever its arguments; a command line registered
    /// with [`register`](Self::register) is matched first.
    pub fn register_program(&self, executable: impl AsRef<OsStr>, script: Script) {
        let executable = executable.as_ref().to_owned();
        self.setup()
            .programs
            .insert(0, (executable, Arc::new(script)));
    }

    /// Delivers the output of children spawned from now on in chunks of at most `bytes`
    /// (`Some(1)`: one byte at a time); a script's own chunk size wins.
    pub fn set_chunk_size(&self, bytes: Option<usize>) {
        self.setup().chunk_size = bytes;
    }

    fn script_for(&self, spec: &SpawnSpec) -> Result<Option<Arc<Script>>, SpawnError> {
        let setup = self.setup();
        let words: Vec<&OsStr> = std::iter::once(spec.get_executable())
            .chain(spec.get_args().iter().map(OsString::as_os_str))
            .collect();
        let by_command = setup
            .commands
            .iter()
            .find(|(command, _)| {
                command
                    .iter()
                    .map(OsString::as_os_str)
                    .eq(words.iter().copied())
            })
            .map(|(_, script)| script);
        let by_program = || {
            setup
                .programs
                .iter()
                .find(|(program, _)| program.as_os_str() == spec.get_executable())
                .map(|(_, script)| script)
        };
        match by_command.or_else(by_program) {
            Some(script) => Ok(Some(script.clone())),
            None if setup.strict => Err(SpawnError::NotFound(
                spec.get_executable().to_string_lossy().into_owned(),
            )),
            None => Ok(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<FakeChild>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns without a runtime: what `spawn_process` does, returning the child handle.
    pub fn spawn(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<FakeChild, SpawnError> {
        spec.validate()?;
        let script = self.script_for(&spec)?;
        let chunk_size = self.setup().chunk_size;
        let child = {
            let mut children = self.lock();
            let pid = DEFAULT_PID + u32::try_from(children.len()).unwrap_or(u32::MAX - DEFAULT_PID);
            let transport = MemoryProcessTransport::connected(spec, Some(pid), Some(protocol));
            let child = transport.child();
            children.push(child.clone());
            child
        };
        let transport = child.transport();
        transport.set_chunk_size(chunk_size);
        if let Some(script) = script {
            // Queued before make_connection, so that the child starts before it reacts to
            // anything the protocol does there.
            transport.install_script(script);
        }
        let handle: Arc<dyn ProcessTransport> = Arc::new(transport.clone());
        transport.act(|_, out| out.push(Delivery::MakeConnection(handle)));
        transport.run_script_events();
        Ok(child)
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

#[async_trait]
impl ProcessSpawner for MemoryProcessReactor {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        let child = self.spawn(protocol, spec)?;
        Ok(Arc::new(child.transport()))
    }
}
