//! [`Session`]: one call for a test that replays a cassette when it exists and records it
//! through real processes when it does not.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use process_transport_api::ProcessSpawner;

use crate::{CassetteError, MatchRules, PatternError, RecordingSpawner, Redactions, ReplaySpawner};

/// The environment variable that overrides a [`Session`]'s choice: `record` re-records even
/// when the cassette exists, `replay` forbids recording (for CI: a missing cassette is an
/// error), `verify` replays and then checks the cassette against the real programs at
/// [`Session::finish`], `auto` or unset replays when the cassette exists and records when it
/// does not.
pub const MODE_VARIABLE: &str = "PROCESS_CASSETTE";

/// What a [`Session`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serves spawns from the cassette.
    Replay,
    /// Runs real processes and writes the cassette at [`Session::finish`].
    Record,
    /// Serves spawns from the cassette, and at [`Session::finish`] runs every recording again
    /// on real processes ([`Verifier`](crate::Verifier)), failing with
    /// [`CassetteError::Stale`] when a program no longer does what it did.
    Verify,
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
    mode: Mode,
    spawner: Arc<dyn ProcessSpawner>,
    recorder: Option<RecordingSpawner>,
    replay: Option<ReplaySpawner>,
    /// What the session restores, for a verification.
    #[cfg_attr(not(feature = "real"), allow(dead_code))]
    redactions: Redactions,
}

/// How a [`Session`] is opened: the mode, what is redacted, and how a replay matches.
///
/// ```no_run
/// use process_transport_cassette::Session;
///
/// let session = Session::builder("tests/cassettes/probe.json")
///     .pattern("/tmp/sccache[A-Za-z0-9]+", "<PROBE_DIR>")
///     .pattern(r#""processId": *[0-9]+"#, "<PID>")
///     .secret_env("API_TOKEN")
///     .lenient_stdin()
///     .open()?;
/// // ... run the test's commands on session.spawner() ...
/// session.finish()?;
/// # Ok::<(), process_transport_cassette::CassetteError>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until it is opened"]
pub struct SessionBuilder {
    path: PathBuf,
    mode: Option<String>,
    redactions: Redactions,
    rules: MatchRules,
    kept_values: Vec<String>,
    kept_digests: Vec<String>,
    /// The first pattern that could not be used, reported by `open`.
    error: Option<PatternError>,
}

impl SessionBuilder {
    /// The mode, as [`MODE_VARIABLE`]'s value would give it, in place of the variable.
    pub fn mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = Some(mode.into());
        self
    }

    /// Redacts `redactions` in place of the default (this machine's paths); patterns and
    /// secrets added after this are added to them.
    pub fn redacting(mut self, redactions: Redactions) -> Self {
        self.redactions = redactions;
        self
    }

    /// Stores the matches of `pattern` as placeholders, bound at replay
    /// ([`Redactions::pattern`]). A pattern that cannot be used is reported by
    /// [`open`](Self::open).
    pub fn pattern(mut self, pattern: &str, placeholder: impl Into<String>) -> Self {
        match self.redactions.clone().pattern(pattern, placeholder) {
            Ok(redactions) => self.redactions = redactions,
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// Keeps `Content-Length` headers true where placeholders change the length of the
    /// bodies they frame ([`Redactions::framed_by_content_length`]).
    pub fn framed_by_content_length(mut self) -> Self {
        self.redactions = self.redactions.framed_by_content_length();
        self
    }

    /// Replaces `value` with `placeholder` ([`Redactions::secret`]).
    pub fn secret(mut self, value: impl AsRef<[u8]>, placeholder: impl Into<String>) -> Self {
        self.redactions = self.redactions.secret(value, placeholder);
        self
    }

    /// Replaces the value of the variable `name` with `<name>` ([`Redactions::secret_env`]).
    pub fn secret_env(mut self, name: &str) -> Self {
        self.redactions = self.redactions.secret_env(name);
        self
    }

    /// Matches spawns by `rules` in place of the current ones.
    pub fn rules(mut self, rules: MatchRules) -> Self {
        self.rules = rules;
        self
    }

    /// Counts stdin bytes without comparing them ([`MatchRules::lenient_stdin`]).
    pub fn lenient_stdin(mut self) -> Self {
        self.rules = self.rules.lenient_stdin();
        self
    }

    /// Does not compare the working directory ([`MatchRules::ignore_cwd`]).
    pub fn ignore_cwd(mut self) -> Self {
        self.rules = self.rules.ignore_cwd();
        self
    }

    /// Matches the arguments by `predicate(recorded, asked)` ([`MatchRules::args_with`]).
    pub fn args_with(
        mut self,
        predicate: impl Fn(&[String], &[String]) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rules = self.rules.args_with(predicate);
        self
    }

    /// Lets an argument matching `pattern` match any other that does
    /// ([`MatchRules::args_matching`]); a pattern that cannot be used is reported by
    /// [`open`](Self::open).
    pub fn args_matching(mut self, pattern: &str) -> Self {
        match self.rules.clone().args_matching(pattern) {
            Ok(rules) => self.rules = rules,
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// Records, and at replay matches, the values of the variables `names`, redacted
    /// ([`RecordingSpawner::keep_env_values`]).
    pub fn match_env_values<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kept_values = names.into_iter().map(Into::into).collect();
        self
    }

    /// Records digests of the secret values of the variables `names`, and at replay matches
    /// the live values' digests ([`RecordingSpawner::keep_env_digests`]).
    pub fn match_env_digests<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kept_digests = names.into_iter().map(Into::into).collect();
        self
    }

    /// Opens the session.
    ///
    /// # Errors
    /// `BadPattern` for a pattern that cannot be used; `BadMode` for an unknown mode;
    /// `Missing` when the mode is `replay` or `verify` and there is no cassette; any error
    /// of [`Cassette::load`](crate::Cassette::load) for a cassette that exists.
    pub fn open(self) -> Result<Session, CassetteError> {
        let path = self.path;
        if let Some(error) = self.error {
            return Err(CassetteError::BadPattern { path, error });
        }
        let mode = chosen_mode(self.mode, &path)?;
        if mode == Mode::Record {
            let recorder = recorder(&path)?
                .redacting(self.redactions.clone())
                .keep_env_values(self.kept_values)
                .keep_env_digests(self.kept_digests);
            return Ok(Session {
                path,
                mode,
                spawner: Arc::new(recorder.clone()),
                recorder: Some(recorder),
                replay: None,
                redactions: self.redactions,
            });
        }
        let replay = ReplaySpawner::load(&path)?
            .restoring(&self.redactions)
            .with_rules(self.rules);
        Ok(Session {
            path,
            mode,
            spawner: Arc::new(replay.clone()),
            recorder: None,
            replay: Some(replay),
            redactions: self.redactions,
        })
    }
}

/// The mode `given` (or, when none is, [`MODE_VARIABLE`]'s value) names for the cassette at
/// `path`: `auto` or nothing replays when the file exists and records when it does not.
pub(crate) fn chosen_mode(given: Option<String>, path: &Path) -> Result<Mode, CassetteError> {
    let mode = given.unwrap_or_else(|| std::env::var(MODE_VARIABLE).unwrap_or_default());
    Ok(match mode.as_str() {
        "record" => Mode::Record,
        "replay" => Mode::Replay,
        "verify" => Mode::Verify,
        "" | "auto" if path.exists() => Mode::Replay,
        "" | "auto" => Mode::Record,
        other => {
            return Err(CassetteError::BadMode {
                path: path.to_owned(),
                value: other.to_owned(),
            })
        }
    })
}

/// A recorder on real processes.
#[cfg(feature = "real")]
fn recorder(_: &Path) -> Result<RecordingSpawner, CassetteError> {
    Ok(RecordingSpawner::new(Arc::new(
        process_transport_real::RealSpawner::new(),
    )))
}

#[cfg(not(feature = "real"))]
fn recorder(path: &Path) -> Result<RecordingSpawner, CassetteError> {
    Err(needs_real(path, "recording"))
}

/// The error of a mode that runs real processes, built without the `real` feature.
#[cfg(not(feature = "real"))]
fn needs_real(path: &Path, what: &str) -> CassetteError {
    CassetteError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{what} runs real processes, which needs the `real` feature of this crate"),
        ),
    }
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
        Self::builder(path)
            .mode(mode)
            .redacting(redactions.clone())
            .open()
    }

    /// A builder for a session of the cassette at `path`: patterns of volatile values,
    /// secrets, match rules, the mode.
    pub fn builder(path: impl AsRef<Path>) -> SessionBuilder {
        SessionBuilder {
            path: path.as_ref().to_owned(),
            mode: None,
            redactions: Redactions::new(),
            rules: MatchRules::exact(),
            kept_values: Vec::new(),
            kept_digests: Vec::new(),
            error: None,
        }
    }

    /// Whether the session replays or records.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The spawner to run the test's commands on.
    pub fn spawner(&self) -> Arc<dyn ProcessSpawner> {
        self.spawner.clone()
    }

    /// Ends the session: a recording is saved at the cassette's path; a replay checks that
    /// every recorded spawn was served; a verifying session then runs every recording again
    /// on real processes, with the values this replay bound to the placeholders.
    ///
    /// # Errors
    /// As [`Cassette::save`](crate::Cassette::save); `Mismatch`, `Unused` or `Stalled` for
    /// a replay; `Stale`, with the report, when a verified program no longer does what it did.
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
        if self.mode == Mode::Verify {
            return self.verify(replay.bindings());
        }
        Ok(())
    }

    /// Runs the cassette's recordings again on real processes, on a runtime of its own (on
    /// a thread of its own, so that a test's runtime is never blocked in).
    #[cfg(feature = "real")]
    fn verify(
        &self,
        bindings: std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<(), CassetteError> {
        let cassette = crate::Cassette::load(&self.path)?;
        let verifier = crate::Verifier::new(Arc::new(process_transport_real::RealSpawner::new()))
            .restoring(&self.redactions)
            .binding_all(bindings);
        let verification = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|source| CassetteError::Io {
                            path: self.path.clone(),
                            source,
                        })?;
                    Ok(runtime.block_on(verifier.verify(&cassette)))
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        if verification.is_unchanged() {
            Ok(())
        } else {
            Err(CassetteError::Stale {
                path: self.path.clone(),
                report: verification.to_string(),
            })
        }
    }

    #[cfg(not(feature = "real"))]
    fn verify(&self, _: std::collections::BTreeMap<String, Vec<u8>>) -> Result<(), CassetteError> {
        Err(needs_real(&self.path, "verifying"))
    }
}
