//! [`Command`] for synchronous code: `output` and `status` that block the calling thread.

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;

use process_transport_api::{ProcessSpawner, SpawnSpec};

use crate::command::Defaults;
use crate::{ExitStatus, Output, Stdio};

/// A [`crate::Command`] whose [`output`](Self::output) and [`status`](Self::status) block: for
/// synchronous code, in the manner of `std::process::Command`.
///
/// Each run drives the command on a private current-thread tokio runtime. Called outside any
/// runtime, it runs on the calling thread. Called inside one (from `spawn_blocking`, inside
/// `block_in_place`, or even, against advice, straight from an async task, where it blocks
/// that worker) it runs on a helper thread and the caller waits for it, because a runtime
/// cannot be driven from inside another. The spawner is chosen on the calling thread, so
/// [`set_default`](crate::set_default) applies.
///
/// ```
/// use process_transport_command::blocking::Command;
/// use process_transport_fakes::{MemoryProcessReactor, Script};
/// use std::sync::Arc;
///
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["uname"], Script::new().stdout("Linux\n").exit(0));
/// let out = Command::new("uname").spawner(Arc::new(reactor)).output()?;
/// assert_eq!(out.stdout, b"Linux\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Command(crate::Command);

macro_rules! delegate {
    ($($(#[doc = $doc:expr])* fn $name:ident[$($gen:tt)*]($($arg:ident: $ty:ty),*) $(where [$($bound:tt)*])?;)*) => {
        $(
            $(#[doc = $doc])*
            pub fn $name<$($gen)*>(&mut self, $($arg: $ty),*) -> &mut Self $(where $($bound)*)? {
                self.0.$name($($arg),*);
                self
            }
        )*
    };
}

impl Command {
    /// A command that runs `program`; see [`crate::Command::new`].
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command(crate::Command::new(program))
    }

    delegate! {
        /// Adds one argument.
        fn arg[](arg: impl AsRef<OsStr>);
        /// Adds several arguments, in order.
        fn args[I, S](args: I) where [I: IntoIterator<Item = S>, S: AsRef<OsStr>];
        /// Sets one environment variable for the child.
        fn env[](key: impl AsRef<OsStr>, value: impl AsRef<OsStr>);
        /// Sets several environment variables for the child.
        fn envs[I, K, V](vars: I) where [I: IntoIterator<Item = (K, V)>, K: AsRef<OsStr>, V: AsRef<OsStr>];
        /// Removes one inherited environment variable.
        fn env_remove[](key: impl AsRef<OsStr>);
        /// Starts the child from an empty environment.
        fn env_clear[]();
        /// Sets the child's working directory.
        fn current_dir[](dir: impl AsRef<Path>);
        /// Runs the child as this user id.
        fn uid[](uid: u32);
        /// Runs the child as this group id.
        fn gid[](gid: u32);
        /// Connects the child's stdin (default as [`crate::Command::stdin`]).
        fn stdin[](stdio: Stdio);
        /// Connects the child's stdout (default as [`crate::Command::stdout`]).
        fn stdout[](stdio: Stdio);
        /// Connects the child's stderr (default as [`crate::Command::stderr`]).
        fn stderr[](stdio: Stdio);
        /// Runs this command on `spawner` whatever default is in scope.
        fn spawner[](spawner: Arc<dyn ProcessSpawner>);
    }

    /// The spec the command is spawned with; see [`crate::Command::to_spec`].
    pub fn to_spec(&self) -> SpawnSpec {
        self.0.to_spec()
    }

    /// Runs the child to its end and collects its output, with std's defaults: stdin null,
    /// stdout and stderr piped (explicit settings win).
    ///
    /// # Errors
    /// As the async `output`; and an `io::Error` naming the program when the private runtime
    /// or its helper thread cannot be started.
    pub fn output(&mut self) -> io::Result<Output> {
        self.run(|command| command.output_with(Defaults::StdOutput))
    }

    /// Runs the child to its end and returns how it ended; see [`crate::Command::status`].
    ///
    /// # Errors
    /// As [`output`](Self::output).
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.run(|mut command| async move { command.status().await })
    }

    fn run<T, F>(&self, job: impl FnOnce(crate::Command) -> F + Send) -> io::Result<T>
    where
        F: Future<Output = io::Result<T>>,
        T: Send,
    {
        let program = self.0.get_program().to_string_lossy().into_owned();
        let name = program.clone();
        let mut command = self.0.clone();
        command.spawner(self.0.resolve_spawner()?);
        let drive = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("cannot run {program:?}: its private tokio runtime did not start: {err}"),
                    )
                })?;
            runtime.block_on(job(command))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return drive();
        }
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("process-transport-blocking".into())
                .spawn_scoped(scope, drive)
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("cannot run {name:?}: its helper thread did not start: {err}"),
                    )
                })?;
            // A panic there is a fake's misuse check: it reaches the caller as it would have.
            helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl From<crate::Command> for Command {
    fn from(command: crate::Command) -> Self {
        Command(command)
    }
}
