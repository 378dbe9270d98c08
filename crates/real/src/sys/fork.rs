//! The spawn path for what `posix_spawn` is not asked to do (a uid or gid change, a process
//! group, an `argv[0]` of its own, pre-exec hooks): the standard library's fork and exec,
//! with a pre-exec hook that lays out the child fd map before the caller's hooks run.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use process_transport_api::{SpawnError, SpawnSpec};
use rustix::io::fcntl_dupfd_cloexec;

use super::plan::FdPlan;
use super::{invalid, spawn_error};

/// Starts the child; returns its pid. The standard library's `Child` is dropped at once: the
/// caller reaps the child through its handle. `portable` keeps to calls every unix has.
pub(super) fn spawn(spec: &SpawnSpec, plan: &FdPlan, portable: bool) -> Result<u32, SpawnError> {
    let mut command = Command::new(spec.get_executable());
    command.args(spec.get_args());
    if let Some(arg0) = spec.get_arg0() {
        command.arg0(arg0);
    }
    if let Some(pgid) = spec.get_process_group() {
        command.process_group(pgid);
    }
    if !spec.get_env().inherits() {
        command.env_clear();
    }
    for (key, value) in spec.get_env().vars() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    // The working directory is entered by the hook below, after the uid change (so the new
    // user's rights count), and a failure there is told apart from one of the executable.
    let cwd = spec
        .get_cwd()
        .map(|cwd| CString::new(cwd.as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| invalid(spec, "the working directory holds a NUL byte"))?;
    if let Some(uid) = spec.get_uid() {
        command.uid(uid);
    }
    if let Some(gid) = spec.get_gid() {
        command.gid(gid);
    }
    // Occupy every free target number until the spawn returns, so that the standard
    // library's own close-on-exec pipe (which reports exec errors) cannot be given one of
    // them and then be overwritten by the map.
    let reservations = reserve(spec, &plan.targets)?;
    // The hook writes one byte here when entering the working directory fails.
    let (cwd_failed, cwd_report) = super::plan::cloexec_pipe()
        .map_err(|err| invalid(spec, format!("cannot create a pipe: {err}")))?;
    let hook = ChildPlan {
        cwd,
        cwd_report: cwd_report.as_raw_fd(),
        moves: match &plan.pty {
            Some(pty) => [0, 1, 2].map(|to| (pty.slave.as_raw_fd(), to)).to_vec(),
            None => plan
                .moves
                .iter()
                .map(|(from, to)| (from.as_raw_fd(), *to))
                .collect(),
        },
        terminal: plan.pty.is_some(),
        targets: plan.targets.clone(),
        max_target: plan.max_target,
        close_range: cfg!(target_os = "linux") && !portable,
        // Every fd number is below the open-file limit. An unlimited or huge limit is cut to
        // 65,536: one `fcntl` per number, in the child before its exec, would otherwise cost
        // more than the spawn (a million of them take about a third of a second).
        fd_limit: super::plan::open_file_limit().min(1 << 16) as RawFd,
    };
    // SAFETY: the hook runs in the forked child before exec and only makes the
    // async-signal-safe calls of `ChildPlan::apply`; it allocates nothing.
    unsafe {
        command.pre_exec(move || hook.apply());
    }
    for user_hook in spec.get_pre_exec() {
        let user_hook = user_hook.clone();
        // SAFETY: the caller of `SpawnSpec::pre_exec` promised what std's `pre_exec` asks:
        // the hook is fit to run between fork and exec. It runs after the map is in place.
        unsafe {
            command.pre_exec(move || user_hook.run());
        }
    }
    let spawned = command.spawn();
    drop(reservations);
    drop(cwd_report);
    match spawned {
        Ok(child) => Ok(child.id()),
        Err(err) if reported(&cwd_failed) => Err(cwd_error(spec, err)),
        Err(err) => Err(spawn_error(spec, err)),
    }
}

/// `true` when the child wrote to the report pipe before it exited.
fn reported(read_end: &OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(rustix::io::read(read_end, &mut byte), Ok(1))
}

fn cwd_error(spec: &SpawnSpec, err: io::Error) -> SpawnError {
    let cwd = spec.get_cwd().map(|cwd| cwd.display().to_string());
    let who = match spec.get_uid() {
        Some(uid) => format!(" as uid {uid}"),
        None => String::new(),
    };
    SpawnError::Io(io::Error::new(
        err.kind(),
        format!(
            "cannot spawn {:?}: working directory {} cannot be entered{who}: {err}",
            spec.get_executable().to_string_lossy(),
            cwd.unwrap_or_default(),
        ),
    ))
}

fn reserve(spec: &SpawnSpec, targets: &[RawFd]) -> Result<Vec<OwnedFd>, SpawnError> {
    let null = std::fs::File::open("/dev/null")
        .map_err(|err| invalid(spec, format!("cannot open /dev/null: {err}")))?;
    Ok(targets
        .iter()
        .filter_map(|&target| {
            fcntl_dupfd_cloexec(null.as_fd(), target)
                .ok()
                .filter(|reserved| reserved.as_raw_fd() == target)
        })
        .collect())
}

/// What the child does between fork and exec.
struct ChildPlan {
    /// The working directory to enter, if any.
    cwd: Option<CString>,
    /// Where to write one byte when entering `cwd` fails.
    cwd_report: RawFd,
    /// (fd above every target, target) pairs.
    moves: Vec<(RawFd, RawFd)>,
    targets: Vec<RawFd>,
    max_target: RawFd,
    /// fds 0, 1 and 2 are a terminal: the child leads a new session with it as its
    /// controlling terminal.
    terminal: bool,
    /// Mark the fds above the map close-on-exec with one `close_range` (Linux), not one
    /// `fcntl` per fd number.
    close_range: bool,
    /// The open-file limit, at most 65,536: the fds below it are marked one by one.
    fd_limit: RawFd,
}

impl ChildPlan {
    fn apply(&self) -> io::Result<()> {
        // SAFETY (block): plain syscalls on fd and signal numbers, each async-signal-safe; no
        // memory is allocated or freed.
        unsafe {
            if let Some(cwd) = &self.cwd {
                if libc::chdir(cwd.as_ptr()) != 0 {
                    let err = io::Error::last_os_error();
                    libc::write(self.cwd_report, b"c".as_ptr().cast(), 1);
                    return Err(err);
                }
            }
            if self.terminal && libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            for &(from, to) in &self.moves {
                if libc::dup2(from, to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if self.terminal && libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            for fd in 0..=self.max_target {
                if !self.targets.contains(&fd) {
                    // Close-on-exec rather than close: the standard library may still need
                    // one of them to report an exec failure.
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            if !self.close_range || !mark_with_close_range(self.max_target + 1) {
                for fd in (self.max_target + 1)..self.fd_limit {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            for signal in 1..=highest_signal() {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
        }
        Ok(())
    }
}

/// Marks every fd from `first` up close-on-exec with one system call; `false` when the kernel
/// cannot (before Linux 5.11).
#[cfg(target_os = "linux")]
unsafe fn mark_with_close_range(first: RawFd) -> bool {
    // SAFETY: a plain system call on fd numbers; async-signal-safe.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    marked == 0
}

#[cfg(not(target_os = "linux"))]
unsafe fn mark_with_close_range(_first: RawFd) -> bool {
    false
}

/// The highest signal number: every signal from 1 to it is reset in the child, as the fast
/// path's `posix_spawn` resets them (glibc refuses its two internal ones to `signal`, and its
/// `posix_spawn` leaves them ignored too).
fn highest_signal() -> libc::c_int {
    #[cfg(target_os = "linux")]
    {
        libc::SIGRTMAX()
    }
    #[cfg(not(target_os = "linux"))]
    {
        31
    }
}
