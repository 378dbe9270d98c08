//! What to start: [`SpawnSpec`] and its child fd map.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::{ChildFd, SpawnError};

mod child;
mod environment;
#[cfg(test)]
mod tests;

pub use child::{ChildFdMapping, PreExec, PtySize};
pub use environment::Environment;

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
