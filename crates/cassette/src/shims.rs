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

/// The variable a recording shim gives the real program: its own place in the recording, so
/// that a shimmed program the real one starts is recorded as started within it.
const WITHIN_VARIABLE: &str = "PROCESS_CASSETTE_SHIM_WITHIN";

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

#[cfg(feature = "real")]
pub use runtime::{run_shim, ShimEnd};

#[cfg(feature = "real")]
mod runtime {
    //! What a shim process does.

    use std::future::Future;
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    use process_transport_api::{
        ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport,
        Signal, SpawnError, SpawnSpec,
    };
    use process_transport_real::RealSpawner;

    use super::*;
    use crate::recorder::lock;
    use crate::replay::FirstInput;
    use crate::{FdKind, MatchRules, RecordingSpawner, ReplaySpawner};

    /// How a shim ends: what its process must do last.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ShimEnd {
        /// Exit with this code.
        Code(u8),
        /// Die by this signal, as the recorded child did (exiting with 128 plus it where the
        /// signal cannot end this process).
        Signal(i32),
    }

    /// What the shim binary runs when it is invoked under a program's name with
    /// [`SHIM_VARIABLE`] set: replays or records this process's spawn, as the session's
    /// mode says, and returns how to end. A shim that cannot work (no session, a cassette
    /// that cannot be read) says why on stderr and ends with 125.
    pub fn run_shim() -> ShimEnd {
        match shim() {
            Ok(end) => end,
            Err(message) => {
                eprintln!("process-cassette shim: {message}");
                ShimEnd::Code(125)
            }
        }
    }

    fn shim() -> Result<ShimEnd, String> {
        let dir =
            std::env::var_os(SHIM_VARIABLE).ok_or_else(|| format!("{SHIM_VARIABLE} is not set"))?;
        let session = SessionDir(PathBuf::from(dir));
        let config = session
            .read_config()
            .map_err(|err| format!("the session in {}: {err}", session.0.display()))?;
        let mut argv = std::env::args_os();
        let program = argv.next().ok_or("no argv[0]")?;
        let args: Vec<OsString> = argv.collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        let end = if config.record {
            runtime.block_on(record(&session, &config, program, args))
        } else {
            runtime.block_on(replay(&session, &config, program, args))
        };
        runtime.shutdown_background();
        end
    }

    /// The spec of this process's spawn, as a replay matches it: argv, the cwd, the kept
    /// variables' values.
    fn asked(config: &Config, program: &OsStr, args: &[OsString]) -> SpawnSpec {
        let mut spec = SpawnSpec::new(program).args(args);
        for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
            spec = spec.no_child_fd(fd);
        }
        let null = rustix::fs::stat("/dev/null").ok();
        let seen = [
            (
                ChildFd::STDIN,
                rustix::fs::fstat(io::stdin()),
                rustix::termios::isatty(io::stdin()),
            ),
            (
                ChildFd::STDOUT,
                rustix::fs::fstat(io::stdout()),
                rustix::termios::isatty(io::stdout()),
            ),
            (
                ChildFd::STDERR,
                rustix::fs::fstat(io::stderr()),
                rustix::termios::isatty(io::stderr()),
            ),
        ];
        if seen.iter().any(|(_, _, tty)| *tty) {
            spec = spec.use_pty(true);
        }
        {
            for (fd, stat, tty) in seen {
                let Ok(stat) = stat else { continue };
                let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
                let is_null = null
                    .as_ref()
                    .is_some_and(|null| (null.st_dev, null.st_ino) == (stat.st_dev, stat.st_ino));
                let mapping = match kind {
                    _ if tty => ChildFdMapping::Inherit(fd.0 as i32),
                    _ if is_null => ChildFdMapping::Null,
                    rustix::fs::FileType::Fifo | rustix::fs::FileType::Socket => {
                        if fd == ChildFd::STDIN {
                            ChildFdMapping::ParentWrites
                        } else {
                            ChildFdMapping::ParentReads
                        }
                    }
                    _ => ChildFdMapping::Inherit(fd.0 as i32),
                };
                spec = spec.child_fd(fd, mapping);
            }
        }
        if let Ok(cwd) = std::env::current_dir() {
            spec = spec.cwd(cwd);
        }
        for name in config.kept_values.iter().chain(&config.kept_digests) {
            if let Some(value) = std::env::var_os(name) {
                spec = spec.env(name, value);
            }
        }
        spec
    }

    async fn replay(
        session: &SessionDir,
        config: &Config,
        program: OsString,
        args: Vec<OsString>,
    ) -> Result<ShimEnd, String> {
        let mut caught = catch_signals()?;
        let cassette = Cassette::load(&config.cassette).map_err(|err| err.to_string())?;
        catch_recorded_signals(&mut caught, &cassette)?;
        let redactions =
            Redactions::from_parts(&config.redactions).map_err(|err| err.to_string())?;
        let mut rules = MatchRules::exact()
            .ignore_spawn_details()
            .unwaited_ignored_signals();
        if config.lenient_stdin {
            rules = rules.lenient_stdin();
        }
        if config.ignore_cwd {
            rules = rules.ignore_cwd();
        }
        if let Some(pattern) = &config.args_matching {
            rules = rules
                .args_matching(pattern)
                .map_err(|err| err.to_string())?;
        }
        let spec = asked(config, &program, &args);
        let line = spec.command_line();
        let relay = Relay::default();
        let end = relay.end.clone();
        let state_io = |err: io::Error| format!("the session's state: {err}");
        // Matched and claimed under the session's lock; stdin read outside it, when that is
        // what tells the recordings this spawn matches apart.
        let mut early = EarlyStdin::default();
        // Built once, outside the lock: a cassette can be megabytes. What other shims served
        // and bound is added under the lock.
        let mut replay = ReplaySpawner::build(cassette.clone(), rules, redactions)
            .named(config.cassette.display());
        let (mut guard, replay, index) = loop {
            let guard = session.lock_state().map_err(state_io)?;
            replay = replay
                .already_served(guard.state.served.iter().copied())
                .with_bindings(
                    guard
                        .state
                        .bindings
                        .iter()
                        .map(|(name, value)| (name.clone(), value.0.clone()))
                        .collect(),
                );
            let matching = replay.matching(&spec);
            early.learn(&replay, &matching);
            let chosen = match early.choose(&matching) {
                Choice::Take(index) => replay.claim_where(&spec, |other| other == index),
                Choice::Any => replay.claim(&spec),
                Choice::Read => {
                    // Read until the choice is made, then claim under the lock again: another
                    // shim may have taken the chosen one meanwhile.
                    drop(guard);
                    while !early.ended && matches!(early.choose(&matching), Choice::Read) {
                        early.read_more();
                    }
                    continue;
                }
            };
            match chosen {
                Ok(index) => break (guard, replay, index),
                Err(err) => {
                    let mut guard = guard;
                    let why = match err {
                        SpawnError::NotFound(why) => why,
                        other => other.to_string(),
                    };
                    guard.state.unmatched.push(why.clone());
                    guard.save().map_err(state_io)?;
                    eprintln!("process-cassette shim: cannot run {why}");
                    return Ok(ShimEnd::Code(127));
                }
            }
        };
        guard.state.served.extend(with_nested(&cassette, &[index]));
        record_bindings(&mut guard.state, &replay);
        // Saved before the play starts: its first output may bring the signal that ends
        // this process.
        guard.save().map_err(state_io)?;
        if replay.recording(index).pty {
            // The recorded bytes went through a terminal already: this one passes them on
            // as they are, and does not echo again.
            if let Ok(mut modes) = rustix::termios::tcgetattr(io::stdin()) {
                modes.make_raw();
                let _ = rustix::termios::tcsetattr(
                    io::stdin(),
                    rustix::termios::OptionalActions::Now,
                    &modes,
                );
            }
        }
        // Played as a child of the spec the recording has: its fds, its terminal.
        let spawned = replay
            .serve(
                index,
                Box::new(relay),
                played(replay.recording(index), spec),
            )
            .await;
        let transport = match spawned {
            Ok(transport) => transport,
            // A recorded refusal: what a shell says of such a program.
            Err(err) => {
                eprintln!("{}: {err}", program.to_string_lossy());
                return Ok(ShimEnd::Code(match err {
                    SpawnError::PermissionDenied(_) => 126,
                    _ => 127,
                }));
            }
        };
        let reads_stdin = replay.recording(index).fds.get(&0) == Some(&FdKind::ParentWrites);
        if reads_stdin {
            let (transport, end) = (transport.clone(), end.clone());
            std::thread::spawn(move || feed_stdin(&transport, &Mutex::new(false), &end, early));
        }
        let ended = wait_passing_signals_on(&transport, &end, caught).await;
        let failures = replay.take_failures();
        let merged = session.with_state(|state| {
            record_bindings(state, &replay);
            state.failures.extend(failures.iter().cloned());
        });
        merged.map_err(|err| format!("the session's state: {err}"))?;
        if let Some(failure) = failures.first() {
            eprintln!("process-cassette shim: `{line}`: {failure}");
            return Ok(ShimEnd::Code(125));
        }
        ended
            .map(end_of)
            .ok_or_else(|| format!("`{line}`: the replay stopped short of its end"))
    }

    fn record_bindings(state: &mut State, replay: &ReplaySpawner) {
        for (name, value) in replay.bindings() {
            state.bindings.entry(name).or_insert(Bytes(value));
        }
    }

    fn end_of(end: ProcessEnd) -> ShimEnd {
        match (end.signal(), end.exit_code()) {
            (Some(signal), _) => ShimEnd::Signal(signal),
            (None, Some(code)) => ShimEnd::Code(u8::try_from(code.rem_euclid(256)).unwrap_or(1)),
            (None, None) => ShimEnd::Code(1),
        }
    }

    /// What a replaying shim read of its stdin before it chose its recording.
    #[derive(Default)]
    struct EarlyStdin {
        bytes: Vec<u8>,
        ended: bool,
        /// The first input of each recording considered ([`ReplaySpawner::first_input`]),
        /// found once: a recording's first input can be megabytes.
        firsts: BTreeMap<usize, Option<FirstInput>>,
    }

    /// Which recording a shim takes.
    enum Choice {
        /// This one.
        Take(usize),
        /// The first the spawn matches, in cassette order.
        Any,
        /// None yet: the first the input so far fits needs more of it to tell.
        Read,
    }

    impl EarlyStdin {
        /// Chooses among `matching` (recordings of one command, in cassette order): the
        /// first, as an in-process replay would, unless the input so far shows it is not
        /// this spawn's: then the first the input fits. One that needs more input to tell
        /// (what it reads before it does anything its parent can see) waits for it.
        /// Concurrent shims of one command start in any order, so the order of the cassette
        /// alone could give each the other's recording. A spawn the input of no recording
        /// fits takes the first, whose replay then reports how the input differs.
        fn choose(&self, matching: &[usize]) -> Choice {
            if matching.len() < 2 {
                return Choice::Any;
            }
            for index in matching {
                let Some(Some(first)) = self.firsts.get(index) else {
                    return Choice::Any;
                };
                if !first.fits(&self.bytes, self.ended) {
                    continue;
                }
                return match first.got(&self.bytes, self.ended) {
                    true => Choice::Take(*index),
                    false => Choice::Read,
                };
            }
            Choice::Any
        }

        /// Finds the first input of each of `matching` not found yet.
        fn learn(&mut self, replay: &ReplaySpawner, matching: &[usize]) {
            for index in matching {
                self.firsts
                    .entry(*index)
                    .or_insert_with(|| replay.first_input(*index));
            }
        }

        /// Reads what stdin has (waiting for some), or its end.
        fn read_more(&mut self) {
            let mut buffer = vec![0; 64 * 1024];
            match io::stdin().lock().read(&mut buffer) {
                Ok(0) | Err(_) => self.ended = true,
                Ok(read) => self.bytes.extend_from_slice(&buffer[..read]),
            }
        }
    }

    /// Copies this process's stdin to the child's, then closes it, starting with what was
    /// read `early`. A mismatch the replay finds panics inside the write (a fake's misuse
    /// check): it is kept by the replay, the copy stops and `ended` hears of it.
    ///
    /// Each write is made holding `stopped`: setting it (under its lock) waits for a write in
    /// flight and lets no other start, so a recording taken after it holds every write made.
    fn feed_stdin(
        transport: &Arc<dyn ProcessTransport>,
        stopped: &Mutex<bool>,
        ended: &Ended,
        early: EarlyStdin,
    ) {
        let write = |bytes: &[u8]| {
            let stop = lock(stopped);
            if *stop {
                return false;
            }
            let written = misuse_caught(|| transport.write_to_child(ChildFd::STDIN, bytes));
            drop(stop);
            match written {
                Ok(Ok(())) => true,
                Ok(Err(_)) => false,
                Err(_) => {
                    ended.mismatched();
                    false
                }
            }
        };
        if !early.bytes.is_empty() && !write(&early.bytes) {
            return;
        }
        if !early.ended {
            let mut stdin = io::stdin().lock();
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let read = match stdin.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                if !write(&buffer[..read]) {
                    return;
                }
            }
        }
        let stop = lock(stopped);
        if !*stop {
            let closed = misuse_caught(|| transport.close_child_fd(ChildFd::STDIN));
            if closed.is_err() {
                ended.mismatched();
            }
        }
    }

    std::thread_local! {
        static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Runs `call`, catching the panic of a replay's misuse check. The replay keeps what it
    /// found and the shim reports it once, so the panic itself is not printed; any other
    /// panic of this process still is.
    fn misuse_caught<T>(call: impl FnOnce() -> T) -> std::thread::Result<T> {
        static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
        QUIET_HOOK.call_once(|| {
            let printing = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !CATCHING.with(std::cell::Cell::get) {
                    printing(info);
                }
            }));
        });
        CATCHING.with(|catching| catching.set(true));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
        CATCHING.with(|catching| catching.set(false));
        result
    }

    /// The protocol of a shim's child (replayed or real): its output goes to this process's
    /// stdout and stderr as it comes; its end is kept.
    #[derive(Default)]
    struct Relay {
        end: Arc<Ended>,
    }

    #[derive(Default)]
    struct Ended {
        end: Mutex<Option<ProcessEnd>>,
        /// A replay found a mismatch: it plays nothing more, so no end will come.
        mismatch: std::sync::atomic::AtomicBool,
        notify: tokio::sync::Notify,
    }

    impl Ended {
        fn mismatched(&self) {
            self.mismatch
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.notify.notify_waiters();
        }
    }

    impl ProcessProtocol for Relay {
        fn make_connection(&mut self, _transport: Arc<dyn ProcessTransport>) {}

        fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
            let _ = match fd {
                ChildFd::STDERR => io::stderr().write_all(data),
                _ => {
                    let mut stdout = io::stdout().lock();
                    stdout.write_all(data).and_then(|()| stdout.flush())
                }
            };
        }

        /// The child closed one of its standard fds: this process closes its own, so that
        /// the process on the other side sees the end of the pipe as it did (an fd is
        /// closed by putting the null device in its place).
        fn child_connection_lost(&mut self, fd: ChildFd) {
            let Ok(null) = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            else {
                return;
            };
            let _ = match fd {
                ChildFd::STDIN => rustix::stdio::dup2_stdin(&null),
                ChildFd::STDOUT => {
                    let _ = io::stdout().lock().flush();
                    rustix::stdio::dup2_stdout(&null)
                }
                ChildFd::STDERR => rustix::stdio::dup2_stderr(&null),
                _ => Ok(()),
            };
        }

        fn process_ended(&mut self, reason: ProcessEnd) {
            *lock(&self.end.end) = Some(reason);
            self.end.notify.notify_waiters();
        }
    }

    /// The signals a shim passes on, each with the signal it passes, caught from before the
    /// spawn: one that comes while the spawn starts (its first output may already be out) is
    /// kept for [`wait_passing_signals_on`], not taken by its default action, which would
    /// end this process with nothing recorded or claimed.
    type Caught = Vec<(tokio::signal::unix::Signal, Signal)>;

    /// Catches SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGALRM. A
    /// shim does it first, before it loads its cassette, so that a signal sent while it
    /// starts is kept rather than taken by its default action.
    fn catch_signals() -> Result<Caught, String> {
        let mut caught = Caught::new();
        catch_more(
            &mut caught,
            [
                Signal::Int,
                Signal::Term,
                Signal::Hup,
                Signal::Number(libc::SIGQUIT),
                Signal::Number(libc::SIGUSR1),
                Signal::Number(libc::SIGUSR2),
                Signal::Number(libc::SIGWINCH),
                Signal::Number(libc::SIGALRM),
            ],
        )?;
        Ok(caught)
    }

    /// Catches as well every other signal `cassette` shows a protocol sending (a replayed
    /// child waits for those), but SIGKILL and SIGSTOP, which no process can catch and which
    /// act on the shim as on the child.
    fn catch_recorded_signals(caught: &mut Caught, cassette: &Cassette) -> Result<(), String> {
        let recorded = cassette.spawns.iter().flat_map(|recording| {
            recording.events.iter().filter_map(|event| match event {
                crate::Event::Signal { signal } => signal.parse::<Signal>().ok(),
                _ => None,
            })
        });
        catch_more(caught, recorded)
    }

    fn catch_more(
        caught: &mut Caught,
        signals: impl IntoIterator<Item = Signal>,
    ) -> Result<(), String> {
        use tokio::signal::unix::{signal, SignalKind};
        for passed in signals {
            if [libc::SIGKILL, libc::SIGSTOP].contains(&passed.number())
                || caught.iter().any(|(_, known)| *known == passed)
            {
                continue;
            }
            let stream = signal(SignalKind::from_raw(passed.number()))
                .map_err(|err| format!("cannot catch signal {passed}: {err}"))?;
            caught.push((stream, passed));
        }
        Ok(())
    }

    /// The spec a claimed recording is played as: the asked command line and cwd, and the
    /// recording's fd map and terminal, so the fake child has the fds whose ends the
    /// recording shows.
    fn played(recording: &Recording, asked: SpawnSpec) -> SpawnSpec {
        let mut spec = SpawnSpec::new(asked.get_executable()).args(asked.get_args());
        for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
            spec = spec.no_child_fd(fd);
        }
        for (fd, kind) in &recording.fds {
            spec = spec.child_fd(ChildFd(*fd), (*kind).into());
        }
        if recording.pty {
            spec = spec.use_pty(true);
        }
        spec
    }

    /// Waits for the child's end, passing on to it each SIGINT, SIGTERM, SIGHUP and SIGQUIT
    /// this process gets (a replayed child plays the death its recording shows, or dies by
    /// the signal as a real one would).
    async fn wait_passing_signals_on(
        transport: &Arc<dyn ProcessTransport>,
        ended: &Ended,
        mut streams: Caught,
    ) -> Option<ProcessEnd> {
        loop {
            let notified = ended.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(end) = *lock(&ended.end) {
                return Some(end);
            }
            if ended.mismatch.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            let got = std::future::poll_fn(|cx| {
                if notified.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(None);
                }
                for (stream, passed) in &mut streams {
                    if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                        return std::task::Poll::Ready(Some(*passed));
                    }
                }
                std::task::Poll::Pending
            })
            .await;
            if let Some(passed) = got {
                let sent = misuse_caught(|| transport.signal_process(passed));
                if sent.is_err() {
                    ended.mismatched();
                }
            }
        }
    }

    /// The real program named `program`: the first executable of that name on `PATH` that
    /// is not in the shims' directory and is not a shim.
    fn real_program(config: &Config, program: &OsStr) -> Option<PathBuf> {
        let name = Path::new(program).file_name()?;
        let own = std::env::current_exe()
            .ok()
            .and_then(|exe| fs::canonicalize(exe).ok());
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .filter(|dir| dir != &config.shims)
            .map(|dir| dir.join(name))
            .filter(|candidate| is_executable(candidate))
            .find(|candidate| fs::canonicalize(candidate).ok() != own)
    }

    async fn record(
        session: &SessionDir,
        config: &Config,
        program: OsString,
        args: Vec<OsString>,
    ) -> Result<ShimEnd, String> {
        let state_io = |err: io::Error| format!("the session's state: {err}");
        let number = session
            .with_state(|state| {
                state.next += 1;
                state.next - 1
            })
            .map_err(state_io)?;
        let within = std::env::var(WITHIN_VARIABLE)
            .ok()
            .and_then(|text| text.parse().ok());
        let asked = asked(config, &program, &args);
        let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()))
            .redacting(Redactions::none())
            .keep_env_values(config.kept_values.clone())
            .keep_env_digests(config.kept_digests.clone());
        let end = match real_program(config, &program) {
            None => {
                let err = SpawnError::NotFound(program.to_string_lossy().into_owned());
                let mut recording = Recording::of(&asked);
                recording.refused = Some(crate::Refusal::of(&err));
                keep(session, number, within, recording).map_err(state_io)?;
                eprintln!("{}: command not found", program.to_string_lossy());
                return Ok(ShimEnd::Code(127));
            }
            Some(real) => {
                let mut spec = SpawnSpec::new(&real)
                    .args(&args)
                    .arg0(&program)
                    .env(WITHIN_VARIABLE, number.to_string());
                for (name, value) in asked.get_env().vars() {
                    if let Some(value) = value {
                        spec = spec.env(name, value);
                    }
                }
                let relay = Relay::default();
                let ended = relay.end.clone();
                let caught = catch_signals()?;
                let transport = recorder
                    .spawn_process(Box::new(relay), spec)
                    .await
                    .map_err(|err| err.to_string())?;
                let stopped = Arc::new(Mutex::new(false));
                {
                    let (transport, stopped) = (transport.clone(), stopped.clone());
                    let ended = ended.clone();
                    std::thread::spawn(move || {
                        feed_stdin(&transport, &stopped, &ended, EarlyStdin::default())
                    });
                }
                let end = wait_passing_signals_on(&transport, &ended, caught).await;
                // A write still returning would be left out of the recording.
                *lock(&stopped) = true;
                end
            }
        };
        let mut recording = recorder
            .cassette()
            .spawns
            .pop()
            .ok_or("the spawn was not recorded")?;
        // As the code under test asked for it: the name it ran, its cwd.
        let asked_recording = Recording::of(&asked);
        recording.command = asked_recording.command;
        recording.command_bytes = asked_recording.command_bytes;
        recording.cwd = asked_recording.cwd;
        recording.arg0 = None;
        recording.env = Vec::new();
        // The fds as the code under test gave them; a terminal or a file was pumped as a
        // pipe.
        recording.fds = asked_recording
            .fds
            .iter()
            .map(|(fd, kind)| match kind {
                FdKind::Inherit(_) if *fd == 0 => (*fd, FdKind::ParentWrites),
                FdKind::Inherit(_) => (*fd, FdKind::ParentReads),
                kind => (*fd, *kind),
            })
            .collect();
        keep(session, number, within, recording).map_err(state_io)?;
        end.map(end_of)
            .ok_or_else(|| "the recorded program's end was not seen".to_owned())
    }

    fn keep(
        session: &SessionDir,
        number: u64,
        within: Option<u64>,
        recording: Recording,
    ) -> io::Result<()> {
        session.with_state(|state| {
            state.recorded.push(Taken {
                number,
                within,
                recording,
            })
        })
    }
}
