//! The spawner of real child processes.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use process_transport_api::{
    implement::{Delivery, Dispatcher, ProcessModel, DEFAULT_HIGH_WATER},
    ChildFd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};
use tokio::sync::Notify;

use crate::pump::{exit_pump, read_pump, write_pump};
use crate::shared::{PipeGrowth, PumpGuard, Shared, State, TerminalSide};
use crate::sys::{self, Pipe, Spawned};
use crate::transport::RealProcessTransport;

/// A [`ProcessSpawner`] that starts real OS processes on the current tokio runtime.
///
/// `spawn_process` must run inside a tokio runtime (any flavour, with I/O enabled): the
/// pipes and the exit are watched by tasks spawned on it. Outside any runtime it starts
/// nothing and fails with `SpawnError::Io`, naming the executable.
///
/// ```
/// use process_transport_api::SpawnSpec;
/// use process_transport_real::RealSpawner;
///
/// let spawner = RealSpawner::new().high_water(16 * 1024);
/// # let _ = (spawner, SpawnSpec::new("true"));
/// ```
#[derive(Clone, Debug)]
pub struct RealSpawner {
    high_water: usize,
    portable: bool,
}

impl Default for RealSpawner {
    fn default() -> Self {
        RealSpawner {
            high_water: DEFAULT_HIGH_WATER,
            portable: !cfg!(target_os = "linux"),
        }
    }
}

impl RealSpawner {
    /// A spawner with the default stdin high-water mark (64 KiB).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the stdin high-water mark above which a registered push producer is paused.
    pub fn high_water(mut self, bytes: usize) -> Self {
        self.high_water = bytes;
        self
    }

    /// Takes the portable path, which every unix has, even on Linux: fork and exec with the
    /// fds above the map marked close-on-exec one by one, the child awaited by its pid through
    /// `SIGCHLD` and signalled by pid until it is reaped, and pipes of the kernel's default
    /// size. Off Linux it is the only path, and `portable(false)` changes nothing. On Linux it
    /// exists to prove that path, which the contract suite runs too.
    ///
    /// ```
    /// use process_transport_real::RealSpawner;
    ///
    /// assert!(RealSpawner::new().portable(true).is_portable());
    /// assert_eq!(RealSpawner::new().is_portable(), !cfg!(target_os = "linux"));
    /// ```
    pub fn portable(mut self, portable: bool) -> Self {
        self.portable = portable || !cfg!(target_os = "linux");
        self
    }

    /// Whether this spawner takes the portable path.
    pub fn is_portable(&self) -> bool {
        self.portable
    }
}

/// Refuses before anything starts when there is no tokio runtime to watch the child: the
/// pipes and the exit could not be registered, and the child would run unwatched.
/// A runtime built without I/O is refused the same way, with the builder call that fixes it.
fn check_runtime(spec: &SpawnSpec) -> Result<(), SpawnError> {
    thread_local! {
        /// The runtime this thread last found with its I/O driver: a runtime keeps the
        /// drivers it was built with, so it is tried once, not at every spawn.
        static WITH_IO: std::cell::Cell<Option<tokio::runtime::Id>> = const { std::cell::Cell::new(None) };
    }
    let why = match tokio::runtime::Handle::try_current() {
        Ok(runtime) if WITH_IO.get() == Some(runtime.id()) => return Ok(()),
        Ok(runtime) if sys::runtime_has_io() => {
            WITH_IO.set(Some(runtime.id()));
            return Ok(());
        }
        Ok(_) => " (this one was built without it: call enable_io or enable_all on its builder)",
        Err(_) => "",
    };
    Err(SpawnError::Io(io::Error::other(format!(
        "cannot spawn {:?}: RealSpawner::spawn_process must run inside a tokio runtime \
         with I/O enabled{why}",
        spec.get_executable().to_string_lossy(),
    ))))
}

/// Names the working directory, not the executable, when the directory is what is wrong.
fn check_cwd(spec: &SpawnSpec) -> Result<(), SpawnError> {
    let Some(cwd) = spec.get_cwd() else {
        return Ok(());
    };
    let (kind, why) = match std::fs::metadata(cwd) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => (io::ErrorKind::NotADirectory, "is not a directory"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            (io::ErrorKind::NotFound, "does not exist")
        }
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => (
            io::ErrorKind::PermissionDenied,
            "cannot be reached: permission denied",
        ),
        Err(err) if sys::is_not_a_directory(&err) => (
            io::ErrorKind::NotFound,
            "does not exist (a part of its path is not a directory)",
        ),
        Err(_) => return Ok(()),
    };
    Err(SpawnError::Io(io::Error::new(
        kind,
        format!(
            "cannot spawn {:?}: working directory {} {why}",
            spec.get_executable().to_string_lossy(),
            cwd.display()
        ),
    )))
}

#[async_trait]
impl ProcessSpawner for RealSpawner {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        spec.validate()?;
        check_runtime(&spec)?;
        check_cwd(&spec)?;
        let Spawned {
            pid,
            child,
            pipes,
            terminal,
        } = sys::spawn(&spec, self.portable)?;
        // Made before anything could reap the child, so that its exit cannot be missed.
        let watch = match child.watch() {
            Ok(watch) => watch,
            Err(err) => {
                let _ = child.signal(process_transport_api::Signal::Kill);
                let _ = child.reap_blocking();
                return Err(SpawnError::Io(io::Error::new(
                    err.kind(),
                    format!(
                        "cannot spawn {:?}: cannot watch the child for its exit: {err}",
                        spec.get_executable().to_string_lossy()
                    ),
                )));
            }
        };
        let transport_fds = spec.transport_fds();

        let dispatcher =
            Dispatcher::releasing_at_end(protocol).recycling_data(crate::buffers::give);
        let mut model = ProcessModel::new(&transport_fds, Some(pid));
        model.set_high_water(self.high_water);
        model.shown_by(&dispatcher);
        let mut senders = BTreeMap::new();
        let mut receivers = Vec::new();
        let mut broken = Vec::new();
        for pipe in pipes {
            // Registering with the runtime fails only when it cannot watch more fds; that pipe
            // is then reported lost at once.
            // Made non-blocking when created; a terminal's master side is no pipe.
            match pipe {
                Pipe::Reads(fd, end) => match sys::receiver(end) {
                    Ok(receiver) => receivers.push((fd, receiver)),
                    Err(_) => broken.push(fd),
                },
                Pipe::Writes(fd, end) => match sys::sender(end) {
                    Ok(sender) => drop(senders.insert(fd, Arc::new(sender))),
                    Err(_) => broken.push(fd),
                },
            }
        }
        let read_fds: Vec<ChildFd> = receivers.iter().map(|(fd, _)| *fd).collect();
        let shared = Arc::new(Shared {
            wakers: transport_fds
                .keys()
                .map(|&fd| (fd, Notify::new()))
                .collect(),
            state: Mutex::new(State {
                model,
                buffers: BTreeMap::new(),
                senders: senders.clone(),
                receivers: receivers.into_iter().collect(),
                growth: PipeGrowth::new(!self.portable),
                terminal: terminal.then(TerminalSide::default),
            }),
            dispatcher,
            child: Mutex::new(Some(child.clone())),
            live_pumps: AtomicUsize::new(0),
            pumps_done: Notify::new(),
        });
        let weak = Arc::downgrade(&shared);
        shared.dispatcher.set_panic_handler(Some(Arc::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.end_after_panic();
            }
        })));
        let transport = RealProcessTransport {
            shared: shared.clone(),
        };
        let handle: Arc<dyn ProcessTransport> = Arc::new(transport);
        shared.act(|state, out| {
            out.push(Delivery::MakeConnection(handle.clone()));
            for fd in broken {
                state.model.pipe_lost(fd, out);
            }
        });
        for fd in read_fds {
            tokio::spawn(read_pump(PumpGuard::new(&shared), fd));
        }
        for (fd, sender) in senders {
            tokio::spawn(write_pump(PumpGuard::new(&shared), fd, sender));
        }
        tokio::spawn(exit_pump(PumpGuard::new(&shared), child, watch));
        Ok(handle)
    }

    /// `true` on unix: a real child gets the parent's fd. `false` on Windows, which has
    /// handles, not fd numbers: a front door copies a file's bytes through instead.
    fn inherits_parent_fds(&self) -> bool {
        cfg!(unix)
    }
}
