//! What every unix spawn path is given and shares: the plan of the child's fds, the pipe that
//! reports a failed exec, and the open-file limit the fds stay under.

use std::os::fd::{OwnedFd, RawFd};

/// Where each child fd comes from: fds above every target, to be moved into place.
pub(super) struct FdPlan {
    pub(super) moves: Vec<(OwnedFd, RawFd)>,
    pub(super) targets: Vec<RawFd>,
    pub(super) max_target: RawFd,
    /// The terminal that becomes the child's fds 0, 1 and 2, when it asked for one.
    pub(super) pty: Option<PtyPlan>,
}

/// The child's side of a new pseudo-terminal: the child opens it by path after it starts a
/// new session (which makes it the controlling terminal), or, on the fork path, takes this
/// fd and makes it the controlling terminal with `TIOCSCTTY`.
pub(super) struct PtyPlan {
    /// Opened by path on the `posix_spawn` path, which Linux alone takes.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(super) path: std::ffi::CString,
    pub(super) slave: OwnedFd,
}

/// The soft limit on open fds (`RLIMIT_NOFILE`): every fd number stays below it.
pub(super) fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// A pipe whose two ends close on exec.
pub(super) fn cloexec_pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
    }
    // No pipe2 here: the ends are marked at once, as the standard library does.
    #[cfg(target_vendor = "apple")]
    {
        let (read, write) = rustix::pipe::pipe()?;
        for end in [&read, &write] {
            rustix::io::fcntl_setfd(end, rustix::io::FdFlags::CLOEXEC)?;
        }
        Ok((read, write))
    }
}
