//! [`Command`]: the builder of `tokio::process::Command`, over any spawner.

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use process_transport_api::{ChildFd, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec};
use tokio::io::AsyncRead;

use crate::pipes::{Bridge, ChildStderr, ChildStdin, ChildStdout, Shared};
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
#[derive(Clone)]
pub struct Command {
    spec: SpawnSpec,
    stdio: [Option<Stdio>; 3],
    kill_on_drop: bool,
    spawner: Option<Arc<dyn ProcessSpawner>>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command_line", &self.spec.command_line())
            .field("stdio", &self.stdio)
            .field("kill_on_drop", &self.kill_on_drop)
            .field("spawner_given", &self.spawner.is_some())
            .finish()
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
        }
    }

    fn edit(&mut self, change: impl FnOnce(SpawnSpec) -> SpawnSpec) -> &mut Self {
        let spec = std::mem::replace(&mut self.spec, SpawnSpec::new(""));
        self.spec = change(spec);
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

    /// The spec with `defaults` applied, as a spawner that hands children the parent's fds
    /// takes it (files given as stdio are the child's own fds).
    pub(crate) fn spec_with(&self, defaults: Defaults) -> SpawnSpec {
        match self.plan(defaults, true, false) {
            Ok(plan) => plan.spec,
            // Only a misplaced pipe of another child fails, and `spawn` reports it; the spec
            // shows the fd as a pipe.
            Err(_) => self.spec.clone(),
        }
    }

    /// The spec with `defaults` applied, and the copies a spawn on a spawner that does
    /// (`passes_fds`) or does not hand children the parent's fds needs; `take_pipes` takes
    /// the other children's pipes given as stdio.
    fn plan(&self, defaults: Defaults, passes_fds: bool, take_pipes: bool) -> io::Result<Plan> {
        let mut plan = Plan::new(self.spec.clone());
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

    fn spawn_now(&self, defaults: Defaults) -> io::Result<Child> {
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
        Ok(Start {
            spawner,
            program: self.program(),
            spec: plan.spec,
            copies: plan.copies,
            keep: plan.keep,
            shared: Arc::new(Shared::default()),
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
        let mapped = |fd: ChildFd| spec.get_child_fds().get(&fd).is_some_and(|m| m.is_pipe());
        let mut stdin =
            mapped(ChildFd::STDIN).then(|| ChildStdin::new(shared.clone(), transport.clone()));
        let mut stdout =
            mapped(ChildFd::STDOUT).then(|| ChildStdout::new(shared.clone(), transport.clone()));
        let mut stderr =
            mapped(ChildFd::STDERR).then(|| ChildStderr::new(shared.clone(), transport.clone()));
        let mut running: Vec<Running> = Vec::new();
        for copy in copies {
            let output: Option<Box<dyn AsyncRead + Send + Unpin>> = match &copy {
                Relay::Drain(ChildFd::STDOUT, _) => stdout.take().map(|r| Box::new(r) as _),
                Relay::Drain(_, _) => stderr.take().map(|r| Box::new(r) as _),
                Relay::Feed(_) => None,
            };
            let feeds = matches!(copy, Relay::Feed(_));
            running.push(copy.start(feeds.then(|| stdin.take()).flatten(), output, &program));
        }
        Ok(Child::new(
            transport,
            shared,
            (stdin, stdout, stderr),
            kill_on_drop,
            running,
        ))
    }
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
