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
#[cfg(target_os = "linux")]
mod posix_spawn;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub(crate) use child::{reap_orphan, ChildHandle, ExitWatch, Status};
#[cfg(unix)]
pub(crate) use unix::{
    end_of_input, grow_pipe, hung_up, is_gone, is_not_a_directory, receiver, resize, sender, spawn,
    Pipe, PipeHandle, Receiver, Sender, Spawned,
};
#[cfg(windows)]
pub(crate) use windows::{
    end_of_input, grow_pipe, hung_up, is_gone, is_not_a_directory, reap_orphan, receiver, resize,
    sender, spawn, ChildHandle, ExitWatch, Pipe, PipeHandle, Receiver, Sender, Spawned, Status,
};
