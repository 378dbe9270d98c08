//! [`Session`]: one call for a test that replays a cassette when it exists and records it
//! through real processes when it does not.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use process_transport_api::ProcessSpawner;

use crate::{CassetteError, RecordingSpawner, Redactions, ReplaySpawner};

/// The environment variable that overrides a [`Session`]'s choice: `record` re-records even
/// when the cassette exists, `replay` forbids recording (for CI: a missing cassette is an
/// error), `auto` or unset replays when the cassette exists and records when it does not.
pub const MODE_VARIABLE: &str = "PROCESS_CASSETTE";

/// What a [`Session`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serves spawns from the cassette.
    Replay,
    /// Runs real processes and writes the cassette at [`Session::finish`].
    Record,
}

/// A test's cassette: replayed when the file exists, recorded through a `RealSpawner` when it
/// does not (or when [`MODE_VARIABLE`] says `record`).
///
/// The workflow: run the test once on a machine that has the programs; it records and writes
/// the cassette. Commit the file. From then on the test replays it, with no process started;
/// CI sets `PROCESS_CASSETTE=replay` so that a missing cassette fails instead of recording.
/// Each test uses a cassette file of its own, so parallel tests never share one.
///
/// ```no_run
/// use process_transport_cassette::Session;
/// use process_transport_command::Command;
///
/// # #[allow(dead_code)] async fn test() -> Result<(), Box<dyn std::error::Error>> {
/// let session = Session::open("tests/cassettes/git-log.json")?;
/// let out = Command::new("git").args(["log", "-1"]).spawner(session.spawner()).output().await?;
/// assert!(out.status.success());
/// session.finish()?;
/// # Ok(()) }
/// ```
pub struct Session {
    path: PathBuf,
    spawner: Arc<dyn ProcessSpawner>,
    recorder: Option<RecordingSpawner>,
    replay: Option<ReplaySpawner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("path", &self.path)
            .field("mode", &self.mode())
            .finish()
    }
}

impl Session {
    /// Opens the session of the cassette at `path`, in the mode [`MODE_VARIABLE`] and the
    /// file's existence give.
    ///
    /// # Errors
    /// `BadMode` for an unknown value of the variable; `Missing` when it says `replay` and
    /// there is no cassette; any error of [`Cassette::load`](crate::Cassette::load) for a cassette that exists.
    pub fn open(path: impl AsRef<Path>) -> Result<Session, CassetteError> {
        let mode = std::env::var(MODE_VARIABLE).unwrap_or_default();
        Self::open_with(path, &mode)
    }

    /// As [`open`](Self::open), with the mode given as the variable's value would be.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(path: impl AsRef<Path>, mode: &str) -> Result<Session, CassetteError> {
        Self::open_redacting(path, mode, &Redactions::new())
    }

    /// As [`open_with`](Self::open_with), redacting `redactions` (in place of the default,
    /// this machine's paths) when it records and restoring them when it replays.
    ///
    /// ```no_run
    /// use process_transport_cassette::{Redactions, Session, MODE_VARIABLE};
    ///
    /// let mode = std::env::var(MODE_VARIABLE).unwrap_or_default();
    /// let redactions = Redactions::new().secret_env("API_TOKEN");
    /// let session = Session::open_redacting("tests/cassettes/deploy.json", &mode, &redactions)?;
    /// // ... run the test's commands on session.spawner() ...
    /// session.finish()?;
    /// # Ok::<(), process_transport_cassette::CassetteError>(())
    /// ```
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_redacting(
        path: impl AsRef<Path>,
        mode: &str,
        redactions: &Redactions,
    ) -> Result<Session, CassetteError> {
        let path = path.as_ref().to_owned();
        let record = match mode {
            "record" => true,
            "replay" => false,
            "" | "auto" => !path.exists(),
            other => {
                return Err(CassetteError::BadMode {
                    path,
                    value: other.to_owned(),
                })
            }
        };
        if record {
            return Self::recording(path, redactions);
        }
        let replay = ReplaySpawner::load(&path)?.restoring(redactions);
        Ok(Session {
            path,
            spawner: Arc::new(replay.clone()),
            recorder: None,
            replay: Some(replay),
        })
    }

    #[cfg(feature = "real")]
    fn recording(path: PathBuf, redactions: &Redactions) -> Result<Session, CassetteError> {
        let recorder = RecordingSpawner::new(Arc::new(process_transport_real::RealSpawner::new()))
            .redacting(redactions.clone());
        Ok(Session {
            path,
            spawner: Arc::new(recorder.clone()),
            recorder: Some(recorder),
            replay: None,
        })
    }

    #[cfg(not(feature = "real"))]
    fn recording(path: PathBuf, _: &Redactions) -> Result<Session, CassetteError> {
        Err(CassetteError::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "recording runs real processes, which needs the `real` feature of this crate",
            ),
        })
    }

    /// Whether the session replays or records.
    pub fn mode(&self) -> Mode {
        if self.recorder.is_some() {
            Mode::Record
        } else {
            Mode::Replay
        }
    }

    /// The spawner to run the test's commands on.
    pub fn spawner(&self) -> Arc<dyn ProcessSpawner> {
        self.spawner.clone()
    }

    /// Ends the session: a recording is saved at the cassette's path; a replay checks that
    /// every recorded spawn was served.
    ///
    /// # Errors
    /// As [`Cassette::save`](crate::Cassette::save); `Unused` naming the recordings a replay never served.
    pub fn finish(self) -> Result<(), CassetteError> {
        if let Some(recorder) = &self.recorder {
            return recorder.save(&self.path);
        }
        let Some(replay) = &self.replay else {
            return Ok(());
        };
        let failures = replay.failures_to_raise();
        if !failures.is_empty() {
            return Err(CassetteError::Mismatch {
                path: self.path.clone(),
                failures,
            });
        }
        let unused = replay.unused();
        if !unused.is_empty() {
            return Err(CassetteError::Unused {
                path: self.path.clone(),
                commands: unused,
            });
        }
        let waits = replay.waiting();
        if !waits.is_empty() {
            return Err(CassetteError::Stalled {
                path: self.path.clone(),
                waits,
            });
        }
        Ok(())
    }
}
