//! Spawns a reactor refused, and spawn failures a script answers with.

use std::io;

use process_transport_api::{SpawnError, SpawnSpec};

/// A spawn failure a registration answers with instead of a child
/// ([`Script::fail_spawn`](crate::Script::fail_spawn)): the error path of code that starts a
/// tool that is missing, not executable, or refused by the system.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnFailure {
    /// `SpawnError::NotFound` with the executable.
    NotFound,
    /// `SpawnError::PermissionDenied` with the executable.
    PermissionDenied,
    /// `SpawnError::InvalidSpec` with this text after the executable.
    InvalidSpec(String),
    /// `SpawnError::Io` of this kind.
    Io(io::ErrorKind),
}

impl SpawnFailure {
    /// The error a spawn of `spec` gets.
    pub fn error(&self, spec: &SpawnSpec) -> SpawnError {
        let executable = spec.get_executable().to_string_lossy().into_owned();
        match self {
            SpawnFailure::NotFound => SpawnError::NotFound(executable),
            SpawnFailure::PermissionDenied => SpawnError::PermissionDenied(executable),
            SpawnFailure::InvalidSpec(why) => {
                SpawnError::InvalidSpec(format!("cannot spawn {executable:?}: {why}"))
            }
            SpawnFailure::Io(kind) => SpawnError::Io(io::Error::new(
                *kind,
                format!("cannot spawn {executable:?}: {kind} (a scripted failure)"),
            )),
        }
    }
}

/// A spawn the reactor refused: the spec asked for and the error's text. A strict reactor
/// keeps every one ([`MemoryProcessReactor::refused`](crate::MemoryProcessReactor::refused)),
/// so code that swallows a `NotFound` (a probe for an optional tool) still leaves a trace.
#[derive(Clone, Debug)]
pub struct RefusedSpawn {
    spec: SpawnSpec,
    error: String,
}

impl RefusedSpawn {
    pub(crate) fn new(spec: &SpawnSpec, error: &SpawnError) -> Self {
        RefusedSpawn {
            spec: spec.clone(),
            error: error.to_string(),
        }
    }

    /// The spec that was refused.
    pub fn spec(&self) -> &SpawnSpec {
        &self.spec
    }

    /// The command line that was refused.
    pub fn command_line(&self) -> String {
        self.spec.command_line()
    }

    /// The refusal's message, as the caller got it.
    pub fn error(&self) -> &str {
        &self.error
    }
}
