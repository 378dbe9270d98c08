//! [`Command`]: the builder of `tokio::process::Command`, over any spawner.

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessSpawner, ProcessTransport, PtySize, SpawnError, SpawnSpec,
};

use crate::pipes::{Bridge, ChildOutput, ChildStderr, ChildStdin, ChildStdout, Shared};
use crate::stdio::{Plan, Relay, Running};
use crate::{default, Child, ExitStatus, Output, Stdio};

/// Which of tokio's defaults applies to the stdio not set explicitly.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Defaults {
    /// `spawn` and `status`: all three inherited.
    Inherit,
    /// tokio's `output`: stdin inherited, stdout and stderr piped.
    Output,
    /// std's `output`: stdin null, stdout and stderr piped.
    StdOutput,
}

impl Defaults {
    fn for_fd(self, fd: ChildFd) -> Stdio {
        match (self, fd) {
            (Defaults::Inherit, _) | (Defaults::Output, ChildFd::STDIN) => Stdio::inherit(),
            (Defaults::StdOutput, ChildFd::STDIN) => Stdio::null(),
            (Defaults::Output | Defaults::StdOutput, _) => Stdio::piped(),
        }
    }
}

/// A process to start, built as `tokio::process::Command` is, and run on any
/// [`ProcessSpawner`]: the one given to [`spawner`](Self::spawner), else the scoped default
/// ([`set_default`](crate::set_default), [`with_default`](crate::with_default)), else real
/// processes.
///
/// The builder methods take `&mut self` and chain, so code written for tokio's `Command`
/// compiles against this one with the import changed.
///
/// ```
/// use process_transport_command::Command;
/// use process_transport_fakes::{MemoryProcessReactor, Script};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["sh", "-c", "exit 3"], Script::new().stderr("bye\n").exit(3));
///
/// let out = Command::new("sh").args(["-c", "exit 3"]).spawner(Arc::new(reactor)).output().await?;
/// assert_eq!(out.status.code(), Some(3));
/// assert_eq!(out.stderr, b"bye\n");
/// # Ok(()) }
/// ```
pub struct Command {
    spec: SpawnSpec,
    stdio: [Option<Stdio>; 3],
    kill_on_drop: bool,
    spawner: Option<Arc<dyn ProcessSpawner>>,
    /// The std command [`as_std`](Self::as_std) shows, made at its first call after a change.
    std: OnceLock<std::process::Command>,
}

impl Clone for Command {
    fn clone(&self) -> Self {
        Command {
            spec: self.spec.clone(),
            stdio: self.stdio.clone(),
            kill_on_drop: self.kill_on_drop,
            spawner: self.spawner.clone(),
            std: OnceLock::new(),
        }
    }
}

/// As tokio's: the std command it would run, and `kill_on_drop`
/// (`Command { std: "sh" "-c" "echo hi", kill_on_drop: false }`).
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("std", &self.to_std())
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}

/// What std's getters expose of the command: the program, the arguments, the environment
/// changes and the working directory. (Its stdio, `env_clear`, uid, gid and other unix
/// settings cannot be read from a `std::process::Command`; set them on this one.)
impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Self {
        let mut command = Command::new(std.get_program());
        command.args(std.get_args());
        for (key, value) in std.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = std.get_current_dir() {
            command.current_dir(dir);
        }
        command
    }
}

impl Command {
    /// A command that runs `program` with no arguments, the parent's environment and working
    /// directory. A bare name is looked up in `PATH` by the spawner.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            spec: SpawnSpec::new(program),
            stdio: [None, None, None],
            kill_on_drop: false,
            spawner: None,
            std: OnceLock::new(),
        }
    }

    fn edit(&mut self, change: impl FnOnce(SpawnSpec) -> SpawnSpec) -> &mut Self {
        let spec = std::mem::replace(&mut self.spec, SpawnSpec::new(""));
        self.spec = change(spec);
        self.std.take();
        self
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.edit(|spec| spec.arg(arg))
    }

    /// Adds several arguments, in order.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.edit(|spec| spec.args(args))
    }

    /// Sets one environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.edit(|spec| spec.env(key, value))
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.edit(|spec| spec.envs(vars))
    }

    /// Removes one inherited environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.edit(|spec| spec.env_remove(key))
    }

    /// Starts the child from an empty environment.
    pub fn env_clear(&mut self) -> &mut Self {
        self.edit(SpawnSpec::env_clear)
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.edit(|spec| spec.cwd(dir))
    }

    /// Runs the child as this user id.
    pub fn uid(&mut self, uid: u32) -> &mut Self {
        self.edit(|spec| spec.uid(uid))
    }

    /// Runs the child as this group id.
    pub fn gid(&mut self, gid: u32) -> &mut Self {
        self.edit(|spec| spec.gid(gid))
    }

    /// Puts the child in process group `pgroup`; 0 makes a new group the child leads, so a
    /// signal to the group reaches its children too (`kill(-pid, ..)`).
    pub fn process_group(&mut self, pgroup: i32) -> &mut Self {
        self.edit(|spec| spec.process_group(pgroup))
    }

    /// Sets the Windows process creation flags (`CreateProcess`'s `dwCreationFlags`), as
    /// tokio's `Command::creation_flags`; fakes and cassettes record them
    /// (`SpawnSpec::get_creation_flags`).
    #[cfg(windows)]
    pub fn creation_flags(&mut self, flags: u32) -> &mut Self {
        self.edit(|spec| spec.creation_flags(flags))
    }

    /// Appends `text_to_append_as_is` to the Windows command line with no quoting or
    /// escaping, as tokio's `Command::raw_arg`; elsewhere (fakes, cassettes) an argument like
    /// any other (`SpawnSpec::is_raw_arg`).
    #[cfg(windows)]
    pub fn raw_arg(&mut self, text_to_append_as_is: impl AsRef<OsStr>) -> &mut Self {
        self.edit(|spec| spec.raw_arg(text_to_append_as_is))
    }

    /// Gives the child `arg` as its `argv[0]`; the program run is still the one given to
    /// [`new`](Self::new).
    pub fn arg0(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.edit(|spec| spec.arg0(arg))
    }

    /// Adds a hook the child runs after fork and before exec, as tokio's and std's. The real
    /// spawner runs it; a fake or a replay records that it was set
    /// (`SpawnSpec::get_pre_exec`) and runs nothing.
    ///
    /// # Safety
    /// As `std::os::unix::process::CommandExt::pre_exec`: the hook runs in a forked copy of
    /// the process and may only make async-signal-safe calls.
    #[allow(unsafe_code)]
    pub unsafe fn pre_exec<F>(&mut self, hook: F) -> &mut Self
    where
        F: FnMut() -> io::Result<()> + Send + Sync + 'static,
    {
        // SAFETY: the caller promised what `SpawnSpec::pre_exec` asks, which is this.
        self.edit(|spec| unsafe { spec.pre_exec(hook) })
    }

    /// Gives the child a pseudo-terminal as fds 0, 1 and 2, of `size`: [`Child::stdin`]
    /// writes what is typed on it, and [`Child::stdout`] reads everything the child prints
    /// there, on its stdout or stderr (there is no [`Child::stderr`]). The stdio settings
    /// are ignored while a terminal is set.
    pub fn pty(&mut self, size: PtySize) -> &mut Self {
        self.edit(|spec| spec.use_pty(true).pty_size(size))
    }

    /// Connects the child's fd `fd` (3 or above; 0, 1 and 2 are set with
    /// [`stdin`](Self::stdin) and the others) as `mapping`: a parent fd it inherits, the null
    /// device, or a pipe. A pipe the child writes is read with [`Child::take_output`]; one
    /// it reads is written with the transport's `write_to_child`
    /// ([`Child::transport`]).
    pub fn child_fd(&mut self, fd: u32, mapping: ChildFdMapping) -> &mut Self {
        self.edit(|spec| spec.child_fd(ChildFd(fd), mapping))
    }

    /// Connects the child's stdin. Default: inherited, as tokio's.
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdio[0] = Some(stdio.into());
        self
    }

    /// Connects the child's stdout. Default: inherited for [`spawn`](Self::spawn) and
    /// [`status`](Self::status), piped for [`output`](Self::output).
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdio[1] = Some(stdio.into());
        self
    }

    /// Connects the child's stderr. Default: inherited for [`spawn`](Self::spawn) and
    /// [`status`](Self::status), piped for [`output`](Self::output).
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdio[2] = Some(stdio.into());
        self
    }

    /// Sends `SIGKILL` to the child when its [`Child`] is dropped before its exit was seen
    /// (by [`Child::wait`], [`Child::try_wait`] or the protocol). Default: `false`, as tokio's.
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Self {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// Runs this command on `spawner` whatever default is in scope.
    pub fn spawner(&mut self, spawner: Arc<dyn ProcessSpawner>) -> &mut Self {
        self.spawner = Some(spawner);
        self
    }

    /// The spec [`spawn`](Self::spawn) hands to the spawner: stdio not set explicitly is
    /// inherited, as `spawn` does.
    ///
    /// ```
    /// use process_transport_api::{ChildFd, ChildFdMapping};
    /// use process_transport_command::{Command, Stdio};
    ///
    /// let spec = Command::new("grep").arg("x").env("LC_ALL", "C").stdout(Stdio::piped()).to_spec();
    /// assert_eq!(spec.command_line(), "grep x");
    /// assert_eq!(spec.get_child_fds()[&ChildFd::STDOUT], ChildFdMapping::ParentReads);
    /// assert_eq!(spec.get_child_fds()[&ChildFd::STDERR], ChildFdMapping::Inherit(2));
    /// ```
    pub fn to_spec(&self) -> SpawnSpec {
        self.spec_with(Defaults::Inherit)
    }

    /// The program, as given to [`new`](Self::new).
    pub fn get_program(&self) -> &OsStr {
        self.spec.get_executable()
    }

    /// The arguments, without the program, as std's `get_args`.
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.spec.get_args().iter().map(|arg| arg.as_os_str())
    }

    /// The environment changes, as std's `get_envs`: each variable set (`Some`) or removed
    /// (`None`), in the order of their names. After [`env_clear`](Self::env_clear) the
    /// variables set since.
    pub fn get_envs(&self) -> impl Iterator<Item = (&OsStr, Option<&OsStr>)> {
        self.spec.get_env().vars()
    }

    /// The working directory, if one was set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.spec.get_cwd()
    }

    /// Whether the child is killed when its [`Child`] is dropped before its exit was seen.
    pub fn get_kill_on_drop(&self) -> bool {
        self.kill_on_drop
    }

    /// The std command this one would run, as tokio's `as_std`, for code that reads it
    /// (`cmd.as_std().get_args()` in a log line): see [`to_std`](Self::to_std) for what it
    /// holds. There is no `as_std_mut`: a change made there could not reach the spawner.
    pub fn as_std(&self) -> &std::process::Command {
        self.std.get_or_init(|| self.to_std())
    }

    /// The std command this one would run, as tokio's `into_std`; see
    /// [`to_std`](Self::to_std).
    pub fn into_std(self) -> std::process::Command {
        self.to_std()
    }

    /// The std command this one would run: program, arguments, environment, working
    /// directory, and on unix the uid, gid, process group and `argv[0]` (not the stdio nor
    /// the pre-exec hooks).
    pub fn to_std(&self) -> std::process::Command {
        let spec = &self.spec;
        let mut std = std::process::Command::new(spec.get_executable());
        std.args(spec.get_args());
        if !spec.get_env().inherits() {
            std.env_clear();
        }
        for (key, value) in spec.get_env().vars() {
            match value {
                Some(value) => std.env(key, value),
                None => std.env_remove(key),
            };
        }
        if let Some(dir) = spec.get_cwd() {
            std.current_dir(dir);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            if let Some(arg0) = spec.get_arg0() {
                std.arg0(arg0);
            }
            if let Some(uid) = spec.get_uid() {
                std.uid(uid);
            }
            if let Some(gid) = spec.get_gid() {
                std.gid(gid);
            }
            if let Some(pgroup) = spec.get_process_group() {
                std.process_group(pgroup);
            }
        }
        std
    }

    /// The spec with `defaults` applied, as a spawner that hands children the parent's fds
    /// takes it (files given as stdio are the child's own fds).
    pub(crate) fn spec_with(&self, defaults: Defaults) -> SpawnSpec {
        // Without taking pipes nothing fails: a misplaced pipe end shows as the pipe it would
        // be, and `spawn` refuses it. The fallback is the spec without stdio applied.
        self.plan(defaults, true, false)
            .map_or_else(|_| self.spec.clone(), |plan| plan.spec)
    }

    /// The spec with `defaults` applied, and the copies a spawn on a spawner that does
    /// (`passes_fds`) or does not hand children the parent's fds needs; `take_pipes` takes
    /// the other children's pipes given as stdio.
    fn plan(&self, defaults: Defaults, passes_fds: bool, take_pipes: bool) -> io::Result<Plan> {
        let mut plan = Plan::new(self.spec.clone());
        if self.spec.get_use_pty() {
            // The terminal is fds 0, 1 and 2; the default map stands for it.
            return Ok(plan);
        }
        for (index, fd) in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR]
            .into_iter()
            .enumerate()
        {
            let stdio = self.stdio[index]
                .clone()
                .unwrap_or_else(|| defaults.for_fd(fd));
            plan.map(fd, &stdio, passes_fds, take_pipes)?;
        }
        Ok(plan)
    }

    fn program(&self) -> String {
        self.spec.get_executable().to_string_lossy().into_owned()
    }

    /// The spawner this command runs on.
    pub(crate) fn resolve_spawner(&self) -> io::Result<Arc<dyn ProcessSpawner>> {
        match &self.spawner {
            Some(spawner) => Ok(spawner.clone()),
            None => default::resolve(&self.spec.command_line()),
        }
    }

    /// Starts the child with tokio's `spawn` defaults (stdio inherited).
    ///
    /// Synchronous, as tokio's is: every spawner of this workspace completes `spawn_process`
    /// at its first poll, and this polls it once. A spawner that must wait (one of your own)
    /// is served by [`spawn_async`](Self::spawn_async); `spawn` then fails with
    /// `io::ErrorKind::WouldBlock` and starts nothing.
    ///
    /// # Errors
    /// The spawner's `SpawnError`, inside an `io::Error` (`get_ref()` downcasts to it) of
    /// kind `NotFound`, `PermissionDenied`, `InvalidInput` (a NUL byte in an argument, say)
    /// or the operating system's kind; the message names the program.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_now(Defaults::Inherit)
    }

    /// Starts the child as [`spawn`](Self::spawn) does, awaiting a spawner that does not
    /// finish at once.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn).
    pub async fn spawn_async(&mut self) -> io::Result<Child> {
        self.spawn_on(Defaults::Inherit).await
    }

    pub(crate) fn spawn_now(&self, defaults: Defaults) -> io::Result<Child> {
        let start = self.start(defaults)?;
        let polled = {
            let spawning = start
                .spawner
                .spawn_process(Box::new(Bridge(start.shared.clone())), start.spec.clone());
            pin!(spawning).poll(&mut Context::from_waker(Waker::noop()))
        };
        match polled {
            Poll::Ready(result) => start.finish(result),
            Poll::Pending => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "cannot spawn {:?}: the spawner did not finish spawn_process at once; \
                     use Command::spawn_async for a spawner that waits",
                    self.program()
                ),
            )),
        }
    }

    /// Everything a spawn needs, taken now: the spawner (the scoped default in place at this
    /// call, not at a later poll), the spec with `defaults` applied, and the settings.
    fn start(&self, defaults: Defaults) -> io::Result<Start> {
        let spawner = self.resolve_spawner()?;
        let plan = self.plan(defaults, spawner.inherits_parent_fds(), true)?;
        if !plan.copies.is_empty() && tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot spawn {:?}: its stdio copies bytes between a file or another child \
                     and a pipe, which needs a tokio runtime; spawn it inside one",
                    self.program()
                ),
            ));
        }
        let shared = Arc::new(Shared::new(read_fds(&plan.spec)));
        Ok(Start {
            spawner,
            program: self.program(),
            spec: plan.spec,
            copies: plan.copies,
            keep: plan.keep,
            shared,
            kill_on_drop: self.kill_on_drop,
        })
    }

    /// Runs the child to its end and collects what it wrote, with tokio's `output` defaults:
    /// stdin inherited, stdout and stderr piped (explicit settings win). A child that reads
    /// its stdin reads the parent's, as with tokio; give it `Stdio::null()` to read nothing.
    ///
    /// The spawner and the spec are taken at this call, so the future owns everything it
    /// needs (`Send + 'static`): `tokio::spawn(Command::new("git").arg("status").output())`
    /// runs on the spawner in scope where it was written.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn); and an `io::Error` when the transport gives up on the child
    /// before reporting its end.
    pub fn output(&mut self) -> impl Future<Output = io::Result<Output>> + Send + 'static {
        self.output_with(Defaults::Output)
    }

    pub(crate) fn output_with(
        &self,
        defaults: Defaults,
    ) -> impl Future<Output = io::Result<Output>> + Send + 'static {
        let start = self.start(defaults);
        async move { start?.run().await?.wait_with_output().await }
    }

    /// Runs the child to its end with tokio's `status` defaults (stdio inherited) and returns
    /// how it ended. The spawner and the spec are taken at this call, as for
    /// [`output`](Self::output). Pipes the command asked for are closed before the wait, as
    /// tokio's are, so a child that writes a lot into a piped stdout gets `EPIPE` (or
    /// `SIGPIPE`) instead of waiting forever for a reader.
    ///
    /// # Errors
    /// As [`output`](Self::output).
    pub fn status(&mut self) -> impl Future<Output = io::Result<ExitStatus>> + Send + 'static {
        let start = self.start(Defaults::Inherit);
        async move {
            let mut child = start?.run().await?;
            drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
            child.wait().await
        }
    }

    pub(crate) async fn spawn_on(&self, defaults: Defaults) -> io::Result<Child> {
        self.start(defaults)?.run().await
    }
}

/// A spawn about to be made: what [`Command`] took at the call.
struct Start {
    spawner: Arc<dyn ProcessSpawner>,
    program: String,
    spec: SpawnSpec,
    /// The copies the stdio asks for, made once the child is there.
    copies: Vec<Relay>,
    /// The files whose fds the spec names, open until the spawn returned.
    keep: Vec<Arc<std::fs::File>>,
    shared: Arc<Shared>,
    kill_on_drop: bool,
}

impl Start {
    async fn run(self) -> io::Result<Child> {
        let result = self
            .spawner
            .spawn_process(Box::new(Bridge(self.shared.clone())), self.spec.clone())
            .await;
        self.finish(result)
    }

    fn finish(self, result: Result<Arc<dyn ProcessTransport>, SpawnError>) -> io::Result<Child> {
        let Start {
            program,
            spec,
            copies,
            keep,
            shared,
            kill_on_drop,
            ..
        } = self;
        let transport = result.map_err(spawn_error)?;
        drop(keep);
        shared.set_transport(&transport);
        let fds = spec.transport_fds();
        let mapped = |fd: ChildFd| fds.get(&fd).is_some_and(|m| m.is_pipe());
        let mut pipes = (
            mapped(ChildFd::STDIN).then(|| ChildStdin::new(shared.clone(), transport.clone())),
            mapped(ChildFd::STDOUT).then(|| ChildStdout::new(shared.clone(), transport.clone())),
            mapped(ChildFd::STDERR).then(|| ChildStderr::new(shared.clone(), transport.clone())),
        );
        let running: Vec<Running> = copies
            .into_iter()
            .map(|copy| copy.start(&mut pipes, &program))
            .collect();
        let outputs = read_fds(&spec)
            .filter(|fd| fd.0 > 2)
            .map(|fd| (fd, ChildOutput::on(fd, shared.clone(), transport.clone())))
            .collect();
        Ok(Child::new(
            transport,
            shared,
            pipes,
            kill_on_drop,
            running,
            outputs,
        ))
    }
}

/// The fds of `spec` whose pipes the parent reads.
fn read_fds(spec: &SpawnSpec) -> impl Iterator<Item = ChildFd> + '_ {
    let fds: Vec<ChildFd> = spec
        .transport_fds()
        .iter()
        .filter(|(_, mapping)| **mapping == ChildFdMapping::ParentReads)
        .map(|(fd, _)| *fd)
        .collect();
    fds.into_iter()
}

/// The io error for a failed spawn: the `SpawnError` inside, with the matching kind.
pub(crate) fn spawn_error(err: SpawnError) -> io::Error {
    let kind = match &err {
        SpawnError::NotFound(_) | SpawnError::Unregistered { .. } => io::ErrorKind::NotFound,
        SpawnError::PermissionDenied(_) => io::ErrorKind::PermissionDenied,
        SpawnError::InvalidSpec(_) => io::ErrorKind::InvalidInput,
        SpawnError::Io(inner) => inner.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}
