//! What to start: [`SpawnSpec`] and its child fd map.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::{ChildFd, SpawnError};

/// What one child fd is connected to.
///
/// ```
/// use process_transport_api::ChildFdMapping;
///
/// assert!(ChildFdMapping::ParentWrites.is_pipe());
/// assert!(!ChildFdMapping::Inherit(5).is_pipe());
/// assert!(!ChildFdMapping::Null.is_pipe());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildFdMapping {
    /// A pipe the child writes and the parent reads (Twisted's `"r"`).
    ParentReads,
    /// A pipe the parent writes and the child reads (Twisted's `"w"`).
    ParentWrites,
    /// The parent's own fd with this number, inherited by the child as is.
    Inherit(i32),
    /// The null device: reads see end of file at once, writes are accepted and discarded
    /// (`std::process::Stdio::null()`). The real transport opens `/dev/null` for it; the fakes
    /// give the child an fd that is empty to read and swallows what is written. Like an
    /// inherited fd, it is not a pipe: it has no events and the parent cannot write to it.
    Null,
}

impl ChildFdMapping {
    /// `true` for the two pipe kinds, whose ends the transport owns and reports.
    pub fn is_pipe(self) -> bool {
        matches!(
            self,
            ChildFdMapping::ParentReads | ChildFdMapping::ParentWrites
        )
    }
}

/// The child's environment: the parent's, with changes, or exactly a given map.
///
/// ```
/// use process_transport_api::SpawnSpec;
///
/// let spec = SpawnSpec::new("env").env("A", "1").env_remove("HOME");
/// assert!(spec.get_env().inherits());
/// let exact = SpawnSpec::new("env").env_clear().env("A", "1");
/// assert!(!exact.get_env().inherits());
/// assert_eq!(exact.get_env().vars().count(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Environment {
    cleared: bool,
    vars: BTreeMap<OsString, Option<OsString>>,
}

impl Environment {
    /// `true` when the child starts from the parent's environment (the default, as with
    /// `std::process::Command`).
    pub fn inherits(&self) -> bool {
        !self.cleared
    }

    /// The variables set (`Some`) or removed (`None`) on top of the starting environment.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, Option<&OsStr>)> {
        self.vars
            .iter()
            .map(|(key, value)| (key.as_os_str(), value.as_deref()))
    }

    /// The environment the child gets when the parent's is `parent`.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// let spec = SpawnSpec::new("env").env("B", "2").env_remove("A");
    /// let parent = [("A".into(), "1".into()), ("C".into(), "3".into())];
    /// let child = spec.get_env().resolve(parent);
    /// assert_eq!(child.len(), 2);
    /// assert_eq!(child[&std::ffi::OsString::from("B")], "2");
    /// ```
    pub fn resolve(
        &self,
        parent: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> BTreeMap<OsString, OsString> {
        let mut env: BTreeMap<OsString, OsString> = if self.cleared {
            BTreeMap::new()
        } else {
            parent.into_iter().collect()
        };
        for (key, value) in &self.vars {
            match value {
                Some(value) => env.insert(key.clone(), value.clone()),
                None => env.remove(key),
            };
        }
        env
    }
}

/// Everything needed to start one child process; a builder in the manner of
/// `std::process::Command`.
///
/// Arguments exclude argv\[0\]. The environment is inherited unless [`env_clear`](Self::env_clear)
/// is called. The default fd map connects fd 0 to a pipe the parent writes and fds 1 and 2 to
/// pipes the parent reads; [`child_fd`](Self::child_fd) changes or adds entries and
/// [`no_child_fd`](Self::no_child_fd) removes one.
///
/// ```
/// use process_transport_api::{ChildFd, ChildFdMapping, SpawnSpec};
///
/// let spec = SpawnSpec::new("sort")
///     .arg("-r")
///     .args(["-k", "2"])
///     .env("LC_ALL", "C")
///     .cwd("/tmp")
///     .child_fd(ChildFd(3), ChildFdMapping::ParentReads);
/// assert_eq!(spec.get_executable(), "sort");
/// assert_eq!(spec.get_args(), ["-r", "-k", "2"]);
/// assert_eq!(spec.get_child_fds()[&ChildFd::STDIN], ChildFdMapping::ParentWrites);
/// assert_eq!(spec.get_child_fds().len(), 4);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnSpec {
    executable: OsString,
    args: Vec<OsString>,
    env: Environment,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    use_pty: bool,
    pty_size: Option<PtySize>,
    child_fds: BTreeMap<ChildFd, ChildFdMapping>,
    process_group: Option<i32>,
    arg0: Option<OsString>,
    pre_exec: Vec<PreExec>,
    /// The indices into `args` of the arguments given with [`raw_arg`](Self::raw_arg).
    raw_args: BTreeSet<usize>,
    creation_flags: u32,
}

/// A hook run in the child between fork and exec, given to [`SpawnSpec::pre_exec`].
///
/// Clones share the one hook; two specs are equal when they hold the same hooks. A spawner
/// that runs no process (a fake, a replay) only records that the hook was set.
#[derive(Clone)]
pub struct PreExec(Arc<Mutex<Hook>>);

type Hook = Box<dyn FnMut() -> std::io::Result<()> + Send>;

impl PreExec {
    /// Runs the hook. Meant for the forked child before its exec, where the process is a
    /// single thread: the lock is never held there by anyone else, and is only tried, so a
    /// call from two threads at once fails instead of waiting.
    ///
    /// # Errors
    /// The hook's own error, or `WouldBlock` when another call is running it.
    pub fn run(&self) -> std::io::Result<()> {
        match self.0.try_lock() {
            Ok(mut hook) => hook(),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => (poisoned.into_inner())(),
            Err(std::sync::TryLockError::WouldBlock) => Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the pre_exec hook is running on another thread",
            )),
        }
    }
}

impl PartialEq for PreExec {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PreExec {}

impl std::fmt::Debug for PreExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreExec")
    }
}

/// The size of a pseudo-terminal, in character cells: what `stty size` prints as
/// `rows cols`, and what a child is told by `SIGWINCH` when it changes.
///
/// ```
/// use process_transport_api::PtySize;
///
/// assert_eq!(PtySize::default(), PtySize::new(24, 80));
/// assert_eq!(PtySize::new(40, 120).to_string(), "40x120");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PtySize {
    /// Lines.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl PtySize {
    /// A size of `rows` lines by `cols` columns.
    pub const fn new(rows: u16, cols: u16) -> Self {
        PtySize { rows, cols }
    }
}

/// 24 lines by 80 columns, the size of a classic terminal.
impl Default for PtySize {
    fn default() -> Self {
        PtySize::new(24, 80)
    }
}

impl std::fmt::Display for PtySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

impl SpawnSpec {
    /// A spec that runs `executable` with no arguments, the parent's environment and working
    /// directory, and the default fd map. A bare name is looked up in `PATH` by the spawner.
    pub fn new(executable: impl AsRef<OsStr>) -> Self {
        SpawnSpec {
            executable: executable.as_ref().to_owned(),
            args: Vec::new(),
            env: Environment::default(),
            cwd: None,
            uid: None,
            gid: None,
            use_pty: false,
            pty_size: None,
            child_fds: BTreeMap::from([
                (ChildFd::STDIN, ChildFdMapping::ParentWrites),
                (ChildFd::STDOUT, ChildFdMapping::ParentReads),
                (ChildFd::STDERR, ChildFdMapping::ParentReads),
            ]),
            process_group: None,
            arg0: None,
            pre_exec: Vec::new(),
            raw_args: BTreeSet::new(),
            creation_flags: 0,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments, in order.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets one environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .vars
            .insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Removes one inherited environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.vars.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts the child from an empty environment, so that it gets exactly the variables
    /// set with [`env`](Self::env) (Twisted's behaviour).
    pub fn env_clear(mut self) -> Self {
        self.env.cleared = true;
        self.env.vars.clear();
        self
    }

    /// Sets the child's working directory.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Runs the child as this user id.
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Runs the child as this group id.
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Puts the child in the process group `pgid` (`setpgid`): 0 makes a new group led by
    /// the child, as `std::os::unix::process::CommandExt::process_group` does.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// assert_eq!(SpawnSpec::new("make").process_group(0).get_process_group(), Some(0));
    /// assert_eq!(SpawnSpec::new("make").get_process_group(), None);
    /// ```
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.process_group = Some(pgid);
        self
    }

    /// Gives the child `arg0` as its `argv[0]` instead of the executable's name (the
    /// executable is still the one run), as `CommandExt::arg0`.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// let spec = SpawnSpec::new("/bin/busybox").arg0("ls");
    /// assert_eq!(spec.get_arg0().map(|a| a.to_str()), Some(Some("ls")));
    /// assert_eq!(spec.command_line(), "/bin/busybox");
    /// ```
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Adds an argument that Windows gets exactly as given, with no quoting or escaping
    /// (std's `CommandExt::raw_arg` on Windows). Elsewhere, and in what fakes and cassettes
    /// see, it is an argument like any other.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// let spec = SpawnSpec::new("cmd.exe").arg("/c").raw_arg("\"echo \"hi\"\"");
    /// assert_eq!(spec.get_args().len(), 2);
    /// assert!(!spec.is_raw_arg(0));
    /// assert!(spec.is_raw_arg(1));
    /// ```
    pub fn raw_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.raw_args.insert(self.args.len());
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Whether argument `index` (from 0, after the executable) was given with
    /// [`raw_arg`](Self::raw_arg).
    pub fn is_raw_arg(&self, index: usize) -> bool {
        self.raw_args.contains(&index)
    }

    /// Sets the process creation flags of a Windows child (`CreateProcess`'s
    /// `dwCreationFlags`, std's `CommandExt::creation_flags`). A unix real spawner refuses a
    /// spec with flags set, naming them; fakes and cassettes record them.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    /// let spec = SpawnSpec::new("tool.exe").creation_flags(CREATE_NO_WINDOW);
    /// assert_eq!(spec.get_creation_flags(), CREATE_NO_WINDOW);
    /// ```
    pub fn creation_flags(mut self, flags: u32) -> Self {
        self.creation_flags = flags;
        self
    }

    /// The Windows process creation flags; 0 unless [`creation_flags`](Self::creation_flags)
    /// set them.
    pub fn get_creation_flags(&self) -> u32 {
        self.creation_flags
    }

    /// Adds a hook the child runs after fork, once its fds and working directory are in
    /// place, before exec, as `CommandExt::pre_exec`; hooks run in the order added. A real
    /// spawner runs them (on the fork path); fakes and replays record that they were set
    /// ([`get_pre_exec`](Self::get_pre_exec)) and run nothing.
    ///
    /// # Safety
    /// As for `CommandExt::pre_exec`: the hook runs in a forked copy of a possibly
    /// multi-threaded process, so it may only make async-signal-safe calls (no allocation,
    /// no lock another thread may have held at the fork).
    #[allow(unsafe_code)]
    pub unsafe fn pre_exec<F>(mut self, hook: F) -> Self
    where
        F: FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    {
        self.pre_exec
            .push(PreExec(Arc::new(Mutex::new(Box::new(hook)))));
        self
    }

    /// Asks for a pseudo-terminal instead of pipes for fds 0, 1 and 2: the child's fds 0, 1
    /// and 2 are the terminal, which is its controlling terminal (it leads a new session).
    /// The parent writes the terminal's input through fd 0 and gets everything the child
    /// prints, on its fd 1 or 2, as fd 1; see [`transport_fds`](Self::transport_fds). The fd
    /// map must stay the default one; any other is refused as `InvalidSpec`.
    ///
    /// ```
    /// use process_transport_api::{ChildFd, ChildFdMapping, PtySize, SpawnSpec};
    ///
    /// let spec = SpawnSpec::new("sh").use_pty(true).pty_size(PtySize::new(40, 120));
    /// assert_eq!(spec.get_pty_size(), Some(PtySize::new(40, 120)));
    /// assert_eq!(
    ///     spec.transport_fds().iter().collect::<Vec<_>>(),
    ///     [(&ChildFd::STDIN, &ChildFdMapping::ParentWrites), (&ChildFd::STDOUT, &ChildFdMapping::ParentReads)],
    /// );
    /// assert!(spec.child_fd(ChildFd(3), ChildFdMapping::Null).validate().is_err());
    /// ```
    pub fn use_pty(mut self, use_pty: bool) -> Self {
        self.use_pty = use_pty;
        self
    }

    /// Sets the pseudo-terminal's size at spawn ([`PtySize::default`], 24x80, unless set).
    /// Needs [`use_pty`](Self::use_pty); a size without a terminal is refused as
    /// `InvalidSpec`. The transport's `resize_pty` changes it later.
    pub fn pty_size(mut self, size: PtySize) -> Self {
        self.pty_size = Some(size);
        self
    }

    /// Connects child fd `fd` as `mapping`, replacing any earlier entry for it.
    pub fn child_fd(mut self, fd: ChildFd, mapping: ChildFdMapping) -> Self {
        self.child_fds.insert(fd, mapping);
        self
    }

    /// Leaves child fd `fd` out of the map: the child starts with it closed.
    pub fn no_child_fd(mut self, fd: ChildFd) -> Self {
        self.child_fds.remove(&fd);
        self
    }

    /// The executable, as given to [`new`](Self::new).
    pub fn get_executable(&self) -> &OsStr {
        &self.executable
    }

    /// The arguments, argv\[0\] excluded.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The environment settings.
    pub fn get_env(&self) -> &Environment {
        &self.env
    }

    /// The working directory, if one was set.
    pub fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// The user id to run as, if one was set.
    pub fn get_uid(&self) -> Option<u32> {
        self.uid
    }

    /// The group id to run as, if one was set.
    pub fn get_gid(&self) -> Option<u32> {
        self.gid
    }

    /// Whether a pseudo-terminal was asked for.
    pub fn get_use_pty(&self) -> bool {
        self.use_pty
    }

    /// The terminal size set with [`pty_size`](Self::pty_size), if any.
    pub fn get_pty_size(&self) -> Option<PtySize> {
        self.pty_size
    }

    /// The child fd map, in fd order.
    pub fn get_child_fds(&self) -> &BTreeMap<ChildFd, ChildFdMapping> {
        &self.child_fds
    }

    /// The process group the child joins, if one was set; see
    /// [`process_group`](Self::process_group).
    pub fn get_process_group(&self) -> Option<i32> {
        self.process_group
    }

    /// The child's `argv[0]`, if set apart from the executable.
    pub fn get_arg0(&self) -> Option<&OsStr> {
        self.arg0.as_deref()
    }

    /// The hooks to run before exec, in order.
    pub fn get_pre_exec(&self) -> &[PreExec] {
        &self.pre_exec
    }

    /// The fds the parent's transport carries, in fd order: the child fd map, or, with a
    /// pseudo-terminal, fd 0 (written: the terminal's input) and fd 1 (read: everything the
    /// child prints on the terminal). The events of a terminal child name only these two.
    /// Borrowed, not copied, without a terminal: every spawn asks for it.
    pub fn transport_fds(&self) -> Cow<'_, BTreeMap<ChildFd, ChildFdMapping>> {
        if self.use_pty {
            Cow::Owned(BTreeMap::from([
                (ChildFd::STDIN, ChildFdMapping::ParentWrites),
                (ChildFd::STDOUT, ChildFdMapping::ParentReads),
            ]))
        } else {
            Cow::Borrowed(&self.child_fds)
        }
    }

    /// Checks what every spawner checks before starting anything: no NUL byte in the
    /// executable, an argument, the environment or the working directory, no `=` in an
    /// environment variable's name, a pseudo-terminal only with the default fds, and a
    /// terminal size only with a pseudo-terminal.
    ///
    /// ```
    /// use process_transport_api::{SpawnError, SpawnSpec};
    ///
    /// assert!(SpawnSpec::new("echo").arg("hi").validate().is_ok());
    /// let err = SpawnSpec::new("echo").arg("a\0b").validate().unwrap_err();
    /// assert!(matches!(err, SpawnError::InvalidSpec(_)));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid spawn spec: cannot spawn \"echo\": argument 1 (\"a\\0b\") holds a NUL byte",
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), SpawnError> {
        let invalid = |why: String| {
            Err(SpawnError::InvalidSpec(format!(
                "cannot spawn {:?}: {why}",
                self.executable.to_string_lossy()
            )))
        };
        let has_nul = |text: &OsStr| text.as_encoded_bytes().contains(&0);
        if self.executable.is_empty() {
            return invalid("the executable is empty".into());
        }
        if has_nul(&self.executable) {
            return invalid("the executable holds a NUL byte".into());
        }
        if self.arg0.as_deref().is_some_and(has_nul) {
            return invalid("arg0 holds a NUL byte".into());
        }
        if let Some(pgid) = self.process_group {
            if pgid < 0 {
                return invalid(format!("process group {pgid} is negative"));
            }
            if self.use_pty {
                return invalid(format!(
                    "use_pty makes the child lead a new session, so it cannot join process \
                     group {pgid}"
                ));
            }
        }
        if let Some((index, arg)) = self.args.iter().enumerate().find(|(_, arg)| has_nul(arg)) {
            return invalid(format!("argument {} ({arg:?}) holds a NUL byte", index + 1));
        }
        for (key, value) in &self.env.vars {
            if key.is_empty() || has_nul(key) || key.as_encoded_bytes().contains(&b'=') {
                return invalid(format!(
                    "environment variable name {key:?} is empty or holds '=' or a NUL byte"
                ));
            }
            if value.as_deref().is_some_and(has_nul) {
                return invalid(format!("environment variable {key:?} holds a NUL byte"));
            }
        }
        if self
            .cwd
            .as_deref()
            .is_some_and(|cwd| has_nul(cwd.as_os_str()))
        {
            return invalid("the working directory holds a NUL byte".into());
        }
        if let Some((fd, _)) = self
            .child_fds
            .iter()
            .find(|(_, mapping)| matches!(mapping, ChildFdMapping::Inherit(parent) if *parent < 0))
        {
            return invalid(format!("child fd {fd} inherits a negative parent fd"));
        }
        if self.use_pty {
            let default = SpawnSpec::new("").child_fds;
            let differs = default
                .keys()
                .chain(self.child_fds.keys())
                .find(|fd| default.get(fd) != self.child_fds.get(fd));
            if let Some(fd) = differs {
                let now = match self.child_fds.get(fd) {
                    Some(mapping) => format!("is mapped as {mapping:?}"),
                    None => "is left out".to_owned(),
                };
                return invalid(format!(
                    "use_pty makes fds 0, 1 and 2 the terminal and maps no other fd, but child \
                     fd {fd} {now}"
                ));
            }
        } else if let Some(size) = self.pty_size {
            return invalid(format!(
                "a terminal size ({size}) is set, but use_pty is off: there is no terminal"
            ));
        }
        Ok(())
    }

    /// The command line as one line of text, for logs, messages and assertions: the
    /// executable and the arguments, each word quoted as a POSIX shell would need it (a word
    /// that is empty or holds anything but letters, digits and `-_./=:,+@%^` is put in single
    /// quotes, a `'` inside written as `'\''`), so the line pastes into `sh` as the same words.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// let spec = SpawnSpec::new("sh").args(["-c", "echo hi"]);
    /// assert_eq!(spec.command_line(), "sh -c 'echo hi'");
    /// assert_eq!(SpawnSpec::new("echo").args(["it's", ""]).command_line(), r"echo 'it'\''s' ''");
    /// ```
    pub fn command_line(&self) -> String {
        std::iter::once(&self.executable)
            .chain(&self.args)
            .map(|word| shell_quote(&word.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `word` as one word of a POSIX shell command line.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_alphanumeric() || "-_./=:,+@%^".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(spec: SpawnSpec) -> String {
        match spec.validate() {
            Err(SpawnError::InvalidSpec(why)) => why,
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn a_new_spec_has_the_default_fd_map_and_inherits_the_environment() {
        let spec = SpawnSpec::new("cat");
        assert_eq!(
            spec.get_child_fds().iter().collect::<Vec<_>>(),
            [
                (&ChildFd::STDIN, &ChildFdMapping::ParentWrites),
                (&ChildFd::STDOUT, &ChildFdMapping::ParentReads),
                (&ChildFd::STDERR, &ChildFdMapping::ParentReads),
            ]
        );
        assert!(spec.get_env().inherits());
        assert_eq!(spec.get_env().vars().count(), 0);
        assert_eq!(
            (
                spec.get_cwd(),
                spec.get_uid(),
                spec.get_gid(),
                spec.get_use_pty()
            ),
            (None, None, None, false)
        );
        assert_eq!(spec.validate().ok(), Some(()));
    }

    #[test]
    fn the_environment_resolves_like_command() {
        let parent = [("HOME", "/root"), ("PATH", "/bin"), ("LANG", "C")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let spec = SpawnSpec::new("env")
            .env("LANG", "en")
            .env_remove("HOME")
            .env("NEW", "1");
        let resolved = spec.get_env().resolve(parent.clone());
        assert_eq!(
            resolved
                .iter()
                .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
                .collect::<Vec<_>>(),
            [("LANG", "en"), ("NEW", "1"), ("PATH", "/bin")]
        );
        let exact = SpawnSpec::new("env")
            .env("GONE", "x")
            .env_clear()
            .env("ONLY", "1");
        assert!(!exact.get_env().inherits());
        assert_eq!(
            exact
                .get_env()
                .resolve(parent)
                .into_iter()
                .collect::<Vec<_>>(),
            [(OsString::from("ONLY"), OsString::from("1"))]
        );
    }

    #[test]
    fn validate_names_the_executable_and_what_is_wrong() {
        assert_eq!(
            invalid(SpawnSpec::new("")),
            r#"cannot spawn "": the executable is empty"#
        );
        assert_eq!(
            invalid(SpawnSpec::new("ca\0t")),
            r#"cannot spawn "ca\0t": the executable holds a NUL byte"#
        );
        assert_eq!(
            invalid(SpawnSpec::new("echo").args(["ok", "b\0d"])),
            r#"cannot spawn "echo": argument 2 ("b\0d") holds a NUL byte"#
        );
        assert_eq!(
            invalid(SpawnSpec::new("env").env("A=B", "1")),
            r#"cannot spawn "env": environment variable name "A=B" is empty or holds '=' or a NUL byte"#
        );
        assert_eq!(
            invalid(SpawnSpec::new("env").env("A", "x\0")),
            r#"cannot spawn "env": environment variable "A" holds a NUL byte"#
        );
        assert_eq!(
            invalid(SpawnSpec::new("ls").cwd("/t\0mp")),
            r#"cannot spawn "ls": the working directory holds a NUL byte"#
        );
        assert_eq!(
            invalid(SpawnSpec::new("cat").child_fd(ChildFd(3), ChildFdMapping::Inherit(-1))),
            r#"cannot spawn "cat": child fd 3 inherits a negative parent fd"#
        );
    }

    #[test]
    fn the_command_line_quotes_what_a_shell_would_split_or_expand() {
        let spec = SpawnSpec::new("sh").args([
            "-c",
            "echo $HOME",
            "--name=a.b",
            "",
            "it's",
            "*",
            "ünïcode",
        ]);
        assert_eq!(
            spec.command_line(),
            r"sh -c 'echo $HOME' --name=a.b '' 'it'\''s' '*' ünïcode"
        );
    }
}
