//! Unix: pipes, the child fd map, pidfds and signals.
//!
//! The child fd map is applied in the forked child by a `pre_exec` hook that only calls
//! async-signal-safe functions: `dup2`, `fcntl`, `close_range`, `signal`. Every child-side
//! fd is first duplicated (close-on-exec) above the highest target, so that moving one into
//! place cannot clobber another; every other fd of the child is marked close-on-exec, so
//! that even a parent fd opened without close-on-exec does not reach the exec'd program.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use process_transport_api::{ChildFd, ChildFdMapping, Signal, SpawnError, SpawnSpec};
use rustix::io::fcntl_dupfd_cloexec;
use rustix::pipe::{pipe_with, PipeFlags};

/// The parent's end of one pipe of the map.
pub(crate) enum Pipe {
    /// The parent reads what the child writes on this fd.
    Reads(ChildFd, OwnedFd),
    /// The parent writes what the child reads on this fd.
    Writes(ChildFd, OwnedFd),
}

/// A command ready to spawn, with the parent's pipe ends. Dropping it closes everything.
pub(crate) struct Prepared {
    pub(crate) command: Command,
    pub(crate) pipes: Vec<Pipe>,
    /// The child-side fds (above every target) and the reservations of free target numbers;
    /// they must stay open until the spawn returns, then be dropped.
    pub(crate) keep_until_spawned: Vec<OwnedFd>,
}

fn invalid(spec: &SpawnSpec, why: impl std::fmt::Display) -> SpawnError {
    SpawnError::InvalidSpec(format!(
        "cannot spawn {:?}: {why}",
        spec.get_executable().to_string_lossy()
    ))
}

/// Builds the command and the pipes for `spec`.
pub(crate) fn prepare(spec: &SpawnSpec) -> Result<Prepared, SpawnError> {
    let mut command = Command::new(spec.get_executable());
    command.args(spec.get_args());
    if !spec.get_env().inherits() {
        command.env_clear();
    }
    for (key, value) in spec.get_env().vars() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    if let Some(cwd) = spec.get_cwd() {
        command.current_dir(cwd);
    }
    if let Some(uid) = spec.get_uid() {
        command.uid(uid);
    }
    if let Some(gid) = spec.get_gid() {
        command.gid(gid);
    }
    if spec.get_use_pty() {
        return Err(invalid(
            spec,
            "a pseudo-terminal (use_pty) is not supported by this transport",
        ));
    }

    let targets: Vec<RawFd> = spec
        .get_child_fds()
        .keys()
        .map(|fd| {
            RawFd::try_from(fd.0).map_err(|_| invalid(spec, format!("child fd {fd} is too large")))
        })
        .collect::<Result<_, _>>()?;
    let max_target = targets.iter().copied().max().unwrap_or(2).max(2);
    let above = max_target + 1;

    let mut pipes = Vec::new();
    let mut keep = Vec::new();
    let mut moves = Vec::new();
    for ((&fd, &mapping), &target) in spec.get_child_fds().iter().zip(&targets) {
        let child_side = match mapping {
            ChildFdMapping::ParentReads => {
                let (read, write) =
                    pipe_with(PipeFlags::CLOEXEC).map_err(|e| pipe_error(spec, fd, e))?;
                pipes.push(Pipe::Reads(fd, read));
                write
            }
            ChildFdMapping::ParentWrites => {
                let (read, write) =
                    pipe_with(PipeFlags::CLOEXEC).map_err(|e| pipe_error(spec, fd, e))?;
                pipes.push(Pipe::Writes(fd, write));
                read
            }
            ChildFdMapping::Inherit(parent) => {
                // SAFETY: the fd is only borrowed for the fcntl call below, which fails with
                // EBADF if it is not open; nothing outlives this statement.
                let borrowed = unsafe { BorrowedFd::borrow_raw(parent) };
                fcntl_dupfd_cloexec(borrowed, 0).map_err(|_| {
                    invalid(
                        spec,
                        format!("child fd {fd} inherits parent fd {parent}, which is not open"),
                    )
                })?
            }
        };
        let high = fcntl_dupfd_cloexec(child_side.as_fd(), above)
            .map_err(|e| invalid(spec, format!("cannot place child fd {fd}: {e}")))?;
        moves.push((high.as_raw_fd(), target));
        keep.push(high);
    }
    // Occupy every free target number until the spawn returns, so that the standard
    // library's own close-on-exec pipe (which reports exec errors) cannot be given one of
    // them and then be overwritten by the map.
    let devnull = std::fs::File::open("/dev/null")
        .map_err(|e| invalid(spec, format!("cannot open /dev/null: {e}")))?;
    for &target in &targets {
        if let Ok(reserved) = fcntl_dupfd_cloexec(devnull.as_fd(), target) {
            if reserved.as_raw_fd() == target {
                keep.push(reserved);
            }
        }
    }

    let plan = ChildPlan {
        moves,
        targets,
        max_target,
    };
    // SAFETY: the hook runs in the forked child before exec and only calls the
    // async-signal-safe functions listed in `ChildPlan::apply`; it allocates nothing.
    unsafe {
        command.pre_exec(move || plan.apply());
    }
    Ok(Prepared {
        command,
        pipes,
        keep_until_spawned: keep,
    })
}

fn pipe_error(spec: &SpawnSpec, fd: ChildFd, err: rustix::io::Errno) -> SpawnError {
    invalid(
        spec,
        format!("cannot create the pipe for child fd {fd}: {err}"),
    )
}

/// What the child does between fork and exec.
struct ChildPlan {
    /// (fd above every target, target) pairs.
    moves: Vec<(RawFd, RawFd)>,
    targets: Vec<RawFd>,
    max_target: RawFd,
}

impl ChildPlan {
    fn apply(&self) -> io::Result<()> {
        // SAFETY (whole block): plain syscalls on fd numbers and signal numbers, each
        // async-signal-safe; no memory is allocated or freed.
        unsafe {
            for &(from, to) in &self.moves {
                if libc::dup2(from, to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for fd in 0..=self.max_target {
                if !self.targets.contains(&fd) {
                    // Close-on-exec rather than close: the standard library may still need one
                    // of them to report an exec failure.
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            let first = (self.max_target + 1) as libc::c_uint;
            let done = libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if done != 0 {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                    limit.rlim_cur.min(1 << 20) as RawFd
                } else {
                    4096
                };
                for fd in (self.max_target + 1)..max {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            // Default dispositions for every signal the parent may have ignored.
            for signal in 1..32 {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
        }
        Ok(())
    }
}

/// A handle that signals one child without ever reaching a reused pid: a pidfd on Linux, the
/// plain pid elsewhere (where the caller stops using it once the child is reaped).
#[derive(Debug)]
pub(crate) enum Pidfd {
    #[cfg(target_os = "linux")]
    Fd(OwnedFd),
    Pid(u32),
}

impl Pidfd {
    /// Opens the handle for `pid`, a child of this process that has not been reaped yet.
    pub(crate) fn open(pid: u32) -> Pidfd {
        #[cfg(target_os = "linux")]
        if let Some(raw) = rustix::process::Pid::from_raw(pid as i32) {
            if let Ok(fd) = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
                return Pidfd::Fd(fd);
            }
        }
        Pidfd::Pid(pid)
    }

    /// Sends `signal`; `ESRCH` means the child is gone.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        let number = raw_signal(signal);
        let signal = rustix::process::Signal::from_named_raw(number)
            .or_else(|| {
                (libc::SIGRTMIN()..=libc::SIGRTMAX())
                    .contains(&number)
                    // SAFETY: a real-time signal number in the platform's range.
                    .then(|| unsafe { rustix::process::Signal::from_raw_unchecked(number) })
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{number} is not a signal number"),
                )
            })?;
        match self {
            #[cfg(target_os = "linux")]
            Pidfd::Fd(fd) => rustix::process::pidfd_send_signal(fd, signal)?,
            Pidfd::Pid(pid) => {
                let pid = rustix::process::Pid::from_raw(*pid as i32)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
                rustix::process::kill_process(pid, signal)?
            }
        }
        Ok(())
    }
}

/// The platform's number of `signal`.
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
