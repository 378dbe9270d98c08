//! Making `MockProcessSpawner` behave like a spawner: hand back a transport and connect the
//! protocol.

use std::any::{type_name, Any};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{ProcessProtocol, ProcessTransport, SpawnError, SpawnSpec};

type Spawns = Vec<(SpawnSpec, Box<dyn ProcessProtocol>)>;

/// The protocols a [`connect_with`] responder connected, with their specs, in spawn order.
/// Clones share the list.
#[derive(Clone, Default)]
pub struct Connected {
    spawns: Arc<Mutex<Spawns>>,
    failures: Arc<process_transport_api::implement::FailureSink>,
}

impl Drop for Connected {
    /// Raises, on the thread that made it (the test's), what the mock transport's drop
    /// panicked with on another thread: an unmet expectation the test would not see.
    fn drop(&mut self) {
        self.failures
            .raise_on_home_thread("connect_with: the mock transport");
    }
}

impl fmt::Debug for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.lock().iter().map(|(spec, _)| spec.command_line()))
            .finish()
    }
}

impl Connected {
    fn lock(&self) -> MutexGuard<'_, Spawns> {
        self.spawns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many spawns were answered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` before the first spawn.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The specs, in spawn order.
    pub fn specs(&self) -> Vec<SpawnSpec> {
        self.lock().iter().map(|(spec, _)| spec.clone()).collect()
    }

    /// Runs `f` on the protocol of spawn `index` as its concrete type `P`.
    ///
    /// # Panics
    /// When there was no such spawn, or its protocol is not a `P`.
    pub fn with_protocol<P: ProcessProtocol, R>(
        &self,
        index: usize,
        f: impl FnOnce(&mut P) -> R,
    ) -> R {
        let mut spawns = self.lock();
        let count = spawns.len();
        let (_, protocol) = spawns.get_mut(index).unwrap_or_else(|| {
            panic!("Connected::with_protocol({index}): only {count} spawn(s) happened")
        });
        let protocol: &mut dyn Any = protocol.as_mut();
        let protocol = protocol.downcast_mut::<P>().unwrap_or_else(|| {
            panic!(
                "Connected::with_protocol({index}): the protocol is not a {}",
                type_name::<P>()
            )
        });
        f(protocol)
    }
}

/// The signature of `MockProcessSpawner::expect_spawn_process().returning(..)`.
pub type SpawnResponder = Box<
    dyn FnMut(Box<dyn ProcessProtocol>, SpawnSpec) -> Result<Arc<dyn ProcessTransport>, SpawnError>
        + Send,
>;

/// A responder for `MockProcessSpawner::expect_spawn_process().returning(..)` that does what a
/// real spawner does: calls the protocol's `make_connection` with `transport` (a fake or a
/// mock), keeps the protocol for the test, and returns the transport.
///
/// The transport is handed out wrapped, so that its drop is watched: when its last handle
/// drops on another thread (a task the runtime cancels at its shutdown, say) and a mock's
/// expectation is unmet there, the panic is kept and raised again when the returned
/// [`Connected`] drops on the thread that called `connect_with`, the test's. Give the
/// transport to `connect_with` and keep no other handle to it, so that its last drop is
/// watched.
///
/// ```
/// use process_transport_api::{ProcessSpawner, SpawnSpec, ProcessTransport};
/// use process_transport_mocks::{connect_with, spawn_spec, MockProcessProtocol, MockProcessSpawner, MockProcessTransport};
/// use std::sync::Arc;
///
/// let mut transport = MockProcessTransport::new();
/// transport.expect_pid().return_const(Some(7));
/// let transport: Arc<dyn ProcessTransport> = Arc::new(transport);
///
/// let (responder, connected) = connect_with(transport);
/// let mut spawner = MockProcessSpawner::new();
/// spawner
///     .expect_spawn_process()
///     .withf(|_, spec| spawn_spec().executable("true").eval(spec))
///     .times(1)
///     .returning(responder);
///
/// let mut protocol = MockProcessProtocol::new();
/// protocol.expect_make_connection().times(1).return_const(());
/// let spawned = futures_executor::block_on(spawner.spawn_process(Box::new(protocol), SpawnSpec::new("true"))).unwrap();
/// assert_eq!(spawned.pid(), Some(7));
/// assert_eq!(connected.specs(), [SpawnSpec::new("true")]);
/// # use predicates::Predicate;
/// ```
pub fn connect_with(transport: Arc<dyn ProcessTransport>) -> (SpawnResponder, Connected) {
    let connected = Connected::default();
    let record = connected.clone();
    let transport: Arc<dyn ProcessTransport> = Arc::new(crate::watched::Watched::new(
        transport,
        connected.failures.clone(),
    ));
    let responder: SpawnResponder = Box::new(move |mut protocol, spec| {
        protocol.make_connection(transport.clone());
        record.lock().push((spec, protocol));
        Ok(transport.clone())
    });
    (responder, connected)
}
