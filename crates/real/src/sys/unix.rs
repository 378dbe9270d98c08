//! Every unix: the pipes and the terminal of the child fd map, and the choice of spawn path.
//!
//! Every child-side fd is first duplicated (close-on-exec) above the highest target, so that
//! moving one into place in the child cannot clobber another. The child then gets exactly the
//! fds of its map: the spawn path closes, or marks close-on-exec, every other fd, even a
//! parent fd opened without close-on-exec.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use process_transport_api::{
    ChildFd, ChildFdMapping, PtySize, SpawnError, SpawnSpec, TransportError,
};
use rustix::io::fcntl_dupfd_cloexec;

use super::child::ChildHandle;
use super::fork;
use super::plan::{cloexec_pipe, open_file_limit, FdPlan, PtyPlan};
#[cfg(target_os = "linux")]
use super::posix_spawn;
use super::{executable, invalid, spawn_error, Pipe, Spawned};

/// The pipe capacity asked for: fewer, larger reads and writes than the 64 KiB default.
/// Refused sizes (over `pipe-max-size` for an unprivileged user) keep the default.
#[cfg(target_os = "linux")]
const PIPE_SIZE: usize = 1024 * 1024;

/// The parent's end of a pipe it writes, registered with the runtime.
pub(crate) type Sender = tokio::net::unix::pipe::Sender;

/// The parent's end of a pipe it reads, registered with the runtime.
pub(crate) type Receiver = tokio::net::unix::pipe::Receiver;

/// What the parent holds of a pipe: an fd (the growth of a pipe, a terminal's modes).
pub(crate) use std::os::fd::AsFd as PipeHandle;

/// What the spawn hands the transport of each pipe: the parent's end, non-blocking.
pub(crate) type PipeEnd = OwnedFd;

/// Whether the current runtime has its I/O driver. tokio panics at the first registration
/// when it has not, so one throwaway pipe is registered to find out before anything starts.
pub(crate) fn runtime_has_io() -> bool {
    let Ok((read, _write)) = rustix::pipe::pipe() else {
        // No pipe to try: the spawn's own pipes will report the cause.
        return true;
    };
    std::panic::catch_unwind(move || Receiver::from_owned_fd_unchecked(read).map(drop)).is_ok()
}

/// Registers the parent's end of a pipe it writes (non-blocking since it was made).
pub(crate) fn sender(end: OwnedFd) -> io::Result<Sender> {
    Sender::from_owned_fd_unchecked(end)
}

/// Registers the parent's end of a pipe it reads (non-blocking since it was made).
pub(crate) fn receiver(end: OwnedFd) -> io::Result<Receiver> {
    Receiver::from_owned_fd_unchecked(end)
}

/// Resolves once every reader of the pipe closed it: a write end reports an error then.
pub(crate) async fn hung_up(sender: &Sender) {
    let _ = sender.ready(tokio::io::Interest::ERROR).await;
}

/// Whether a signal failed only because the child is gone (`ESRCH`).
pub(crate) fn is_gone(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ESRCH)
}

/// Whether `err` says a part of a path is not a directory (`ENOTDIR`).
pub(crate) fn is_not_a_directory(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOTDIR)
}

/// Starts the child `spec` describes. On Linux, by `posix_spawn` (a vfork, fast) unless a uid
/// or gid change, a process group, an `argv[0]` or a pre-exec hook asks for a fork, and watched through a pidfd; on the portable path (every
/// other unix, or asked for), by fork and exec, and watched by its pid.
pub(crate) fn spawn(spec: &SpawnSpec, portable: bool) -> Result<Spawned, SpawnError> {
    if spec.get_creation_flags() != 0 {
        return Err(invalid(
            spec,
            format!(
                "creation_flags {:#x} are Windows process creation flags, which a unix child \
                 cannot have",
                spec.get_creation_flags()
            ),
        ));
    }
    let (plan, pipes) = if spec.get_use_pty() {
        plan_pty(spec)?
    } else {
        plan_fds(spec)?
    };
    let forked = portable
        || spec.get_uid().is_some()
        || spec.get_gid().is_some()
        || spec.get_process_group().is_some()
        || spec.get_arg0().is_some()
        || !spec.get_pre_exec().is_empty();
    #[cfg(target_os = "linux")]
    let pid = if forked {
        fork::spawn(spec, &plan, portable)?
    } else {
        posix_spawn::spawn(spec, &plan)?
    };
    #[cfg(not(target_os = "linux"))]
    let pid = {
        let _ = forked;
        fork::spawn(spec, &plan, true)?
    };
    // The parent's copies of the child's ends close here: the child has its own.
    drop(plan);
    let child = ChildHandle::new(pid, portable).map_err(|err| {
        // Without a handle the child can be neither waited for nor signalled safely.
        reap_at_once(pid);
        spawn_error(spec, err)
    })?;
    Ok(Spawned {
        pid,
        child,
        pipes,
        terminal: spec.get_use_pty(),
    })
}

fn reap_at_once(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    }
}

/// Checks that child fd `fd` can be placed: it and one spare fd above the highest target (the
/// spawn moves each fd there first) must fit under the open-file limit.
fn check_placeable(spec: &SpawnSpec, fd: ChildFd, limit: u64) -> Result<RawFd, SpawnError> {
    let fits = u64::from(fd.0) + 1 < limit;
    match RawFd::try_from(fd.0) {
        Ok(target) if fits => Ok(target),
        _ => Err(invalid(
            spec,
            format!(
                "cannot place child fd {fd}: it is above this process's open-file limit \
                 ({limit}, RLIMIT_NOFILE); child fds must be below {}",
                limit.saturating_sub(1)
            ),
        )),
    }
}

fn plan_fds(spec: &SpawnSpec) -> Result<(FdPlan, Vec<Pipe>), SpawnError> {
    let limit = open_file_limit();
    let targets: Vec<RawFd> = spec
        .get_child_fds()
        .keys()
        .map(|&fd| check_placeable(spec, fd, limit))
        .collect::<Result<_, _>>()?;
    let max_target = targets.iter().copied().max().unwrap_or(2).max(2);

    // Inherited fds are checked and duplicated before any pipe exists: a parent fd that is
    // not open must be refused, not be taken for one of this spawn's own pipes.
    let mut inherited = std::collections::BTreeMap::new();
    for (&fd, &mapping) in spec.get_child_fds() {
        if let ChildFdMapping::Inherit(parent) = mapping {
            // SAFETY: the fd is only borrowed for this one fcntl, which fails with EBADF
            // when it is not open; nothing keeps the borrow.
            let borrowed = unsafe { BorrowedFd::borrow_raw(parent) };
            let copy = fcntl_dupfd_cloexec(borrowed, 0).map_err(|_| {
                invalid(
                    spec,
                    format!("child fd {fd} inherits parent fd {parent}, which is not open"),
                )
            })?;
            inherited.insert(fd, copy);
        }
    }

    let mut pipes = Vec::new();
    let mut moves = Vec::new();
    for ((&fd, &mapping), &target) in spec.get_child_fds().iter().zip(&targets) {
        let child_side = match mapping {
            ChildFdMapping::ParentReads => {
                let (read, write) = new_pipe(spec, fd)?;
                pipes.push(Pipe::Reads(fd, nonblocking(spec, fd, read)?));
                write
            }
            ChildFdMapping::ParentWrites => {
                let (read, write) = new_pipe(spec, fd)?;
                pipes.push(Pipe::Writes(fd, nonblocking(spec, fd, write)?));
                read
            }
            ChildFdMapping::Inherit(parent) => inherited.remove(&fd).ok_or_else(|| {
                invalid(
                    spec,
                    format!("child fd {fd} inherits parent fd {parent}, not copied"),
                )
            })?,
            ChildFdMapping::Null => open_null(spec, fd)?,
        };
        // Usually above every target already (the parent holds 0, 1 and 2): no copy then.
        let above = if child_side.as_raw_fd() > max_target {
            child_side
        } else {
            fcntl_dupfd_cloexec(child_side.as_fd(), max_target + 1)
                .map_err(|err| invalid(spec, format!("cannot place child fd {fd}: {err}")))?
        };
        moves.push((above, target));
    }
    let plan = FdPlan {
        moves,
        targets,
        max_target,
        pty: None,
    };
    Ok((plan, pipes))
}

/// A new pseudo-terminal of the spec's size for fds 0, 1 and 2. The parent keeps its master
/// side, non-blocking, as two fds: one written (fd 0), one read (fd 1). The terminal closes,
/// and the child is hung up, once both are closed.
fn plan_pty(spec: &SpawnSpec) -> Result<(FdPlan, Vec<Pipe>), SpawnError> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let failed = |what: &str, err: rustix::io::Errno| {
        SpawnError::Io(io::Error::new(
            io::Error::from(err).kind(),
            format!(
                "cannot spawn {:?}: cannot {what} a pseudo-terminal: {err}",
                executable(spec)
            ),
        ))
    };
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY;
    let master = openpt(flags).map_err(|err| failed("open", err))?;
    rustix::io::fcntl_setfd(&master, rustix::io::FdFlags::CLOEXEC)
        .map_err(|err| failed("configure", err))?;
    grantpt(&master).map_err(|err| failed("grant", err))?;
    unlockpt(&master).map_err(|err| failed("unlock", err))?;
    let path = ptsname(&master, Vec::new()).map_err(|err| failed("name", err))?;
    // Held by the parent until the child has its own: the terminal is never without a
    // slave side before the child runs.
    let slave = rustix::fs::open(
        path.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|err| failed("open the child side of", err))?;
    set_size(&master, spec.get_pty_size().unwrap_or_default())
        .map_err(|err| failed("size", err))?;
    let flags = rustix::fs::fcntl_getfl(&master).map_err(|err| failed("configure", err))?;
    rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)
        .map_err(|err| failed("configure", err))?;
    let reader = fcntl_dupfd_cloexec(&master, 3).map_err(|err| failed("copy", err))?;
    let slave_above = fcntl_dupfd_cloexec(&slave, 3).map_err(|err| failed("copy", err))?;
    drop(slave);
    let plan = FdPlan {
        moves: Vec::new(),
        targets: vec![0, 1, 2],
        max_target: 2,
        pty: Some(PtyPlan {
            path,
            slave: slave_above,
        }),
    };
    let pipes = vec![
        Pipe::Writes(ChildFd::STDIN, master),
        Pipe::Reads(ChildFd::STDOUT, reader),
    ];
    Ok((plan, pipes))
}

/// Sets the size of the terminal whose master side is `master`; the kernel sends `SIGWINCH`
/// to its foreground process group.
/// `Ok` and nothing done when the child's side is gone: there is nobody to tell.
pub(crate) fn resize(master: &impl AsFd, size: PtySize) -> Result<(), TransportError> {
    match set_size(master, size) {
        Err(rustix::io::Errno::IO) | Ok(()) => Ok(()),
        Err(err) => Err(TransportError::Io(err.into())),
    }
}

fn set_size(master: &impl AsFd, size: PtySize) -> rustix::io::Result<()> {
    rustix::termios::tcsetwinsize(
        master,
        rustix::termios::Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
}

/// What the parent types to end a terminal's input, as a user types control-D: the
/// terminal's `VEOF` character, twice after an unfinished line in canonical mode (the first
/// only hands the line over).
pub(crate) fn end_of_input(master: &impl AsFd, at_line_start: bool) -> Vec<u8> {
    use rustix::termios::{LocalModes, SpecialCodeIndex};
    match rustix::termios::tcgetattr(master) {
        Ok(termios) => {
            let eof = termios.special_codes[SpecialCodeIndex::VEOF];
            let canonical = termios.local_modes.contains(LocalModes::ICANON);
            if canonical && !at_line_start {
                vec![eof, eof]
            } else {
                vec![eof]
            }
        }
        Err(_) => vec![0x04],
    }
}

/// Opens the null device, read-write as the child may read or write the fd.
fn open_null(spec: &SpawnSpec, fd: ChildFd) -> Result<OwnedFd, SpawnError> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|err| {
        invalid(
            spec,
            format!("cannot open /dev/null for child fd {fd}: {err}"),
        )
    })
}

fn new_pipe(spec: &SpawnSpec, fd: ChildFd) -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let (read, write) = cloexec_pipe().map_err(|err| {
        invalid(
            spec,
            format!("cannot create the pipe for child fd {fd}: {err}"),
        )
    })?;
    // Left at the kernel's default size: a pipe grows when it gets busy (`grow_pipe`), which
    // keeps the spawn of a quiet child fast.
    Ok((read, write))
}

/// The parent's end of a pipe, made non-blocking (the child's end stays blocking).
fn nonblocking(spec: &SpawnSpec, fd: ChildFd, end: OwnedFd) -> Result<OwnedFd, SpawnError> {
    rustix::fs::fcntl_setfl(&end, rustix::fs::OFlags::NONBLOCK).map_err(|err| {
        invalid(
            spec,
            format!("cannot configure the pipe for child fd {fd}: {err}"),
        )
    })?;
    Ok(end)
}

/// Makes the pipe of `end` hold 1 MiB, for a pipe that carries a lot: fewer, larger reads and
/// writes. Best effort: the kernel may refuse (`/proc/sys/fs/pipe-max-size`, the per-user
/// limit) and the pipe keeps its size. Only Linux can resize a pipe; elsewhere this does
/// nothing.
pub(crate) fn grow_pipe(end: &impl AsFd) {
    #[cfg(target_os = "linux")]
    let _ = rustix::pipe::fcntl_setpipe_size(end.as_fd(), PIPE_SIZE);
    #[cfg(not(target_os = "linux"))]
    let _ = end;
}
