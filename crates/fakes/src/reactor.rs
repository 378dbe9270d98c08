//! Twisted's `MemoryProcessReactor`: a spawner that starts no process and hands the test the
//! child to play.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use process_transport_api::{
    Delivery, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};

use crate::{FakeChild, MemoryProcessTransport, DEFAULT_PID};

/// A [`ProcessSpawner`] that records every spawn and starts no process.
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
}

impl fmt::Debug for MemoryProcessReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProcessReactor")
            .field("children", &*self.lock())
            .finish()
    }
}

impl MemoryProcessReactor {
    /// A reactor with no spawns yet.
    pub fn new() -> Self {
        Self::default()
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
        let child = {
            let mut children = self.lock();
            let pid = DEFAULT_PID + u32::try_from(children.len()).unwrap_or(u32::MAX - DEFAULT_PID);
            let transport =
                MemoryProcessTransport::connected(spec.get_child_fds(), Some(pid), Some(protocol));
            let child = FakeChild::spawned(transport, spec);
            children.push(child.clone());
            child
        };
        let transport = child.transport();
        let handle: Arc<dyn ProcessTransport> = Arc::new(transport.clone());
        transport.act(|_, out| out.push(Delivery::MakeConnection(handle)));
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
