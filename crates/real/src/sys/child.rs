//! The handle on one started child: how it is signalled, how its exit is awaited and reaped.
//!
//! On Linux a pidfd, which can never reach another process that reused the pid. On the
//! portable path the pid itself, awaited through `SIGCHLD`; the pid stays the child's until it
//! is reaped, and the transport reaps it and forgets it under the lock that signals take, so a
//! signal never goes out through a reused pid there either.

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::sync::Arc;

use process_transport_api::Signal;
#[cfg(target_os = "linux")]
use tokio::io::{unix::AsyncFd, Interest};

/// How a child ended, as `waitid` tells it: the exit code, or the signal that ended it.
pub(crate) type Status = (Option<i32>, Option<i32>);

/// A started child, until it is reaped. Clones share it.
#[derive(Clone, Debug)]
pub(crate) enum ChildHandle {
    /// Linux: a pidfd.
    #[cfg(target_os = "linux")]
    Pidfd(Arc<OwnedFd>),
    /// The portable path: the pid.
    Pid(u32),
}

impl ChildHandle {
    /// The handle of `pid`, a child of this process that has not been reaped yet: a pidfd on
    /// Linux unless `portable`.
    pub(crate) fn new(pid: u32, portable: bool) -> io::Result<ChildHandle> {
        #[cfg(target_os = "linux")]
        if !portable {
            use rustix::process::{pidfd_open, PidfdFlags};
            let pid = rustix::process::Pid::from_raw(pid as i32)
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            return Ok(ChildHandle::Pidfd(Arc::new(pidfd_open(
                pid,
                PidfdFlags::empty(),
            )?)));
        }
        let _ = portable;
        Ok(ChildHandle::Pid(pid))
    }

    /// Sends `signal`; `ESRCH` means the child is gone.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        let number = raw_signal(signal);
        match self {
            #[cfg(target_os = "linux")]
            ChildHandle::Pidfd(fd) => {
                // Every number the kernel takes, as `kill` on the portable path does (glibc's
                // internal 32 and 33 included); the model refused the others already.
                let signal = rustix::process::Signal::from_named_raw(number)
                    .or_else(|| {
                        (1..=libc::SIGRTMAX())
                            .contains(&number)
                            // SAFETY: a signal number within the kernel's range.
                            .then(|| unsafe { rustix::process::Signal::from_raw_unchecked(number) })
                    })
                    .ok_or_else(|| not_a_signal(number))?;
                rustix::process::pidfd_send_signal(&**fd, signal)?;
                Ok(())
            }
            ChildHandle::Pid(pid) => {
                let pid = libc::pid_t::try_from(*pid).map_err(|_| not_a_signal(number))?;
                // SAFETY: kill takes plain numbers; the pid is our unreaped child's.
                if unsafe { libc::kill(pid, number) } == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }
        }
    }

    /// Reaps the child if it exited: `Some(status)`, `None` while it runs.
    pub(crate) fn try_reap(&self) -> io::Result<Option<Status>> {
        self.reap(true)
    }

    /// Waits, blocking, until the child exits, and reaps it.
    pub(crate) fn reap_blocking(&self) -> io::Result<Status> {
        self.reap(false)
            .map(|status| status.unwrap_or((None, None)))
    }

    fn reap(&self, no_hang: bool) -> io::Result<Option<Status>> {
        match self {
            #[cfg(target_os = "linux")]
            ChildHandle::Pidfd(fd) => {
                use rustix::process::{waitid, WaitId, WaitIdOptions};
                let mut options = WaitIdOptions::EXITED;
                if no_hang {
                    options |= WaitIdOptions::NOHANG;
                }
                let status = waitid(WaitId::PidFd(fd.as_fd()), options)?;
                Ok(status.map(|status| (status.exit_status(), status.terminating_signal())))
            }
            ChildHandle::Pid(pid) => {
                use rustix::process::{waitpid, Pid, WaitOptions};
                let pid = Pid::from_raw(*pid as i32)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
                let options = if no_hang {
                    WaitOptions::NOHANG
                } else {
                    WaitOptions::empty()
                };
                let status = waitpid(Some(pid), options)?;
                Ok(status.map(|(_, status)| (status.exit_status(), status.terminating_signal())))
            }
        }
    }

    /// What wakes a task waiting for the exit. Made before the first `try_reap`, so that an
    /// exit between the two is not missed.
    pub(crate) fn watch(&self) -> io::Result<ExitWatch> {
        match self {
            // A pidfd becomes readable when its process exits.
            #[cfg(target_os = "linux")]
            ChildHandle::Pidfd(fd) => {
                // SAFETY: the AsyncFd owns a clone of the Arc holding the pidfd, so the fd
                // stays open and the same for the AsyncFd's whole life.
                unsafe { AsyncFd::register_with_interest(fd.clone(), Interest::READABLE) }
                    .map(ExitWatch::Pidfd)
                    .map_err(|err| err.into_parts().1)
            }
            ChildHandle::Pid(_) => {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
                    .map(ExitWatch::Sigchld)
            }
        }
    }
}

fn not_a_signal(number: i32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{number} is not a signal number"),
    )
}

/// Wakes when the child may have exited.
pub(crate) enum ExitWatch {
    /// The pidfd's readiness.
    #[cfg(target_os = "linux")]
    Pidfd(AsyncFd<Arc<OwnedFd>>),
    /// Any child of the process changed state.
    Sigchld(tokio::signal::unix::Signal),
}

impl ExitWatch {
    /// Resolves at the next sign that the child may have exited.
    pub(crate) async fn changed(&mut self) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            ExitWatch::Pidfd(fd) => {
                let mut ready = fd.readable().await?;
                ready.clear_ready();
                Ok(())
            }
            ExitWatch::Sigchld(signal) => match signal.recv().await {
                Some(()) => Ok(()),
                None => Err(io::Error::other("the runtime's signal driver is gone")),
            },
        }
    }
}

/// The platform's number of `signal`, from the platform's constants; the model's
/// [`Signal::number`], which has no libc, must agree (tested below).
pub(crate) fn raw_signal(signal: Signal) -> i32 {
    match signal {
        Signal::Hup => libc::SIGHUP,
        Signal::Int => libc::SIGINT,
        Signal::Kill => libc::SIGKILL,
        Signal::Term => libc::SIGTERM,
        Signal::Stop => libc::SIGSTOP,
        Signal::Number(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_signal_numbers_are_the_platforms() {
        for signal in [
            Signal::Hup,
            Signal::Int,
            Signal::Kill,
            Signal::Term,
            Signal::Stop,
        ] {
            assert_eq!(signal.number(), raw_signal(signal), "{signal}");
        }
        assert_eq!(Signal::MAX_NUMBER, max_signal_number());
    }

    #[cfg(target_os = "linux")]
    fn max_signal_number() -> i32 {
        libc::SIGRTMAX()
    }

    #[cfg(not(target_os = "linux"))]
    fn max_signal_number() -> i32 {
        Signal::MAX_NUMBER
    }
}
