//! [`Shims`]: a cassette served to code that starts its processes any other way (a
//! dependency's `std::process::Command`, a shell script, another language, a grandchild),
//! through shim programs on `PATH`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::redact::RedactionParts;
use crate::{Bytes, Cassette, CassetteError, Mode, PatternError, Recording, Redactions};

/// The variable that tells a shim where its session is: the directory [`Shims`] made.
pub const SHIM_VARIABLE: &str = "PROCESS_CASSETTE_SHIM";

#[cfg(feature = "cli")]
/// The variable a recording shim gives the real program: its own place in the recording, so
/// that a shimmed program the real one starts is recorded as started within it.
pub(crate) const WITHIN_VARIABLE: &str = "PROCESS_CASSETTE_SHIM_WITHIN";

/// The variable that names the shim program (`process-cassette`), when it is not on `PATH`.
pub const BINARY_VARIABLE: &str = "PROCESS_CASSETTE_BIN";

/// What every shim of a session reads: the mode, the cassette, the rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Config {
    pub(crate) record: bool,
    pub(crate) cassette: PathBuf,
    /// The directory of the shims, which a recording shim skips on `PATH`.
    pub(crate) shims: PathBuf,
    pub(crate) redactions: RedactionParts,
    pub(crate) lenient_stdin: bool,
    pub(crate) ignore_cwd: bool,
    pub(crate) args_matching: Option<String>,
    pub(crate) kept_values: Vec<String>,
    pub(crate) kept_digests: Vec<String>,
}

/// What the shims of a session share, under its lock.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    /// Replay: the recordings served.
    pub(crate) served: BTreeSet<usize>,
    /// Replay: the values bound to placeholders.
    pub(crate) bindings: BTreeMap<String, Bytes>,
    /// Replay: the spawns no recording served, as their messages.
    pub(crate) unmatched: Vec<String>,
    /// Replay: input that differed from the recording, and other failures.
    pub(crate) failures: Vec<String>,
    /// Record: the next spawn's number, in start order.
    pub(crate) next: u64,
    /// Record: what each finished spawn did, by start number.
    pub(crate) recorded: Vec<Taken>,
}

/// One spawn a recording shim took.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Taken {
    pub(crate) number: u64,
    pub(crate) within: Option<u64>,
    pub(crate) recording: Recording,
}

/// A session's directory: its config, its state and its lock, and the shims.
#[derive(Clone, Debug)]
pub(crate) struct SessionDir(pub(crate) PathBuf);

impl SessionDir {
    fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }

    fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }

    pub(crate) fn shims(&self) -> PathBuf {
        self.0.join("bin")
    }

    #[cfg(feature = "cli")]
    pub(crate) fn read_config(&self) -> io::Result<Config> {
        let text = fs::read_to_string(self.config())?;
        serde_json::from_str(&text).map_err(io::Error::other)
    }

    fn write_config(&self, config: &Config) -> io::Result<()> {
        fs::write(
            self.config(),
            serde_json::to_vec(config).map_err(io::Error::other)?,
        )
    }

    /// The state, under the session's lock (`flock` on its lock file, which every shim of
    /// every process takes) until the guard is saved or dropped.
    pub(crate) fn lock_state(&self) -> io::Result<StateGuard> {
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.0.join("state.lock"))?;
        rustix::fs::flock(&lock_file, rustix::fs::FlockOperation::LockExclusive)?;
        let state: State = match fs::read(self.state()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => State::default(),
            Err(err) => return Err(err),
        };
        Ok(StateGuard {
            state,
            dir: self.clone(),
            _lock: lock_file,
        })
    }

    /// Runs `change` on the state under the session's lock, and saves what it leaves.
    pub(crate) fn with_state<R>(&self, change: impl FnOnce(&mut State) -> R) -> io::Result<R> {
        let mut guard = self.lock_state()?;
        let result = change(&mut guard.state);
        guard.save()?;
        Ok(result)
    }
}

/// The state of a session, held under its lock.
pub(crate) struct StateGuard {
    pub(crate) state: State,
    dir: SessionDir,
    /// Locked; dropping it unlocks.
    _lock: fs::File,
}

impl StateGuard {
    /// Writes the state (a new file renamed over the old), then unlocks.
    pub(crate) fn save(self) -> io::Result<()> {
        let temp = self.dir.0.join("state.json.tmp");
        fs::write(
            &temp,
            serde_json::to_vec(&self.state).map_err(io::Error::other)?,
        )?;
        fs::rename(&temp, self.dir.state())
    }
}

/// Shims on `PATH` that serve a cassette to code that starts its processes any other way
/// than through a spawner: a dependency's `std::process::Command`, a build script, a shell
/// script, a program in another language, a grandchild.
///
/// Opening makes a private directory holding, for each program, a symbolic link to the
/// `process-cassette` binary under the program's name. Give the code under test
/// [`vars`](Self::vars) (`PATH` with that directory first, and the variable that names the
/// session) and it runs the shims in place of the programs. In replay mode a shim picks the
/// recording that matches its argv and cwd (by the cassette's placeholders and the rules
/// given), plays the recorded output on its real stdout and stderr as it was interleaved with
/// what it reads on its stdin, and ends as the recorded child did: with its exit code, or
/// killed by its signal. A spawn no recording matches prints a message naming the command and
/// the cassette on stderr and exits with 127. In record mode a shim runs the real program
/// (found on the rest of `PATH`, never a shim) with its stdin, stdout and stderr passed
/// through, passes on SIGINT, SIGTERM, SIGHUP and SIGQUIT, and keeps what it did.
///
/// Shims of many processes at once share the session safely: they take recordings and add
/// theirs under one lock, repeated commands are served in the order recorded, and none is
/// served twice. [`finish`](Self::finish) writes the cassette (record) or fails naming the
/// recordings never served, the spawns no recording matched and input that differed
/// (replay). The mode comes from [`MODE_VARIABLE`](crate::MODE_VARIABLE), as for a [`Session`](crate::Session).
///
/// ```no_run
/// use process_transport_cassette::Shims;
///
/// let shims = Shims::builder("tests/cassettes/release.json").program("git").open()?;
/// let status = std::process::Command::new("sh")
///     .args(["-c", "git describe --tags"])
///     .envs(shims.vars())
///     .status()?;
/// assert!(status.success());
/// shims.finish()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Shims {
    dir: tempfile::TempDir,
    session: SessionDir,
    path: PathBuf,
    mode: Mode,
    redactions: Redactions,
    path_variable: OsString,
}

impl fmt::Debug for Shims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shims")
            .field("cassette", &self.path)
            .field("mode", &self.mode)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// How [`Shims`] are opened: the programs, the shim binary, the mode, what is redacted and
/// how a replay matches.
#[derive(Debug)]
#[must_use = "a builder does nothing until it is opened"]
pub struct ShimsBuilder {
    path: PathBuf,
    mode: Option<String>,
    programs: Vec<String>,
    binary: Option<PathBuf>,
    redactions: Redactions,
    lenient_stdin: bool,
    ignore_cwd: bool,
    args_matching: Option<String>,
    kept_values: Vec<String>,
    kept_digests: Vec<String>,
    error: Option<PatternError>,
}

impl ShimsBuilder {
    /// Shims `program` (a name looked up on `PATH`, such as `git`). In replay mode, every
    /// program the cassette holds is shimmed when none is named.
    pub fn program(mut self, program: impl Into<String>) -> Self {
        self.programs.push(program.into());
        self
    }

    /// Shims each of `programs`.
    pub fn programs<I, S>(mut self, programs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.programs.extend(programs.into_iter().map(Into::into));
        self
    }

    /// The shim program: the `process-cassette` binary of this crate. Found otherwise as
    /// [`BINARY_VARIABLE`] names it, on `PATH`, or beside the running executable (and one
    /// directory up, where cargo puts a workspace's binaries beside its test binaries).
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// The mode, as [`MODE_VARIABLE`](crate::MODE_VARIABLE)'s value would give it (`record`, `replay`, `auto`).
    pub fn mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = Some(mode.into());
        self
    }

    /// Redacts `redactions` in place of the default (this machine's paths).
    pub fn redacting(mut self, redactions: Redactions) -> Self {
        self.redactions = redactions;
        self
    }

    /// Stores the matches of `pattern` as placeholders, bound at replay
    /// ([`Redactions::pattern`]); a pattern that cannot be used is reported by
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

    /// Counts stdin bytes without comparing them.
    pub fn lenient_stdin(mut self) -> Self {
        self.lenient_stdin = true;
        self
    }

    /// Does not compare the working directory.
    pub fn ignore_cwd(mut self) -> Self {
        self.ignore_cwd = true;
        self
    }

    /// Lets an argument matching `pattern` match any other that does.
    pub fn args_matching(mut self, pattern: &str) -> Self {
        match crate::MatchRules::exact().args_matching(pattern) {
            Ok(_) => self.args_matching = Some(pattern.to_owned()),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// Records, and at replay matches, the values of the variables `names`, redacted.
    pub fn match_env_values<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kept_values = names.into_iter().map(Into::into).collect();
        self
    }

    /// Records digests of the values of the variables `names`, and at replay matches them.
    pub fn match_env_digests<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kept_digests = names.into_iter().map(Into::into).collect();
        self
    }

    /// Makes the shims.
    ///
    /// # Errors
    /// `BadPattern`, `BadMode`; `Missing` when a replay has no cassette; as
    /// [`Cassette::load`]; `Io` when the shim binary is not found (naming where it was
    /// looked for) or the directory cannot be made.
    pub fn open(self) -> Result<Shims, CassetteError> {
        let path = absolute(&self.path);
        if let Some(error) = self.error {
            return Err(CassetteError::BadPattern { path, error });
        }
        let mode = match crate::session::chosen_mode(self.mode, &path)? {
            // Shims replay or record; verifying is a `Session`'s.
            Mode::Verify => {
                return Err(CassetteError::BadMode {
                    path,
                    value: "verify".to_owned(),
                })
            }
            mode => mode,
        };
        let io_error = |source: io::Error| CassetteError::Io {
            path: path.clone(),
            source,
        };
        let mut programs = self.programs;
        if mode == Mode::Replay {
            let cassette = Cassette::load(&path)?;
            if programs.is_empty() {
                // A program every recording of which found it missing is not shimmed: a
                // spawn of it fails as it did, where it is missing here too.
                programs = cassette
                    .spawns
                    .iter()
                    .filter(|recording| {
                        !matches!(recording.refused, Some(crate::Refusal::NotFound(_)))
                            || cassette.spawns.iter().any(|other| {
                                other.command.first() == recording.command.first()
                                    && other.refused.is_none()
                            })
                    })
                    .filter_map(|recording| recording.command.first())
                    .filter(|program| !program.contains('/'))
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
            }
        } else if programs.is_empty() {
            return Err(io_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recording through shims needs the programs to shim: name them with `program`",
            )));
        }
        let binary = match self.binary {
            Some(binary) => binary,
            None => find_binary().map_err(io_error)?,
        };
        let dir = tempfile::Builder::new()
            .prefix("process-cassette-shims.")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(io_error)?;
        let session = SessionDir(dir.path().to_owned());
        fs::create_dir(session.shims()).map_err(io_error)?;
        for program in &programs {
            if program.is_empty() || program.contains('/') {
                return Err(io_error(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("`{program}` is not a program name to shim"),
                )));
            }
            std::os::unix::fs::symlink(&binary, session.shims().join(program)).map_err(io_error)?;
        }
        session
            .write_config(&Config {
                record: mode == Mode::Record,
                cassette: path.clone(),
                shims: session.shims(),
                redactions: self.redactions.parts(),
                lenient_stdin: self.lenient_stdin,
                ignore_cwd: self.ignore_cwd,
                args_matching: self.args_matching,
                kept_values: self.kept_values,
                kept_digests: self.kept_digests,
            })
            .map_err(io_error)?;
        let mut path_variable = session.shims().into_os_string();
        if let Some(rest) = std::env::var_os("PATH").filter(|rest| !rest.is_empty()) {
            path_variable.push(":");
            path_variable.push(rest);
        }
        Ok(Shims {
            dir,
            session,
            path,
            mode,
            redactions: self.redactions,
            path_variable,
        })
    }
}

/// `path` made absolute against the current directory, so that a shim in another directory
/// finds it.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The `process-cassette` binary: as [`BINARY_VARIABLE`] names it, on `PATH`, or beside the
/// running executable or one directory up.
fn find_binary() -> io::Result<PathBuf> {
    const NAME: &str = "process-cassette";
    if let Some(named) = std::env::var_os(BINARY_VARIABLE) {
        return Ok(PathBuf::from(named));
    }
    let mut places: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        places.push(dir.clone());
        if let Some(up) = dir.parent() {
            places.push(up.to_owned());
        }
    }
    places
        .iter()
        .map(|dir| dir.join(NAME))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the shim program `{NAME}` was not found on PATH, beside the running \
                     program, or in {BINARY_VARIABLE}; install it with `cargo install \
                     process-transport-cassette` or give its path with `ShimsBuilder::binary`"
                ),
            )
        })
}

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

impl Shims {
    /// A builder for the shims of the cassette at `path`.
    pub fn builder(path: impl AsRef<Path>) -> ShimsBuilder {
        ShimsBuilder {
            path: path.as_ref().to_owned(),
            mode: None,
            programs: Vec::new(),
            binary: None,
            redactions: Redactions::new(),
            lenient_stdin: false,
            ignore_cwd: false,
            args_matching: None,
            kept_values: Vec::new(),
            kept_digests: Vec::new(),
            error: None,
        }
    }

    /// Whether the shims replay or record.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The directory of the shims.
    pub fn dir(&self) -> PathBuf {
        self.session.shims()
    }

    /// `PATH` for the code under test: the shims' directory, then this process's `PATH`.
    pub fn path(&self) -> &OsStr {
        &self.path_variable
    }

    /// The variables to give the code under test: `PATH` and [`SHIM_VARIABLE`].
    pub fn vars(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("PATH".into(), self.path_variable.clone()),
            (SHIM_VARIABLE.into(), self.dir.path().as_os_str().to_owned()),
        ]
    }

    /// Ends the session: a recording is written to the cassette, in the order the spawns
    /// started (redacted, placeholders numbered across the whole cassette); a replay checks
    /// that every recording was served, that every spawn found one, and that no input
    /// differed.
    ///
    /// # Errors
    /// As [`Cassette::save`]; `Mismatch`, `Unmatched` or `Unused` for a replay; `Io` when the
    /// session's state cannot be read.
    pub fn finish(self) -> Result<(), CassetteError> {
        let io_error = |source: io::Error| CassetteError::Io {
            path: self.path.clone(),
            source,
        };
        let state = self.session.with_state(std::mem::take).map_err(io_error)?;
        if self.mode == Mode::Record {
            let mut taken = state.recorded;
            taken.sort_by_key(|taken| taken.number);
            let places: BTreeMap<u64, usize> = taken
                .iter()
                .enumerate()
                .map(|(place, taken)| (taken.number, place))
                .collect();
            let spawns = taken
                .into_iter()
                .map(|taken| {
                    let mut recording = taken.recording;
                    recording.within = taken.within.and_then(|number| places.get(&number).copied());
                    recording
                })
                .collect();
            return Cassette::new(spawns)
                .redacted(&self.redactions)
                .save(&self.path);
        }
        if !state.failures.is_empty() {
            return Err(CassetteError::Mismatch {
                path: self.path.clone(),
                failures: state.failures,
            });
        }
        if !state.unmatched.is_empty() {
            return Err(CassetteError::Unmatched {
                path: self.path.clone(),
                spawns: state.unmatched,
            });
        }
        let cassette = Cassette::load(&self.path)?;
        let unused: Vec<String> = cassette
            .spawns
            .iter()
            .enumerate()
            .filter(|(index, _)| !state.served.contains(index))
            .map(|(_, recording)| recording.command_line())
            .collect();
        if !unused.is_empty() {
            return Err(CassetteError::Unused {
                path: self.path.clone(),
                commands: unused,
            });
        }
        Ok(())
    }
}

#[cfg(feature = "cli")]
/// The recordings a served recording takes with it: those started within it, and within
/// those, since the program that started them does not run in a replay.
pub(crate) fn with_nested(cassette: &Cassette, served: &[usize]) -> BTreeSet<usize> {
    let mut all: BTreeSet<usize> = served.iter().copied().collect();
    loop {
        let more: Vec<usize> = cassette
            .spawns
            .iter()
            .enumerate()
            .filter(|(index, recording)| {
                !all.contains(index) && recording.within.is_some_and(|within| all.contains(&within))
            })
            .map(|(index, _)| index)
            .collect();
        if more.is_empty() {
            return all;
        }
        all.extend(more);
    }
}
