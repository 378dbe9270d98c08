//! The platform door: everything that touches fds, signals and process creation directly.
//! The transport logic above it is portable. Every unix takes the portable path (fork and
//! exec, the child awaited by its pid through `SIGCHLD`, pipes of the kernel's default size);
//! Linux also has its fast paths (pidfds, `posix_spawn` file actions, `close_range`, larger
//! pipes), unless the portable path is asked for.

#[cfg(not(unix))]
compile_error!("process-transport-real runs child processes on unix systems only");

mod child;
mod fork;
#[cfg(target_os = "linux")]
mod posix_spawn;
mod unix;

pub(crate) use child::{reap_orphan, ChildHandle, ExitWatch, Status};
pub(crate) use unix::{end_of_input, grow_pipe, resize, spawn, Pipe, Spawned};
