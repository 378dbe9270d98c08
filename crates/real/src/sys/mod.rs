//! The platform door: everything that touches fds, handles, signals and process creation
//! directly. The transport logic above it is portable. Every unix takes the portable path
//! (fork and exec, the child awaited by its pid through `SIGCHLD`, pipes of the kernel's
//! default size); Linux also has its fast paths (pidfds, `posix_spawn` file actions,
//! `close_range`, larger pipes), unless the portable path is asked for. Windows starts the
//! child with std's `Command` (its program lookup and `.bat`/`.cmd` rules) over named pipes
//! whose parent ends are overlapped, awaited on a thread of its own.

#[cfg(not(any(unix, windows)))]
compile_error!("process-transport-real runs child processes on unix systems and Windows only");

#[cfg(unix)]
mod child;
#[cfg(unix)]
mod fork;
#[cfg(unix)]
mod plan;
#[cfg(target_os = "linux")]
mod posix_spawn;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::io;

use process_transport_api::{ChildFd, SpawnError, SpawnSpec};

#[cfg(unix)]
pub(crate) use child::{ChildHandle, ExitWatch, Status};
#[cfg(unix)]
pub(crate) use unix::{
    end_of_input, grow_pipe, hung_up, is_gone, is_not_a_directory, receiver, resize,
    runtime_has_io, sender, spawn, PipeEnd, PipeHandle, Receiver, Sender,
};
#[cfg(windows)]
pub(crate) use windows::{
    end_of_input, grow_pipe, hung_up, is_gone, is_not_a_directory, receiver, resize,
    runtime_has_io, sender, spawn, ChildHandle, ExitWatch, PipeEnd, PipeHandle, Receiver, Sender,
    Status,
};

/// The parent's end of one pipe of the map (or of the terminal).
pub(crate) enum Pipe {
    /// The parent reads what the child writes on this fd.
    Reads(ChildFd, PipeEnd),
    /// The parent writes what the child reads on this fd.
    Writes(ChildFd, PipeEnd),
}

/// A started child: its pid, a handle to wait for it and signal it, and the parent's pipe
/// ends.
pub(crate) struct Spawned {
    pub(crate) pid: u32,
    pub(crate) child: ChildHandle,
    /// The parent's ends; for a terminal, two copies of its master side: fd 0 written and
    /// fd 1 read.
    pub(crate) pipes: Vec<Pipe>,
    /// Whether the child's fds 0, 1 and 2 are a pseudo-terminal (never on Windows).
    pub(crate) terminal: bool,
}

fn invalid(spec: &SpawnSpec, why: impl std::fmt::Display) -> SpawnError {
    SpawnError::InvalidSpec(format!("cannot spawn {:?}: {why}", executable(spec)))
}

fn executable(spec: &SpawnSpec) -> String {
    spec.get_executable().to_string_lossy().into_owned()
}

/// Maps an OS error of the spawn itself to the spawn error a user expects.
fn spawn_error(spec: &SpawnSpec, err: io::Error) -> SpawnError {
    match err.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(executable(spec)),
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied(executable(spec)),
        kind => SpawnError::Io(io::Error::new(
            kind,
            format!("cannot spawn {:?}: {err}", executable(spec)),
        )),
    }
}

/// Reaps a child nobody watches any more (its runtime shut down) on a small thread of its
/// own, so that it leaves no zombie once it exits, and reports its exit from there. Rare, so
/// one thread per orphan.
pub(crate) fn reap_orphan(child: ChildHandle, reaped: impl FnOnce(Status) + Send + 'static) {
    let reaper = std::thread::Builder::new()
        .name("process-transport-reaper".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // EINTR is retried; any other error means the child is already reaped.
            let status = loop {
                match child.reap_blocking() {
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break (None, None),
                    Ok(status) => break status,
                }
            };
            reaped(status);
        });
    // Without a thread the child stays unreaped until this process exits: nothing better
    // can be done from a destructor.
    drop(reaper);
}
