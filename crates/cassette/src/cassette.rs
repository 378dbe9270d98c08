//! The cassette file: what was recorded, as stable, diffable JSON.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use process_transport_api::{ChildFdMapping, ProcessEnd, SpawnError, SpawnSpec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{Framing, Placeholder};

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes as they cross a pipe: stored as text when they are UTF-8, as base64 otherwise.
///
/// ```
/// use process_transport_cassette::Bytes;
///
/// assert_eq!(serde_json::to_string(&Bytes::from(&b"hi\n"[..])).unwrap(), r#""hi\n""#);
/// assert_eq!(serde_json::to_string(&Bytes::from(&[0xff, 0][..])).unwrap(), r#"{"base64":"/wA="}"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl From<&[u8]> for Bytes {
    fn from(data: &[u8]) -> Self {
        Bytes(data.to_vec())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BytesRepr {
    Text(String),
    Base64 { base64: String },
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(
                    "base64",
                    &base64::engine::general_purpose::STANDARD.encode(&self.0),
                )?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match BytesRepr::deserialize(deserializer)? {
            BytesRepr::Text(text) => Ok(Bytes(text.into_bytes())),
            BytesRepr::Base64 { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map(Bytes)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// What one child fd was connected to, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    /// A pipe the parent read.
    ParentReads,
    /// A pipe the parent wrote.
    ParentWrites,
    /// A parent fd, inherited.
    Inherit(i32),
    /// The null device.
    Null,
}

impl From<ChildFdMapping> for FdKind {
    fn from(mapping: ChildFdMapping) -> Self {
        match mapping {
            ChildFdMapping::ParentReads => FdKind::ParentReads,
            ChildFdMapping::ParentWrites => FdKind::ParentWrites,
            ChildFdMapping::Inherit(fd) => FdKind::Inherit(fd),
            ChildFdMapping::Null => FdKind::Null,
        }
    }
}

impl From<FdKind> for ChildFdMapping {
    fn from(kind: FdKind) -> Self {
        match kind {
            FdKind::ParentReads => ChildFdMapping::ParentReads,
            FdKind::ParentWrites => ChildFdMapping::ParentWrites,
            FdKind::Inherit(fd) => ChildFdMapping::Inherit(fd),
            FdKind::Null => ChildFdMapping::Null,
        }
    }
}

/// One thing that crossed a recorded transport, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The protocol wrote `data` to child fd `fd` (and the transport took it).
    Write {
        /// The child fd.
        fd: u32,
        /// The bytes.
        data: Bytes,
    },
    /// The protocol closed child fd `fd`.
    Close {
        /// The child fd.
        fd: u32,
    },
    /// The protocol signalled the child, and the transport took the signal.
    Signal {
        /// The signal, as `Signal`'s `Display` gives it.
        signal: String,
    },
    /// The protocol resized the child's pseudo-terminal.
    Resize {
        /// Lines.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// The protocol paused reading.
    Pause,
    /// The protocol resumed reading.
    Resume,
    /// The child wrote `data` on fd `fd`.
    Output {
        /// The child fd.
        fd: u32,
        /// The bytes.
        data: Bytes,
    },
    /// Child fd `fd` was reported lost.
    Lost {
        /// The child fd.
        fd: u32,
    },
    /// The child exited.
    Exited {
        /// The exit code, when it exited by itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// The signal that ended it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
}

impl Event {
    /// The end an `Exited` event records; `None` for any other event.
    pub fn end(&self) -> Option<ProcessEnd> {
        let Event::Exited { code, signal } = *self else {
            return None;
        };
        Some(match (code, signal) {
            (_, Some(signal)) => ProcessEnd::from_signal(signal),
            (Some(code), None) => ProcessEnd::from_exit_code(code),
            (None, None) => ProcessEnd::Terminated {
                exit_code: None,
                signal: None,
            },
        })
    }

    /// The `Exited` event of `end`.
    pub fn exited(end: ProcessEnd) -> Self {
        let code = match end {
            ProcessEnd::Done => Some(0),
            ProcessEnd::Terminated { exit_code, .. } => exit_code,
        };
        Event::Exited {
            code,
            signal: end.signal(),
        }
    }
}

/// One recorded spawn: what was asked for and everything that crossed its transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// The executable, then the arguments, as text (a word that is not UTF-8 is shown
    /// lossily here and kept exactly in [`command_bytes`](Self::command_bytes)).
    pub command: Vec<String>,
    /// The executable and the arguments exactly, when one of them is not UTF-8 (`None`
    /// otherwise); a replay matches these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_bytes: Option<Vec<Bytes>>,
    /// The working directory the spec set, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The names of the environment variables the spec set (values are never stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The values of the variables whose values the recorder was asked to keep
    /// ([`RecordingSpawner::keep_env_values`](crate::RecordingSpawner::keep_env_values)),
    /// redacted; a replay matches them too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_values: BTreeMap<String, String>,
    /// Digests (`sha256:` and the hex of the value's SHA-256) of the variables whose values
    /// are secret but must match
    /// ([`RecordingSpawner::keep_env_digests`](crate::RecordingSpawner::keep_env_digests)); a
    /// replay matches the digest of the live value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_digests: BTreeMap<String, String>,
    /// Whether the spec cleared the environment (`env_clear`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub env_cleared: bool,
    /// The names of the variables the spec removed (`env_remove`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_removed: Vec<String>,
    /// The user id the spec asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The group id the spec asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The process group the spec put the child in (`process_group`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_group: Option<i32>,
    /// The `argv[0]` the spec gave the child apart from the executable (`arg0`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg0: Option<String>,
    /// How many pre-exec hooks the spec set: recorded, not matched (a hook cannot be
    /// compared), and never run by a replay.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pre_exec: usize,
    /// The child fd map.
    pub fds: BTreeMap<u32, FdKind>,
    /// Whether a pseudo-terminal was asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pty: bool,
    /// The terminal size the spec asked for, if it set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty_size: Option<TerminalSize>,
    /// The spawn (by its place in the cassette) whose program started this one, when shims
    /// on `PATH` recorded both ([`Shims`](crate::Shims)): a replay serves it with that spawn,
    /// since the program that started it is not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<usize>,
    /// What crossed the transport, in order.
    pub events: Vec<Event>,
    /// Why the spawn failed, when it did: a replay fails the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// A terminal size as a cassette stores it: lines and columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    /// Lines.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Why a recorded spawn failed: a [`SpawnError`], as a cassette stores it.
///
/// ```
/// use process_transport_api::SpawnError;
/// use process_transport_cassette::Refusal;
///
/// let refusal = Refusal::of(&SpawnError::NotFound("no-such-tool".into()));
/// assert!(matches!(refusal.error(), SpawnError::NotFound(exe) if exe == "no-such-tool"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum Refusal {
    /// `SpawnError::NotFound`, with the executable.
    NotFound(String),
    /// `SpawnError::PermissionDenied`, with the executable.
    PermissionDenied(String),
    /// `SpawnError::InvalidSpec`, with its text.
    InvalidSpec(String),
    /// `SpawnError::Io`, with the OS error number when there was one, and the text.
    Io {
        /// The OS error number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errno: Option<i32>,
        /// The error's text.
        message: String,
    },
    /// Any other error, with its text.
    Other(String),
}

impl Refusal {
    /// How `err` is stored.
    pub fn of(err: &SpawnError) -> Self {
        match err {
            SpawnError::NotFound(exe) => Refusal::NotFound(exe.clone()),
            SpawnError::PermissionDenied(exe) => Refusal::PermissionDenied(exe.clone()),
            SpawnError::InvalidSpec(text) => Refusal::InvalidSpec(text.clone()),
            SpawnError::Io(err) => Refusal::Io {
                errno: err.raw_os_error(),
                message: err.to_string(),
            },
            other => Refusal::Other(other.to_string()),
        }
    }

    /// The error a replay gives: the recorded one.
    pub fn error(&self) -> SpawnError {
        match self {
            Refusal::NotFound(exe) => SpawnError::NotFound(exe.clone()),
            Refusal::PermissionDenied(exe) => SpawnError::PermissionDenied(exe.clone()),
            Refusal::InvalidSpec(text) => SpawnError::InvalidSpec(text.clone()),
            Refusal::Io {
                errno: Some(errno), ..
            } => SpawnError::Io(io::Error::from_raw_os_error(*errno)),
            Refusal::Io { message, .. } | Refusal::Other(message) => {
                SpawnError::Io(io::Error::other(message.clone()))
            }
        }
    }
}

impl Recording {
    /// A recording of `spec` with no events yet.
    pub fn of(spec: &SpawnSpec) -> Self {
        let lossy = |text: &std::ffi::OsStr| text.to_string_lossy().into_owned();
        let words = || {
            std::iter::once(spec.get_executable())
                .chain(spec.get_args().iter().map(|arg| arg.as_os_str()))
        };
        let exact = words().any(|word| word.to_str().is_none()).then(|| {
            words()
                .map(|word| Bytes(word.as_encoded_bytes().to_vec()))
                .collect()
        });
        // The names of the variables the spec sets (`true`) or removes (`false`).
        let names = |set: bool| {
            spec.get_env()
                .vars()
                .filter(|(_, value)| value.is_some() == set)
                .map(|(name, _)| lossy(name))
                .collect()
        };
        Recording {
            command: words().map(lossy).collect(),
            command_bytes: exact,
            cwd: spec.get_cwd().map(|cwd| lossy(cwd.as_os_str())),
            env: names(true),
            env_values: BTreeMap::new(),
            env_digests: BTreeMap::new(),
            env_cleared: !spec.get_env().inherits(),
            env_removed: names(false),
            uid: spec.get_uid(),
            gid: spec.get_gid(),
            process_group: spec.get_process_group(),
            arg0: spec.get_arg0().map(lossy),
            pre_exec: spec.get_pre_exec().len(),
            fds: spec
                .get_child_fds()
                .iter()
                .map(|(fd, mapping)| (fd.0, FdKind::from(*mapping)))
                .collect(),
            pty: spec.get_use_pty(),
            pty_size: spec.get_pty_size().map(|size| TerminalSize {
                rows: size.rows,
                cols: size.cols,
            }),
            within: None,
            events: Vec::new(),
            refused: None,
        }
    }

    /// The command line, words joined by spaces.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }
}

/// A cassette: the recordings of every spawn, in spawn order, with the format version.
///
/// ```
/// use process_transport_cassette::{Cassette, Event, Recording};
/// use process_transport_api::SpawnSpec;
///
/// let mut recording = Recording::of(&SpawnSpec::new("echo").arg("hi"));
/// recording.events.push(Event::Output { fd: 1, data: (&b"hi\n"[..]).into() });
/// let cassette = Cassette::new(vec![recording]);
/// let text = cassette.to_json();
/// assert_eq!(Cassette::from_json(&text, "inline").unwrap(), cassette);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cassette {
    /// The format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The placeholders of volatile values ([`Redactions::pattern`](crate::Redactions::pattern))
    /// the recordings hold, by name, each with its pattern.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placeholders: BTreeMap<String, Placeholder>,
    /// How the streams' messages are framed, when the recording kept their length headers
    /// true ([`Redactions::framed_by_content_length`](crate::Redactions::framed_by_content_length)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framing: Option<Framing>,
    /// The spawns, in the order they started.
    pub spawns: Vec<Recording>,
}

/// Why a cassette could not be read or written. Every message names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CassetteError {
    /// There is no file at the path.
    #[error("cassette {path}: no such file")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read or written.
    #[error("cassette {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is not a cassette: not JSON, truncated, or of the wrong shape.
    #[error("cassette {path}: line {line}, column {column}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where the reading stopped.
        line: usize,
        /// Where the reading stopped.
        column: usize,
        /// What was wrong there.
        message: String,
    },
    /// The file is a cassette of a format version this crate does not read.
    #[error(
        "cassette {path}: format version {found}, but this crate reads version {FORMAT_VERSION}"
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
    },
    /// The mode variable has a value that is not `record`, `replay`, `verify` or `auto`.
    #[error(
        "cassette {path}: PROCESS_CASSETTE={value:?} is not a mode; use record, replay, verify or auto"
    )]
    BadMode {
        /// The file.
        path: PathBuf,
        /// The variable's value.
        value: String,
    },
    /// A replay ended with recorded spawns never served.
    #[error("cassette {path}: recorded spawns never served: {}", commands.join(", "))]
    Unused {
        /// The file.
        path: PathBuf,
        /// Their command lines.
        commands: Vec<String>,
    },
    /// A replay found input that differs from the recording (on any task or thread).
    #[error("cassette {path}: the replay found input that differs from the recording: {}", failures.join("; "))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Each mismatch, as its panic said it.
        failures: Vec<String>,
    },
    /// Spawns through shims found no recording ([`Shims`](crate::Shims)).
    #[error("cassette {path}: spawns no recording matched: {}", spawns.join("; "))]
    Unmatched {
        /// The file.
        path: PathBuf,
        /// What each shim said of its spawn.
        spawns: Vec<String>,
    },
    /// A replay ended with served recordings that still waited for the protocol.
    #[error("cassette {path}: the replay ended before the recording did: {}", waits.join("; "))]
    Stalled {
        /// The file.
        path: PathBuf,
        /// What each spawn still waited for.
        waits: Vec<String>,
    },
    /// A verified cassette no longer holds what the programs do: the report, a diff per spawn.
    #[error("cassette {path}: the recording no longer holds what the programs do:\n{report}")]
    Stale {
        /// The file.
        path: PathBuf,
        /// The verifier's report ([`Verification`](crate::Verification)'s `Display`).
        report: String,
    },
    /// A pattern of volatile values, given to a [`Session`](crate::Session) or stored in the
    /// file, cannot be used.
    #[error("cassette {path}: {error}")]
    BadPattern {
        /// The file.
        path: PathBuf,
        /// What is wrong with the pattern.
        error: crate::PatternError,
    },
    /// The path is a directory (or another thing that is not a regular file).
    #[error("cassette {path}: is a directory, not a file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The path is a symbolic link, which a cassette is never written through.
    #[error("cassette {path}: is a symbolic link; cassettes are never written through one")]
    Symlink {
        /// The file.
        path: PathBuf,
    },
}

impl Cassette {
    /// A cassette of `spawns`, of the current format version.
    pub fn new(spawns: Vec<Recording>) -> Self {
        Cassette {
            version: FORMAT_VERSION,
            placeholders: BTreeMap::new(),
            framing: None,
            spawns,
        }
    }

    /// The cassette as pretty-printed JSON with a final newline: the same cassette always gives
    /// the same bytes.
    pub fn to_json(&self) -> String {
        let mut json = Vec::new();
        write_json(&mut json, self).expect("a cassette always serializes");
        String::from_utf8(json).expect("JSON is UTF-8")
    }

    /// The transcript: a line per placeholder of a volatile value (with its pattern) and for
    /// the framing, if any; then one line per spawn and per event, bytes escaped as in a Rust
    /// byte string.
    ///
    /// ```
    /// use process_transport_cassette::{Cassette, Event, Recording};
    /// use process_transport_api::SpawnSpec;
    ///
    /// let mut recording = Recording::of(&SpawnSpec::new("cat"));
    /// recording.events = vec![
    ///     Event::Write { fd: 0, data: (&b"hi\n"[..]).into() },
    ///     Event::Output { fd: 1, data: (&b"hi\n"[..]).into() },
    ///     Event::Exited { code: Some(0), signal: None },
    /// ];
    /// assert_eq!(
    ///     Cassette::new(vec![recording]).transcript(),
    ///     "spawn 0: cat\n  -> fd 0: b\"hi\\n\"\n  <- fd 1: b\"hi\\n\"\n  exited: code 0\n"
    /// );
    /// ```
    pub fn transcript(&self) -> String {
        let mut text = String::new();
        for (name, placeholder) in &self.placeholders {
            text.push_str(&format!(
                "placeholder {name}: pattern `{}`\n",
                placeholder.pattern
            ));
        }
        if let Some(Framing::ContentLength) = self.framing {
            text.push_str("framing: content-length\n");
        }
        for (index, recording) in self.spawns.iter().enumerate() {
            text.push_str(&format!("spawn {index}: {}\n", recording.command_line()));
            if let Some(refusal) = &recording.refused {
                text.push_str(&format!("  refused: {}\n", refusal.error()));
            }
            for event in &recording.events {
                let line = match event {
                    Event::Write { fd, data } => format!("-> fd {fd}: {}", escaped(&data.0)),
                    Event::Close { fd } => format!("-> close fd {fd}"),
                    Event::Signal { signal } => format!("-> signal {signal}"),
                    Event::Resize { rows, cols } => format!("-> resize {rows}x{cols}"),
                    Event::Pause => "-> pause".into(),
                    Event::Resume => "-> resume".into(),
                    Event::Output { fd, data } => format!("<- fd {fd}: {}", escaped(&data.0)),
                    Event::Lost { fd } => format!("<- lost fd {fd}"),
                    Event::Exited { code, signal } => match (code, signal) {
                        (_, Some(signal)) => format!("exited: signal {signal}"),
                        (Some(code), None) => format!("exited: code {code}"),
                        (None, None) => "exited: unknown".into(),
                    },
                };
                text.push_str(&format!("  {line}\n"));
            }
        }
        text
    }

    /// Reads a cassette from JSON text; `origin` names it in errors.
    ///
    /// # Errors
    /// `Malformed` with the line and column, or `UnknownVersion`.
    pub fn from_json(text: &str, origin: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = origin.as_ref().to_owned();
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| malformed(&path, &err))?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(found) if found != u64::from(FORMAT_VERSION) => {
                return Err(CassetteError::UnknownVersion { path, found });
            }
            _ => {}
        }
        let cassette: Cassette =
            serde_json::from_str(text).map_err(|err| malformed(&path, &err))?;
        for (name, placeholder) in &cassette.placeholders {
            crate::volatile::Pattern::new(&placeholder.pattern, name).map_err(|err| {
                CassetteError::BadPattern {
                    path: path.clone(),
                    error: err,
                }
            })?;
        }
        Ok(cassette)
    }

    /// Loads the cassette at `path`.
    ///
    /// # Errors
    /// `Missing`, `Io`, `Malformed` or `UnknownVersion`, each naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => CassetteError::Missing {
                path: path.to_owned(),
            },
            _ => CassetteError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        Self::from_json(&text, path)
    }

    /// Saves the cassette at `path`, atomically: it is written to a new file (mode 0600) beside
    /// it and renamed over it, so a crash never leaves half a cassette. A symbolic link at
    /// `path` is refused, never followed.
    ///
    /// # Errors
    /// As [`SaveTarget::open`], or `Io` naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CassetteError> {
        self.save_to(SaveTarget::open(path)?)
    }

    /// Saves the cassette at a target opened earlier ([`SaveTarget::open`]).
    ///
    /// # Errors
    /// `Io` naming the file.
    pub fn save_to(&self, target: SaveTarget) -> Result<(), CassetteError> {
        target.save_with(|file| write_json(file, self))
    }
}

/// Writes `cassette` (a [`Cassette`], or a view of one with the same fields) as the file
/// holds it: pretty-printed JSON and a final newline.
pub(crate) fn write_json(writer: &mut impl Write, cassette: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *writer, cassette)?;
    writer.write_all(b"\n")
}

/// Where a cassette will be saved, checked and opened before anything is recorded: the
/// path is not a symbolic link (dangling or not) nor a directory, and a private temporary
/// file beside it is open. [`Cassette::save`] and [`RecordingSpawner::save`] make one and
/// write it at once; a tool that runs a command to record it makes one first, so that a
/// cassette that cannot be written is reported before the command runs, not after.
///
/// [`RecordingSpawner::save`]: crate::RecordingSpawner::save
///
/// ```
/// use process_transport_cassette::{Cassette, CassetteError, SaveTarget};
///
/// let dir = std::env::temp_dir().join(format!("save-target-doc-{}", std::process::id()));
/// let err = SaveTarget::open(dir.join("absent").join("run.json")).unwrap_err();
/// assert!(matches!(err, CassetteError::Io { .. }));
///
/// std::fs::create_dir_all(&dir).unwrap();
/// let target = SaveTarget::open(dir.join("run.json")).unwrap();
/// Cassette::new(Vec::new()).save_to(target).unwrap();
/// assert!(Cassette::load(dir.join("run.json")).unwrap().spawns.is_empty());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct SaveTarget {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl SaveTarget {
    /// Checks `path` and opens a temporary file (mode 0600, a name no other save uses) in its
    /// directory. Nothing is written at `path` until the target is saved to; a target dropped
    /// unsaved removes its temporary file.
    ///
    /// # Errors
    /// `Symlink` for a symbolic link at `path`, `NotAFile` for a directory there, `Io`
    /// (naming the directory) when the temporary file cannot be made.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(CassetteError::Symlink {
                    path: path.to_owned(),
                })
            }
            Ok(meta) if meta.is_dir() => {
                return Err(CassetteError::NotAFile {
                    path: path.to_owned(),
                })
            }
            _ => {}
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cassette".into());
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // O_EXCL never follows a link; the last rename of concurrent saves wins.
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|err| CassetteError::Io {
                path: path.to_owned(),
                source: io::Error::new(
                    err.kind(),
                    format!("cannot create a temporary file in {}: {err}", dir.display()),
                ),
            })?;
        Ok(SaveTarget {
            path: path.to_owned(),
            temp,
        })
    }

    /// The cassette's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lets `write` fill the temporary file, syncs it and renames it over the path, so a
    /// crash never leaves half a file.
    pub(crate) fn save_with(
        self,
        write: impl FnOnce(&mut io::BufWriter<tempfile::NamedTempFile>) -> io::Result<()>,
    ) -> Result<(), CassetteError> {
        let SaveTarget { path, temp } = self;
        let temp_path = temp.path().to_owned();
        let in_temp = |err: io::Error| CassetteError::Io {
            path: path.clone(),
            source: io::Error::new(
                err.kind(),
                format!("writing {}: {err}", temp_path.display()),
            ),
        };
        let mut writer = io::BufWriter::with_capacity(1 << 20, temp);
        write(&mut writer).map_err(in_temp)?;
        let temp = writer
            .into_inner()
            .map_err(|err| in_temp(err.into_error()))?;
        temp.as_file().sync_all().map_err(in_temp)?;
        // On failure the temporary file is removed as it drops.
        temp.persist(&path).map_err(|err| CassetteError::Io {
            path: path.clone(),
            source: err.error,
        })?;
        Ok(())
    }
}

fn malformed(path: &Path, err: &serde_json::Error) -> CassetteError {
    CassetteError::Malformed {
        path: path.to_owned(),
        line: err.line(),
        column: err.column(),
        message: err.to_string(),
    }
}

/// `data` as a Rust byte-string literal.
pub(crate) fn escaped(data: &[u8]) -> String {
    let inner: String = data
        .iter()
        .flat_map(|&byte| std::ascii::escape_default(byte))
        .map(char::from)
        .collect();
    format!("b\"{inner}\"")
}
