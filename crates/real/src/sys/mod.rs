//! The platform door: everything that touches fds, signals and process creation directly.
//! The transport logic above it is portable; only Unix is implemented.

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(not(unix))]
compile_error!("process-transport-real supports Unix only");

pub(crate) use imp::{prepare, Pidfd, Pipe, Prepared};
