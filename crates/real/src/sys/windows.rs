//! Windows: the child started by std's `Command` (its program lookup, `PATHEXT` and
//! `.bat`/`.cmd` rules, its argument quoting), fds 0, 1 and 2 as named pipes whose parent
//! ends are overlapped and registered with tokio, the child awaited on a thread of its own
//! and killed by `TerminateProcess`.
//!
//! What Windows cannot do is refused before anything starts, naming the field: fds above 2,
//! a closed standard fd, a parent fd handed over by number (but a standard fd inheriting the
//! parent's own, which is std's `Stdio::inherit`), uid/gid, a process group,
//! `argv[0]`, pre-exec hooks and a pseudo-terminal.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::os::windows::process::CommandExt;
use std::pin::pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use process_transport_api::{ChildFd, ChildFdMapping, PtySize, SpawnError, SpawnSpec};
use process_transport_api::{Signal, TransportError};
use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};
use tokio::sync::Notify;

use super::{executable, invalid, spawn_error, Pipe, Spawned};
use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Threading::{TerminateProcess, WaitForSingleObject, INFINITE};

/// The parent's end of a pipe it writes: a named pipe's server side, overlapped.
pub(crate) type Sender = NamedPipeServer;

/// The parent's end of a pipe it reads: a named pipe's server side, overlapped.
pub(crate) type Receiver = NamedPipeServer;

/// What the parent holds of a pipe; a Windows pipe neither grows nor is a terminal.
pub(crate) trait PipeHandle {}

impl<T> PipeHandle for T {}

/// What the spawn hands the transport of each pipe: the server end, registered already.
pub(crate) type PipeEnd = NamedPipeServer;

/// Whether the current runtime has its I/O driver. tokio panics at the first registration
/// when it has not, so one throwaway pipe is registered to find out before anything starts.
pub(crate) fn runtime_has_io() -> bool {
    std::panic::catch_unwind(|| pipe_pair(true).map(drop)).is_ok()
}

/// Registered with the runtime when it was made.
pub(crate) fn sender(end: NamedPipeServer) -> io::Result<Sender> {
    Ok(end)
}

/// Registered with the runtime when it was made.
pub(crate) fn receiver(end: NamedPipeServer) -> io::Result<Receiver> {
    Ok(end)
}

/// Resolves once the child closed its end of a pipe the parent writes. The pipe is duplex on
/// the parent's side and the child's end only reads, so the read the runtime keeps in flight
/// on it ends (with `ERROR_BROKEN_PIPE`) exactly then.
pub(crate) async fn hung_up(sender: &Sender) {
    let _ = sender.readable().await;
}

/// Whether a kill failed only because the child is gone.
pub(crate) fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::PermissionDenied
}

/// Whether `err` says a part of a path is not a directory (`ERROR_DIRECTORY`, 267).
pub(crate) fn is_not_a_directory(err: &io::Error) -> bool {
    err.raw_os_error() == Some(267)
}

/// A Windows pipe keeps the size it was made with.
pub(crate) fn grow_pipe(_end: &impl PipeHandle) {}

/// Never reached: a Windows child has no terminal, and the transport says so first.
pub(crate) fn resize(_master: &impl PipeHandle, _size: PtySize) -> Result<(), TransportError> {
    Err(TransportError::NoTerminal)
}

/// Never reached: a Windows child has no terminal.
pub(crate) fn end_of_input(_master: &impl PipeHandle, _at_line_start: bool) -> Vec<u8> {
    Vec::new()
}

/// How a child ended: its exit code (Windows has no signals to end by).
pub(crate) type Status = (Option<i32>, Option<i32>);

fn cannot(spec: &SpawnSpec, why: impl std::fmt::Display) -> SpawnError {
    invalid(spec, format!("{why}; Windows cannot do it"))
}

/// Refuses what a Windows child cannot have, naming it.
fn check(spec: &SpawnSpec) -> Result<(), SpawnError> {
    if spec.get_use_pty() {
        return Err(cannot(
            spec,
            "use_pty asks for a pseudo-terminal, which this transport does not make on Windows",
        ));
    }
    if spec.get_uid().is_some() {
        return Err(cannot(spec, "uid sets the child's user id"));
    }
    if spec.get_gid().is_some() {
        return Err(cannot(spec, "gid sets the child's group id"));
    }
    if spec.get_process_group().is_some() {
        return Err(cannot(
            spec,
            "process_group puts the child in a unix process group",
        ));
    }
    if spec.get_arg0().is_some() {
        return Err(cannot(spec, "arg0 sets argv[0] apart from the program"));
    }
    if !spec.get_pre_exec().is_empty() {
        return Err(cannot(spec, "pre_exec runs code in the child before exec"));
    }
    for (&fd, &mapping) in spec.get_child_fds() {
        if fd.0 > 2 {
            return Err(cannot(
                spec,
                format!("child fd {fd} is mapped, and a Windows child has only fds 0, 1 and 2"),
            ));
        }
        // A standard fd inherited as itself is the parent's own handle: `Stdio::inherit`.
        match mapping {
            ChildFdMapping::Inherit(parent) if i64::from(parent) == i64::from(fd.0) => {}
            ChildFdMapping::Inherit(parent) => {
                return Err(cannot(
                    spec,
                    format!(
                        "child fd {fd} inherits parent fd {parent} by number, and Windows has \
                     handles, not fd numbers (only fds 0, 1 and 2 can inherit the parent's own)"
                    ),
                ))
            }
            _ => {}
        }
    }
    for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
        if !spec.get_child_fds().contains_key(&fd) {
            return Err(cannot(
                spec,
                format!(
                    "child fd {fd} is left closed, and a Windows child always has fds 0, 1 \
                     and 2 (map it to Null)"
                ),
            ));
        }
    }
    Ok(())
}

/// Names the pipes of this process apart from every other's.
static NEXT_PIPE: AtomicUsize = AtomicUsize::new(0);

/// A new pipe: the parent's end overlapped and registered with the runtime, the child's end
/// a plain handle that reads (`parent_reads` false) or writes.
fn pipe_pair(parent_reads: bool) -> io::Result<(NamedPipeServer, File)> {
    let name = format!(
        r"\\.\pipe\process-transport-{}-{}",
        std::process::id(),
        NEXT_PIPE.fetch_add(1, Ordering::Relaxed)
    );
    let server = ServerOptions::new()
        .first_pipe_instance(true)
        .reject_remote_clients(true)
        .max_instances(1)
        .pipe_mode(PipeMode::Byte)
        .access_inbound(true)
        .access_outbound(true)
        .create(&name)?;
    let client = OpenOptions::new()
        .read(!parent_reads)
        .write(parent_reads)
        .open(&name)?;
    // The client is connected already: the connect completes at once, and the runtime starts
    // its I/O on the pipe.
    let connected = {
        let mut connect = pin!(server.connect());
        connect
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    };
    match connected {
        Poll::Ready(result) => result?,
        Poll::Pending => {
            return Err(io::Error::other(
                "the named pipe's server side did not see its client connected",
            ))
        }
    }
    Ok((server, client))
}

/// Starts the child `spec` describes.
pub(crate) fn spawn(spec: &SpawnSpec, _portable: bool) -> Result<Spawned, SpawnError> {
    check(spec)?;
    let failed = |err: io::Error| {
        SpawnError::Io(io::Error::new(
            err.kind(),
            format!(
                "cannot spawn {:?}: cannot make a pipe: {err}",
                executable(spec)
            ),
        ))
    };
    let mut command = Command::new(spec.get_executable());
    for (index, arg) in spec.get_args().iter().enumerate() {
        if spec.is_raw_arg(index) {
            command.raw_arg(arg);
        } else {
            command.arg(arg);
        }
    }
    if !spec.get_env().inherits() {
        command.env_clear();
    }
    for (name, value) in spec.get_env().vars() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    if let Some(cwd) = spec.get_cwd() {
        command.current_dir(cwd);
    }
    command.creation_flags(spec.get_creation_flags());
    let mut pipes = Vec::new();
    for (&fd, &mapping) in spec.get_child_fds() {
        let stdio = match mapping {
            ChildFdMapping::ParentReads => {
                let (server, client) = pipe_pair(true).map_err(failed)?;
                pipes.push(Pipe::Reads(fd, server));
                Stdio::from(client)
            }
            ChildFdMapping::ParentWrites => {
                let (server, client) = pipe_pair(false).map_err(failed)?;
                pipes.push(Pipe::Writes(fd, server));
                Stdio::from(client)
            }
            ChildFdMapping::Null => Stdio::null(),
            // Checked: the parent's own fd of the same number.
            ChildFdMapping::Inherit(_) => Stdio::inherit(),
        };
        match fd {
            ChildFd::STDIN => command.stdin(stdio),
            ChildFd::STDOUT => command.stdout(stdio),
            _ => command.stderr(stdio),
        };
    }
    let child = command.spawn().map_err(|err| spawn_error(spec, err))?;
    // The parent's copies of the child's ends closed with `command`: the child has its own.
    drop(command);
    let pid = child.id();
    let handle = ChildHandle::new(child).map_err(|err| {
        SpawnError::Io(io::Error::new(
            err.kind(),
            format!(
                "cannot spawn {:?}: cannot keep the child's handle: {err}",
                executable(spec)
            ),
        ))
    })?;
    Ok(Spawned {
        pid,
        child: handle,
        pipes,
        terminal: false,
    })
}

/// A started child, until it is reaped. Clones share it.
#[derive(Clone, Debug)]
pub(crate) struct ChildHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    child: Mutex<std::process::Child>,
    /// A copy of the process handle, waited on by the watch's thread while `child` stays free
    /// for `try_wait`.
    process: OwnedHandle,
    /// Set, then notified, when the process has exited.
    exited: AtomicBool,
    notify: Notify,
    /// The watch's thread was started.
    watched: AtomicBool,
}

impl ChildHandle {
    fn new(child: std::process::Child) -> io::Result<ChildHandle> {
        let process = std::os::windows::io::AsHandle::as_handle(&child).try_clone_to_owned()?;
        Ok(ChildHandle {
            inner: Arc::new(Inner {
                child: Mutex::new(child),
                process,
                exited: AtomicBool::new(false),
                notify: Notify::new(),
                watched: AtomicBool::new(false),
            }),
        })
    }

    fn raw(&self) -> HANDLE {
        self.inner.process.as_raw_handle() as HANDLE
    }

    /// `Signal::Kill` is `TerminateProcess` (exit code 1, as std's `kill`); the transport
    /// refuses every other signal before it gets here. A process that exited already refuses
    /// with access denied ([`is_gone`]).
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        if signal.number() != Signal::Kill.number() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("Windows has no signal {signal}"),
            ));
        }
        // SAFETY: the handle is open for as long as `self.inner` lives.
        if unsafe { TerminateProcess(self.raw(), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The exit, if the child has exited.
    pub(crate) fn try_reap(&self) -> io::Result<Option<Status>> {
        let mut child = self
            .inner
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(child.try_wait()?.map(|status| (status.code(), None)))
    }

    /// Waits for the exit on this thread.
    pub(crate) fn reap_blocking(&self) -> io::Result<Status> {
        self.wait_here();
        let mut child = self
            .inner
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok((child.wait()?.code(), None))
    }

    fn wait_here(&self) {
        // SAFETY: the handle is open for as long as `self.inner` lives.
        let waited = unsafe { WaitForSingleObject(self.raw(), INFINITE) };
        debug_assert_eq!(waited, WAIT_OBJECT_0);
    }

    /// What wakes a task waiting for the exit: a thread of its own waits on the process.
    pub(crate) fn watch(&self) -> io::Result<ExitWatch> {
        if !self.inner.watched.swap(true, Ordering::SeqCst) {
            let child = self.clone();
            std::thread::Builder::new()
                .name("process-transport-exit".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    child.wait_here();
                    child.inner.exited.store(true, Ordering::SeqCst);
                    child.inner.notify.notify_one();
                })?;
        }
        Ok(ExitWatch {
            inner: self.inner.clone(),
        })
    }
}

/// Wakes when the child has exited.
pub(crate) struct ExitWatch {
    inner: Arc<Inner>,
}

impl ExitWatch {
    /// Resolves once the child has exited.
    pub(crate) async fn changed(&mut self) -> io::Result<()> {
        if !self.inner.exited.load(Ordering::SeqCst) {
            self.inner.notify.notified().await;
        }
        Ok(())
    }
}
