//! The platform door: everything that touches fds, signals and process creation directly.
//! The transport logic above it is portable; the implementation is Linux's (pidfds,
//! `posix_spawn` file actions, `close_range`).

#[cfg(not(target_os = "linux"))]
compile_error!("process-transport-real needs Linux: pidfds and posix_spawn file actions");

mod fork;
mod linux;
mod posix_spawn;

pub(crate) use linux::{end_of_input, grow_pipe, reap_orphan, resize, spawn, Pidfd, Pipe, Spawned};
