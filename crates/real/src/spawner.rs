//! The spawner of real child processes.

use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use process_transport_api::{
    Delivery, Dispatcher, ProcessModel, ProcessProtocol, ProcessSpawner, ProcessTransport,
    SpawnError, SpawnSpec, DEFAULT_HIGH_WATER,
};
use tokio::net::unix::pipe;
use tokio::sync::Notify;

use crate::pump::{exit_pump, read_pump, write_pump};
use crate::sys::{prepare, Pidfd, Pipe, Prepared};
use crate::transport::{RealProcessTransport, Shared, State};

/// A [`ProcessSpawner`] that starts real OS processes on the current tokio runtime.
///
/// `spawn_process` must run inside a tokio runtime (any flavour, with I/O enabled): the
/// pipes and the exit are watched by tasks spawned on it.
///
/// ```
/// use process_transport_api::{ProcessSpawner, SpawnSpec};
/// use process_transport_real::RealSpawner;
///
/// let spawner = RealSpawner::new().high_water(16 * 1024);
/// # let _ = (spawner, SpawnSpec::new("true"));
/// ```
#[derive(Clone, Debug)]
pub struct RealSpawner {
    high_water: usize,
}

impl Default for RealSpawner {
    fn default() -> Self {
        RealSpawner {
            high_water: DEFAULT_HIGH_WATER,
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
}

fn spawn_error(spec: &SpawnSpec, err: io::Error) -> SpawnError {
    let executable = spec.get_executable().to_string_lossy().into_owned();
    match err.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(executable),
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied(executable),
        io::ErrorKind::InvalidInput => {
            SpawnError::InvalidSpec(format!("cannot spawn {executable:?}: {err}"))
        }
        kind => SpawnError::Io(io::Error::new(
            kind,
            format!("cannot spawn {executable:?}: {err}"),
        )),
    }
}

fn check_cwd(spec: &SpawnSpec) -> Result<(), SpawnError> {
    match spec.get_cwd() {
        Some(cwd) if !cwd.is_dir() => Err(SpawnError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "cannot spawn {:?}: working directory {} is not a directory",
                spec.get_executable().to_string_lossy(),
                cwd.display()
            ),
        ))),
        _ => Ok(()),
    }
}

#[async_trait]
impl ProcessSpawner for RealSpawner {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        spec.validate()?;
        check_cwd(&spec)?;
        let Prepared {
            command,
            pipes,
            keep_until_spawned,
        } = prepare(&spec)?;
        let mut command = tokio::process::Command::from(command);
        let child = command.spawn().map_err(|err| spawn_error(&spec, err))?;
        // The parent's copies of the child's ends: the child has its own now.
        drop(command);
        drop(keep_until_spawned);

        let pid = child.id();
        let mut model = ProcessModel::new(spec.get_child_fds(), pid);
        model.set_high_water(self.high_water);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                model,
                buffers: Default::default(),
            }),
            dispatcher: Dispatcher::new(Some(protocol)),
            changed: Notify::new(),
            pidfd: Mutex::new(pid.map(Pidfd::open)),
        });
        let transport = RealProcessTransport {
            shared: shared.clone(),
        };
        let handle: Arc<dyn ProcessTransport> = Arc::new(transport.clone());
        shared.act(|_, out| out.push(Delivery::MakeConnection(handle.clone())));

        for pipe in pipes {
            let shared = shared.clone();
            match pipe {
                Pipe::Reads(fd, owned) => {
                    let receiver =
                        pipe::Receiver::from_owned_fd(owned).map_err(|err| spawn_error(&spec, err));
                    match receiver {
                        Ok(receiver) => drop(tokio::spawn(read_pump(shared, fd, receiver))),
                        Err(_) => shared.act(|state, out| state.model.pipe_lost(fd, out)),
                    }
                }
                Pipe::Writes(fd, owned) => {
                    let sender =
                        pipe::Sender::from_owned_fd(owned).map_err(|err| spawn_error(&spec, err));
                    match sender {
                        Ok(sender) => drop(tokio::spawn(write_pump(shared, fd, sender))),
                        Err(_) => shared.act(|state, out| state.model.pipe_lost(fd, out)),
                    }
                }
            }
        }
        tokio::spawn(exit_pump(shared, child));
        Ok(handle)
    }
}
