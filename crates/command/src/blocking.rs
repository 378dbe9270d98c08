//! A mirror of `std::process` for synchronous code, over any spawner: [`Command`] with std's
//! builder, [`Child`] with `std::io::Write` stdin and `std::io::Read` stdout and stderr,
//! [`Stdio`], std's own [`ExitStatus`] and [`Output`], and `exit`, `abort` and `id`, so that
//! `use process_transport_command::blocking as process;` keeps `process::exit(..)` compiling.
//!
//! ```
//! use process_transport_command::blocking::{Command, Stdio};
//! use process_transport_fakes::{MemoryProcessReactor, Script};
//! use std::io::{BufRead, BufReader};
//! use std::sync::Arc;
//!
//! /// The code under test, written as for `std::process`.
//! fn first_words(spawner: Arc<dyn process_transport_api::ProcessSpawner>) -> std::io::Result<Vec<String>> {
//!     let mut child = Command::new("ls").stdout(Stdio::piped()).spawner(spawner).spawn()?;
//!     let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
//!     let words = lines.collect::<Result<Vec<_>, _>>()?;
//!     assert!(child.wait()?.success());
//!     Ok(words)
//! }
//!
//! let reactor = MemoryProcessReactor::strict();
//! reactor.register(["ls"], Script::new().stdout("a\nb\n").exit(0));
//! assert_eq!(first_words(Arc::new(reactor))?, ["a", "b"]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Where it runs
//!
//! Everywhere std's does: on a plain thread, with no runtime, inside a tokio runtime (from
//! async code, where it blocks the worker as std's does, `spawn_blocking` or
//! `block_in_place`), and from many threads at once. Outside any runtime, `output` and
//! `status` run on a runtime of the calling thread, which it drives while it waits. A
//! spawned [`Child`]'s pumps (and the copies a [`Stdio`] may ask for) run on one small
//! runtime of this module, driven by a thread of its own, and the caller waits on the
//! child's events by parking; so no runtime is ever driven from inside another. The spawner is chosen on the calling thread, so
//! [`set_default`](crate::set_default), the global default and
//! [`forbid_real_processes`](crate::forbid_real_processes) apply as to the async front door.

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use process_transport_api::{ProcessSpawner, SpawnSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::command::Defaults;

pub use crate::Stdio;
pub use std::process::{abort, exit, id, ExitCode, ExitStatus, Output, Termination};

/// The runtime the real transport's pumps of spawned blocking children run on: a
/// current-thread runtime driven by one thread of its own, started at the first spawn and
/// kept for the life of the process.
fn pumps() -> io::Result<&'static tokio::runtime::Runtime> {
    // Built inside the lock: a runtime made and then dropped by a thread that lost a race
    // would panic when that thread is inside another runtime.
    static PUMPS: OnceLock<Result<tokio::runtime::Runtime, (io::ErrorKind, String)>> =
        OnceLock::new();
    static DRIVER: OnceLock<io::Result<()>> = OnceLock::new();
    let failed = |what: &str, kind: io::ErrorKind, err: &dyn std::fmt::Display| {
        io::Error::new(
            kind,
            format!("the {what} of blocking children did not start: {err}"),
        )
    };
    let runtime = PUMPS
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| (err.kind(), err.to_string()))
        })
        .as_ref()
        .map_err(|(kind, err)| failed("runtime", *kind, err))?;
    DRIVER
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("process-transport-blocking".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .map(drop)
        })
        .as_ref()
        .map_err(|err| failed("thread", err.kind(), err))?;
    Ok(runtime)
}

/// Drives `future` to its end on this thread, parking between wake-ups. It enters no
/// runtime, so it works inside one too.
fn wait_for<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// A process to start, built as `std::process::Command` is, and run on any
/// [`ProcessSpawner`]: the one given to [`spawner`](Self::spawner), else the scoped default,
/// else real processes.
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
#[derive(Clone)]
pub struct Command(crate::Command);

/// As std's: `"sh" "-c" "echo hi"`, with the environment and directory changes std shows.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_std(), f)
    }
}

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
    /// A command that runs `program`, as std's `Command::new`.
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
        /// Connects the child's stdin. Default: inherited for `spawn` and `status`, the null
        /// device for `output`, as std's.
        fn stdin[](stdio: impl Into<Stdio>);
        /// Connects the child's stdout. Default: inherited for `spawn` and `status`, piped
        /// for `output`.
        fn stdout[](stdio: impl Into<Stdio>);
        /// Connects the child's stderr. Default: inherited for `spawn` and `status`, piped
        /// for `output`.
        fn stderr[](stdio: impl Into<Stdio>);
        /// Runs this command on `spawner` whatever default is in scope.
        fn spawner[](spawner: Arc<dyn ProcessSpawner>);
    }

    /// The program, as std's `get_program`.
    pub fn get_program(&self) -> &OsStr {
        self.0.get_program()
    }

    /// The arguments, as std's `get_args`.
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.0.get_args()
    }

    /// The environment changes, as std's `get_envs`.
    pub fn get_envs(&self) -> impl Iterator<Item = (&OsStr, Option<&OsStr>)> {
        self.0.get_envs()
    }

    /// The working directory, if one was set, as std's `get_current_dir`.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.0.get_current_dir()
    }

    /// The spec the command is spawned with; see [`crate::Command::to_spec`].
    pub fn to_spec(&self) -> SpawnSpec {
        self.0.to_spec()
    }

    /// Starts the child with std's `spawn` defaults (stdio inherited).
    ///
    /// # Errors
    /// As [`crate::Command::spawn`]: the spawner's `SpawnError` inside an `io::Error` of kind
    /// `NotFound`, `PermissionDenied` or `InvalidInput`, naming the program.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with(Defaults::Inherit).map(Child::new)
    }

    fn spawn_with(&self, defaults: Defaults) -> io::Result<crate::Child> {
        // Inside this module's runtime, so that the real transport's pumps (and any copies)
        // go there, whichever runtime the caller is on, if any.
        let _inside = pumps()?.enter();
        self.0.spawn_now(defaults)
    }

    /// Runs the child to its end and collects its output, with std's defaults: stdin null,
    /// stdout and stderr piped (explicit settings win).
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn); and an `io::Error` when the transport gives up on the child
    /// before reporting its end.
    pub fn output(&mut self) -> io::Result<Output> {
        self.run_to_end(Defaults::StdOutput, crate::Child::wait_with_output)
    }

    /// Runs the child to its end with stdio inherited and returns how it ended.
    ///
    /// # Errors
    /// As [`output`](Self::output).
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.run_to_end(Defaults::Inherit, |mut child| async move {
            drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
            child.wait().await
        })
    }

    /// Spawns the child and runs `to_end` to its end. Outside any runtime the whole run is
    /// driven by this thread, on a runtime of its own (one per thread, kept): the child's
    /// pumps and events then need no other thread, as std's `output` needs none. Inside a
    /// runtime, the child is spawned on the module's runtime and waited for by parking.
    fn run_to_end<T, F>(
        &self,
        defaults: Defaults,
        to_end: impl FnOnce(crate::Child) -> F,
    ) -> io::Result<T>
    where
        F: Future<Output = io::Result<T>>,
    {
        thread_local! {
            static OWN: Option<std::rc::Rc<tokio::runtime::Runtime>> =
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()
                    .map(std::rc::Rc::new);
        }
        // Outside any runtime, this thread's own; inside one, or without one of its own (it
        // did not start, or the thread is ending), the module's.
        let own = match tokio::runtime::Handle::try_current() {
            Err(_) => OWN.try_with(Option::clone).ok().flatten(),
            Ok(_) => None,
        };
        if let Some(runtime) = own {
            return runtime.block_on(async {
                let child = self.0.spawn_now(defaults)?;
                to_end(child).await
            });
        }
        let child = self.spawn_with(defaults)?;
        wait_for(to_end(child))
    }
}

impl From<crate::Command> for Command {
    fn from(command: crate::Command) -> Self {
        Command(command)
    }
}

/// What std's getters expose; see [`crate::Command`]'s `From<std::process::Command>`.
impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Self {
        Command(crate::Command::from(std))
    }
}

/// A started command, as `std::process::Child`.
pub struct Child {
    /// The writer to the child's stdin, when it was piped.
    pub stdin: Option<ChildStdin>,
    /// The reader of the child's stdout, when it was piped.
    pub stdout: Option<ChildStdout>,
    /// The reader of the child's stderr, when it was piped.
    pub stderr: Option<ChildStderr>,
    inner: crate::Child,
    pid: u32,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

impl Child {
    fn new(mut inner: crate::Child) -> Self {
        Child {
            stdin: inner.stdin.take().map(ChildStdin),
            stdout: inner.stdout.take().map(ChildStdout),
            stderr: inner.stderr.take().map(ChildStderr),
            pid: inner.id().unwrap_or(0),
            inner,
        }
    }

    /// The child's process id, as std's: the same before and after the wait (0 for a
    /// transport that gave none, a mock's say).
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Sends `SIGKILL`; `Ok(())` also once the child has exited or was waited for, as std's.
    ///
    /// # Errors
    /// The transport's error if the operating system refused the signal.
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.start_kill()
    }

    /// Closes stdin (as std's `wait` does) and waits for the child to exit. Waiting again
    /// returns the same status.
    ///
    /// # Errors
    /// As [`crate::Child::wait`].
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        wait_for(self.inner.wait())
    }

    /// The status, if the child has exited; `Ok(None)` while it runs.
    ///
    /// # Errors
    /// As [`crate::Child::try_wait`].
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes stdin, reads stdout and stderr (those piped and not taken) to their ends and
    /// waits for the exit.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        self.inner.stdout = self.stdout.take().map(|pipe| pipe.0);
        self.inner.stderr = self.stderr.take().map(|pipe| pipe.0);
        wait_for(self.inner.wait_with_output())
    }
}

/// The child's stdin, as std's `ChildStdin`: a `Write` that blocks while the transport's
/// buffer is over its high-water mark. Dropping it closes stdin.
#[derive(Debug)]
pub struct ChildStdin(crate::ChildStdin);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        wait_for(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        wait_for(self.0.flush())
    }
}

macro_rules! blocking_reader {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(crate::$name);

        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                wait_for(self.0.read(buf))
            }
        }

        /// This child's output as the next child's stdin (`a | b`), as std's
        /// `Stdio::from(child.stdout.take().unwrap())`; the bytes are copied.
        impl From<$name> for Stdio {
            fn from(pipe: $name) -> Self {
                Stdio::from_output(pipe.0)
            }
        }
    };
}

blocking_reader!(
    /// The child's stdout, as std's `ChildStdout`: a `Read` that blocks until data or end of
    /// file. Dropping it closes the pipe.
    ChildStdout
);
blocking_reader!(
    /// The child's stderr, as std's `ChildStderr`; see [`ChildStdout`].
    ChildStderr
);

/// This child's stdin as another child's stdout or stderr; the bytes are copied.
impl From<ChildStdin> for Stdio {
    fn from(stdin: ChildStdin) -> Self {
        Stdio::from_input(stdin.0)
    }
}

/// The Windows settings std puts in `std::os::windows::process::CommandExt`, whose trait is
/// sealed.
#[cfg(windows)]
pub mod windows {
    use std::ffi::OsStr;

    /// std's Windows `CommandExt` for [`blocking::Command`](super::Command): import this one
    /// where std code imports `std::os::windows::process::CommandExt`.
    pub trait CommandExt: sealed::Sealed {
        /// Sets the process creation flags (`CreateProcess`'s `dwCreationFlags`).
        fn creation_flags(&mut self, flags: u32) -> &mut super::Command;
        /// Appends `text_to_append_as_is` to the command line with no quoting or escaping.
        fn raw_arg<S: AsRef<OsStr>>(&mut self, text_to_append_as_is: S) -> &mut super::Command;
    }

    mod sealed {
        pub trait Sealed {}
        impl Sealed for super::super::Command {}
    }

    impl CommandExt for super::Command {
        fn creation_flags(&mut self, flags: u32) -> &mut super::Command {
            self.0.creation_flags(flags);
            self
        }
        fn raw_arg<S: AsRef<OsStr>>(&mut self, text_to_append_as_is: S) -> &mut super::Command {
            self.0.raw_arg(text_to_append_as_is);
            self
        }
    }
}

/// The unix settings std puts in `std::os::unix::process::CommandExt`, whose trait is sealed.
#[cfg(unix)]
pub mod unix {
    use std::ffi::OsStr;
    use std::io;

    /// std's `CommandExt` for [`blocking::Command`](super::Command): import this one where
    /// std code imports `std::os::unix::process::CommandExt`.
    pub trait CommandExt: sealed::Sealed {
        /// Runs the child as this user id.
        fn uid(&mut self, id: u32) -> &mut super::Command;
        /// Runs the child as this group id.
        fn gid(&mut self, id: u32) -> &mut super::Command;
        /// Puts the child in process group `pgroup` (0: a new group it leads).
        fn process_group(&mut self, pgroup: i32) -> &mut super::Command;
        /// Gives the child `arg` as its `argv[0]`.
        fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut super::Command;
        /// Adds a hook the child runs after fork and before exec; see
        /// [`crate::Command::pre_exec`].
        ///
        /// # Safety
        /// As std's `CommandExt::pre_exec`.
        #[allow(unsafe_code)]
        unsafe fn pre_exec<F>(&mut self, hook: F) -> &mut super::Command
        where
            F: FnMut() -> io::Result<()> + Send + Sync + 'static;
    }

    mod sealed {
        pub trait Sealed {}
        impl Sealed for super::super::Command {}
    }

    impl CommandExt for super::Command {
        fn uid(&mut self, id: u32) -> &mut super::Command {
            self.0.uid(id);
            self
        }
        fn gid(&mut self, id: u32) -> &mut super::Command {
            self.0.gid(id);
            self
        }
        fn process_group(&mut self, pgroup: i32) -> &mut super::Command {
            self.0.process_group(pgroup);
            self
        }
        fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut super::Command {
            self.0.arg0(arg);
            self
        }
        #[allow(unsafe_code)]
        unsafe fn pre_exec<F>(&mut self, hook: F) -> &mut super::Command
        where
            F: FnMut() -> io::Result<()> + Send + Sync + 'static,
        {
            // SAFETY: the caller promised what `crate::Command::pre_exec` asks, which is this.
            unsafe {
                self.0.pre_exec(hook);
            }
            self
        }
    }
}
