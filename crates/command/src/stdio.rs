//! [`Stdio`]: what one of the child's standard fds is connected to, and the copies that
//! carry bytes where the spawner cannot hand the child a parent's fd.

use std::fmt;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use process_transport_api::{ChildFd, ChildFdMapping, SpawnSpec};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::child::Pipes;
use crate::pipes::{ChildStderr, ChildStdin, ChildStdout};

/// What one of the child's standard fds is connected to, as `tokio::process`'s and
/// `std::process`'s `Stdio`.
///
/// Besides [`piped`](Self::piped), [`null`](Self::null) and [`inherit`](Self::inherit), a
/// `Stdio` is made from a [`File`], an `OwnedFd`, [`io::Stdout`] or [`io::Stderr`], or
/// (with `try_into`, tokio's shape) another child's [`ChildStdout`], [`ChildStderr`] or
/// [`ChildStdin`], for redirections and pipelines. Each behaves the same on every spawner: a
/// real child gets the fd itself; a child of a fake, a mock or a replayed cassette gets a
/// pipe, and the command copies the bytes between that pipe and the file, so the file ends up
/// with what the child wrote (or the child reads what the file holds). A child's pipe given
/// to another child (`a | b`) is always copied, on real processes too: the transport owns
/// the first child's pipe end.
///
/// ```
/// use process_transport_api::{ChildFd, ChildFdMapping};
/// use process_transport_command::{Command, Stdio};
///
/// let spec = Command::new("sort").stdin(Stdio::null()).stdout(Stdio::piped()).to_spec();
/// assert_eq!(spec.get_child_fds()[&ChildFd::STDIN], ChildFdMapping::Null);
/// ```
#[derive(Clone)]
pub struct Stdio(Kind);

#[derive(Clone)]
enum Kind {
    Piped,
    Null,
    Inherit,
    /// The parent's own fd of this number (`io::stdout()` is 1).
    Parent(i32),
    /// A file (or any fd) of the parent's.
    File(Arc<File>),
    /// Another child's output pipe, copied into this child's stdin.
    Output(Shared<Box<dyn AsyncRead + Send + Unpin>>),
    /// Another child's stdin, which this child's output is copied into.
    Input(Shared<ChildStdin>),
}

/// A pipe end that one spawn takes; a clone of the command shares it.
type Shared<T> = Arc<Mutex<Option<T>>>;

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Piped => f.write_str("Piped"),
            Kind::Null => f.write_str("Null"),
            Kind::Inherit => f.write_str("Inherit"),
            Kind::Parent(fd) => f.debug_tuple("ParentFd").field(fd).finish(),
            Kind::File(file) => f.debug_tuple("File").field(file).finish(),
            Kind::Output(_) => f.write_str("ChildOutput"),
            Kind::Input(_) => f.write_str("ChildStdin"),
        }
    }
}

impl Stdio {
    /// A pipe to the parent: [`Child::stdin`](crate::Child::stdin),
    /// [`Child::stdout`](crate::Child::stdout) or [`Child::stderr`](crate::Child::stderr).
    pub fn piped() -> Self {
        Stdio(Kind::Piped)
    }

    /// The null device: the child reads end of file and its writes vanish.
    pub fn null() -> Self {
        Stdio(Kind::Null)
    }

    /// The parent's own fd of the same number.
    pub fn inherit() -> Self {
        Stdio(Kind::Inherit)
    }

    /// Another child's output pipe, to be copied into the stdin of the child given this.
    pub(crate) fn from_output(reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        let reader: Box<dyn AsyncRead + Send + Unpin> = Box::new(reader);
        Stdio(Kind::Output(Arc::new(Mutex::new(Some(reader)))))
    }

    /// Another child's stdin, which the output of the child given this is copied into.
    pub(crate) fn from_input(stdin: ChildStdin) -> Self {
        Stdio(Kind::Input(Arc::new(Mutex::new(Some(stdin)))))
    }
}

/// The child's fd is the file: a real child writes or reads it itself; on a double the
/// command copies the bytes.
impl From<File> for Stdio {
    fn from(file: File) -> Self {
        Stdio(Kind::File(Arc::new(file)))
    }
}

/// As a [`File`] of the same fd.
#[cfg(unix)]
impl From<std::os::fd::OwnedFd> for Stdio {
    fn from(fd: std::os::fd::OwnedFd) -> Self {
        Stdio::from(File::from(fd))
    }
}

macro_rules! std_pipe_into_stdio {
    ($($name:ident),*) => {$(
        /// A pipe of a `std::process` child, as std's `Stdio::from`: the fd itself for a
        /// real child, copied for a double.
        #[cfg(unix)]
        impl From<std::process::$name> for Stdio {
            fn from(pipe: std::process::$name) -> Self {
                Stdio::from(std::os::fd::OwnedFd::from(pipe))
            }
        }
    )*};
}
std_pipe_into_stdio!(ChildStdin, ChildStdout, ChildStderr);

macro_rules! anonymous_pipe_into_stdio {
    ($($name:ident: $end:literal),*) => {$(
        #[doc = concat!("The ", $end, " end of an anonymous pipe (`std::io::pipe`), as std's `Stdio::from`.")]
        impl From<io::$name> for Stdio {
            fn from(pipe: io::$name) -> Self {
                #[cfg(unix)]
                return Stdio::from(std::os::fd::OwnedFd::from(pipe));
                #[cfg(windows)]
                return Stdio::from(File::from(std::os::windows::io::OwnedHandle::from(pipe)));
            }
        }
    )*};
}
anonymous_pipe_into_stdio!(PipeReader: "read", PipeWriter: "write");

/// The parent's stdout (fd 1), whichever child fd this is: `cmd.stderr(io::stdout())`.
impl From<io::Stdout> for Stdio {
    fn from(_: io::Stdout) -> Self {
        Stdio(Kind::Parent(1))
    }
}

/// The parent's stderr (fd 2), whichever child fd this is.
impl From<io::Stderr> for Stdio {
    fn from(_: io::Stderr) -> Self {
        Stdio(Kind::Parent(2))
    }
}

macro_rules! child_output_into_stdio {
    ($($name:ident),*) => {$(
        /// Another child's output as this child's stdin (`a | b`), tokio's `try_into` shape.
        /// It never fails; the bytes are copied.
        impl TryFrom<$name> for Stdio {
            type Error = io::Error;

            fn try_from(pipe: $name) -> io::Result<Self> {
                Ok(Stdio::from_output(pipe))
            }
        }
    )*};
}
child_output_into_stdio!(ChildStdout, ChildStderr);

/// Another child's stdin as this child's stdout or stderr, tokio's `try_into` shape. It never
/// fails; the bytes are copied.
impl TryFrom<ChildStdin> for Stdio {
    type Error = io::Error;

    fn try_from(stdin: ChildStdin) -> io::Result<Self> {
        Ok(Stdio::from_input(stdin))
    }
}

/// One copy a spawn sets up between a child's pipe and what its `Stdio` named.
pub(crate) enum Relay {
    /// Bytes from `source` into the child's stdin.
    Feed(Source),
    /// The child's output on `fd` into `sink`.
    Drain(ChildFd, Sink),
}

pub(crate) enum Source {
    File(File),
    Child(Box<dyn AsyncRead + Send + Unpin>),
}

pub(crate) enum Sink {
    File(File),
    Child(ChildStdin),
}

/// The spec's mapping for one standard fd, and what a spawn must do besides.
pub(crate) struct Plan {
    pub(crate) spec: SpawnSpec,
    pub(crate) copies: Vec<Relay>,
    /// Files whose fds the spec names: open until the spawn has returned.
    pub(crate) keep: Vec<Arc<File>>,
}

fn take<T>(shared: &Shared<T>, fd: ChildFd) -> io::Result<T> {
    shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "child fd {fd} was given a pipe of another child that an earlier spawn \
                     of this command took: a pipe end serves one child"
                ),
            )
        })
}

/// `name` of the standard fd `fd`, for messages.
fn name(fd: ChildFd) -> &'static str {
    match fd {
        ChildFd::STDIN => "stdin",
        ChildFd::STDOUT => "stdout",
        _ => "stderr",
    }
}

impl Plan {
    pub(crate) fn new(spec: SpawnSpec) -> Self {
        Plan {
            spec,
            copies: Vec::new(),
            keep: Vec::new(),
        }
    }

    /// Maps `fd` as `stdio` says. `passes_fds`: the spawner hands a child the parent's fds
    /// (`ProcessSpawner::inherits_parent_fds`); when it does not, a file is copied through a
    /// pipe. `take`: the spawn takes other children's pipes (`to_spec` only looks).
    pub(crate) fn map(
        &mut self,
        fd: ChildFd,
        stdio: &Stdio,
        passes_fds: bool,
        take_pipes: bool,
    ) -> io::Result<()> {
        // Off unix no spawner hands over a handle yet: every file is copied.
        #[cfg(not(unix))]
        let _ = passes_fds;
        let reading = fd == ChildFd::STDIN;
        let pipe = if reading {
            ChildFdMapping::ParentWrites
        } else {
            ChildFdMapping::ParentReads
        };
        let spec = std::mem::replace(&mut self.spec, SpawnSpec::new(""));
        self.spec = match &stdio.0 {
            Kind::Piped => spec.child_fd(fd, pipe),
            Kind::Null => spec.child_fd(fd, ChildFdMapping::Null),
            Kind::Inherit => inherit(spec, fd, fd.0 as i32),
            Kind::Parent(parent) => inherit(spec, fd, *parent),
            #[cfg(unix)]
            Kind::File(file) if passes_fds => {
                use std::os::fd::AsRawFd;
                self.keep.push(file.clone());
                spec.child_fd(fd, ChildFdMapping::Inherit(file.as_raw_fd()))
            }
            Kind::File(file) => {
                if take_pipes {
                    let copy = file.try_clone().map_err(|err| {
                        io::Error::new(
                            err.kind(),
                            format!("cannot copy the file given as {}: {err}", name(fd)),
                        )
                    })?;
                    self.copies.push(if reading {
                        Relay::Feed(Source::File(copy))
                    } else {
                        Relay::Drain(fd, Sink::File(copy))
                    });
                }
                spec.child_fd(fd, pipe)
            }
            Kind::Output(reader) if reading => {
                if take_pipes {
                    self.copies
                        .push(Relay::Feed(Source::Child(take(reader, fd)?)));
                }
                spec.child_fd(fd, pipe)
            }
            Kind::Input(stdin) if !reading => {
                if take_pipes {
                    self.copies
                        .push(Relay::Drain(fd, Sink::Child(take(stdin, fd)?)));
                }
                spec.child_fd(fd, pipe)
            }
            // Only a spawn refuses it: `to_spec` shows the fd as the pipe it would be.
            Kind::Output(_) | Kind::Input(_) if !take_pipes => spec.child_fd(fd, pipe),
            Kind::Output(_) | Kind::Input(_) => {
                self.spec = spec;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "child fd {fd} ({}) was given another child's {}: both ends would {}",
                        name(fd),
                        if reading { "stdin" } else { "stdout or stderr" },
                        if reading { "write" } else { "read" },
                    ),
                ));
            }
        };
        Ok(())
    }
}

/// The parent's fd `parent` for child fd `fd`; std gives the child a closed fd where the
/// parent has none.
fn inherit(spec: SpawnSpec, fd: ChildFd, parent: i32) -> SpawnSpec {
    if parent_has(parent) {
        spec.child_fd(fd, ChildFdMapping::Inherit(parent))
    } else {
        spec.no_child_fd(fd)
    }
}

/// `true` when the parent has its own fd `fd` open.
#[cfg(unix)]
fn parent_has(fd: i32) -> bool {
    use std::os::fd::BorrowedFd;
    let open = |fd: BorrowedFd<'_>| rustix::io::fcntl_getfd(fd).is_ok();
    match fd {
        0 => open(std::os::fd::AsFd::as_fd(&io::stdin())),
        1 => open(std::os::fd::AsFd::as_fd(&io::stdout())),
        2 => open(std::os::fd::AsFd::as_fd(&io::stderr())),
        _ => true,
    }
}

/// `true`: off unix the parent's standard handles are taken to be open.
#[cfg(not(unix))]
fn parent_has(_fd: i32) -> bool {
    true
}

/// A copy running on the runtime.
pub(crate) struct Running {
    handle: JoinHandle<io::Result<()>>,
    /// It carries the child's output: the child's end is not complete until it finished.
    drain: bool,
}

impl Running {
    /// Waits for a drain to finish (the child's output is in its file or the other child's
    /// stdin); a feed only reports an error it already ended with, since the child need not
    /// read all of its input.
    pub(crate) async fn finish(self) -> io::Result<()> {
        if !self.drain && !self.handle.is_finished() {
            return Ok(());
        }
        match self.handle.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => Err(io::Error::other(format!(
                "a stdio copy was cancelled: {err}"
            ))),
        }
    }
}

impl Relay {
    /// Starts the copy between the child's pipe it needs, taken from `pipes`, and the other
    /// end, on the runtime of this thread (the command checked that there is one before it
    /// spawned).
    pub(crate) fn start(self, pipes: &mut Pipes, program: &str) -> Running {
        const PIPED: &str = "the plan maps a copied fd as a pipe";
        match self {
            Relay::Feed(source) => {
                let stdin = pipes.0.take().expect(PIPED);
                Running {
                    handle: tokio::spawn(feed(source, stdin)),
                    drain: false,
                }
            }
            Relay::Drain(fd, sink) => {
                let output: Box<dyn AsyncRead + Send + Unpin> = if fd == ChildFd::STDOUT {
                    Box::new(pipes.1.take().expect(PIPED))
                } else {
                    Box::new(pipes.2.take().expect(PIPED))
                };
                let what = match sink {
                    Sink::File(_) => "file",
                    Sink::Child(_) => "other child's stdin",
                };
                let program = program.to_owned();
                let handle = tokio::spawn(async move {
                    drain(output, sink).await.map_err(|err| {
                        io::Error::new(
                            err.kind(),
                            format!(
                                "{program:?}: copying the child's {} into the {what} given as \
                                 its Stdio failed: {err}",
                                name(fd),
                            ),
                        )
                    })
                });
                Running {
                    handle,
                    drain: true,
                }
            }
        }
    }
}

/// Copies `source` into the child's stdin and closes it.
async fn feed(source: Source, stdin: ChildStdin) -> io::Result<()> {
    match source {
        Source::File(file) => into_stdin(tokio::fs::File::from_std(file), stdin).await,
        Source::Child(reader) => into_stdin(reader, stdin).await,
    }
}

/// Copies `from` to its end into `stdin` and closes it. A child that stops reading ends the
/// copy, as a real writer gets `EPIPE`: that is not an error.
async fn into_stdin(mut from: impl AsyncRead + Unpin, mut stdin: ChildStdin) -> io::Result<()> {
    match tokio::io::copy(&mut from, &mut stdin).await {
        Ok(_) => stdin.shutdown().await.or_else(broken_pipe_is_fine),
        Err(err) => broken_pipe_is_fine(err),
    }
}

fn broken_pipe_is_fine(err: io::Error) -> io::Result<()> {
    if err.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(err)
    }
}

/// Copies the child's output into `sink` to its end of file.
async fn drain(mut output: Box<dyn AsyncRead + Send + Unpin>, sink: Sink) -> io::Result<()> {
    match sink {
        Sink::File(file) => {
            let mut file = tokio::fs::File::from_std(file);
            tokio::io::copy(&mut output, &mut file).await?;
            file.flush().await
        }
        Sink::Child(stdin) => into_stdin(output, stdin).await,
    }
}
