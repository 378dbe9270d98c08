//! The fast spawn path: `posix_spawn`, which glibc runs as a vfork, with file actions that
//! lay out the child fd map and close everything else.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::ptr;

use process_transport_api::{SpawnError, SpawnSpec};
use rustix::fs::{access, Access, FileType};

use super::plan::FdPlan;
use super::{invalid, spawn_error};

/// Owns an initialised `posix_spawn_file_actions_t`.
struct FileActions(libc::posix_spawn_file_actions_t);

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `FileActions::new` and destroyed once, here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

impl FileActions {
    fn new() -> io::Result<Self> {
        let mut raw = MaybeUninit::uninit();
        // SAFETY: init fills the value in; on success it is initialised.
        check(unsafe { libc::posix_spawn_file_actions_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        Ok(FileActions(unsafe { raw.assume_init() }))
    }
}

/// Owns an initialised `posix_spawnattr_t`.
struct Attributes(libc::posix_spawnattr_t);

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `Attributes::new` and destroyed once, here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

impl Attributes {
    /// Attributes that give the child an empty signal mask and every signal's default action,
    /// and with `new_session`, a session of its own.
    fn defaults(new_session: bool) -> io::Result<Self> {
        let mut raw = MaybeUninit::uninit();
        // SAFETY: init fills the value in; on success it is initialised.
        check(unsafe { libc::posix_spawnattr_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        let mut attributes = Attributes(unsafe { raw.assume_init() });
        // SAFETY: the sets are initialised by sigemptyset/sigfillset before use; the attribute
        // object is initialised.
        unsafe {
            let mut empty = MaybeUninit::uninit();
            libc::sigemptyset(empty.as_mut_ptr());
            check(libc::posix_spawnattr_setsigmask(
                &mut attributes.0,
                empty.as_ptr(),
            ))?;
            let mut all = MaybeUninit::uninit();
            libc::sigfillset(all.as_mut_ptr());
            check(libc::posix_spawnattr_setsigdefault(
                &mut attributes.0,
                all.as_ptr(),
            ))?;
            let mut flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            if new_session {
                flags |= libc::POSIX_SPAWN_SETSID as libc::c_int;
            }
            check(libc::posix_spawnattr_setflags(
                &mut attributes.0,
                flags as libc::c_short,
            ))?;
        }
        Ok(attributes)
    }
}

fn check(code: libc::c_int) -> io::Result<()> {
    match code {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

fn c_string(spec: &SpawnSpec, bytes: impl Into<Vec<u8>>) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| invalid(spec, "a string holds a NUL byte"))
}

/// Starts the child; returns its pid.
pub(super) fn spawn(spec: &SpawnSpec, plan: &FdPlan) -> Result<u32, SpawnError> {
    let (envp, path) = environment(spec)?;
    let program = resolve(spec, path.as_deref())?;
    let argv: Vec<CString> = std::iter::once(spec.get_executable())
        .chain(spec.get_args().iter().map(OsString::as_os_str))
        .map(|arg| c_string(spec, arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let argv_ptrs = null_terminated(&argv);
    let built_envp = match &envp {
        Envp::Built(strings) => Some(null_terminated(strings)),
        Envp::Parent => None,
    };
    let cwd = spec
        .get_cwd()
        .map(|cwd| c_string(spec, cwd.as_os_str().as_bytes()))
        .transpose()?;

    let os_error = |err: io::Error| spawn_error(spec, err);
    let mut actions = FileActions::new().map_err(os_error)?;
    // SAFETY (block): each call gets the initialised actions object and plain fd numbers or a
    // NUL-terminated path that outlives the spawn below.
    unsafe {
        if let Some(pty) = &plan.pty {
            // After the new session (which glibc makes before the file actions): opening the
            // terminal without O_NOCTTY makes it the controlling terminal.
            check(libc::posix_spawn_file_actions_addopen(
                &mut actions.0,
                0,
                pty.path.as_ptr(),
                libc::O_RDWR,
                0,
            ))
            .map_err(os_error)?;
            for fd in [1, 2] {
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut actions.0,
                    0,
                    fd,
                ))
                .map_err(os_error)?;
            }
        }
        for (from, to) in &plan.moves {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions.0,
                from.as_raw_fd(),
                *to,
            ))
            .map_err(os_error)?;
        }
        for fd in 0..=plan.max_target {
            if !plan.targets.contains(&fd) {
                check(libc::posix_spawn_file_actions_addclose(&mut actions.0, fd))
                    .map_err(os_error)?;
            }
        }
        check(libc::posix_spawn_file_actions_addclosefrom_np(
            &mut actions.0,
            plan.max_target + 1,
        ))
        .map_err(os_error)?;
        if let Some(cwd) = &cwd {
            check(libc::posix_spawn_file_actions_addchdir_np(
                &mut actions.0,
                cwd.as_ptr(),
            ))
            .map_err(os_error)?;
        }
    }
    let attributes = Attributes::defaults(plan.pty.is_some()).map_err(os_error)?;

    let envp_ptr = match &built_envp {
        Some(built) => built.as_ptr(),
        // SAFETY: reads the pointer only; `posix_spawn` reads the array as `execve` does. The
        // environment changes only through `std::env::set_var` and `remove_var`, whose
        // contract rules out any other thread reading it meanwhile by other means.
        None => unsafe { environ }.cast::<*mut libc::c_char>(),
    };
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the program path, the actions and the
    // attributes objects, the NUL-terminated argv array of live CStrings, and the envp array:
    // live CStrings too, or the process's own environment.
    let code = unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attributes.0,
            argv_ptrs.as_ptr(),
            envp_ptr,
        )
    };
    check(code).map_err(os_error)?;
    Ok(pid as u32)
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

extern "C" {
    /// The process's environment, as `execve` takes it (`environ(7)`).
    static environ: *const *const libc::c_char;
}

/// The child's environment.
enum Envp {
    /// The parent's own, unchanged: its `environ` is handed to the spawn as it is, as the
    /// standard library's `Command` does, with no copy.
    Parent,
    /// One built for the child: `KEY=VALUE` strings.
    Built(Vec<CString>),
}

/// The child's environment, and the `PATH` its program is looked up in: the one the spec sets,
/// else the parent's (as `execvp` in the child would).
fn environment(spec: &SpawnSpec) -> Result<(Envp, Option<OsString>), SpawnError> {
    let changes = spec.get_env();
    if changes.inherits() && changes.vars().next().is_none() {
        return Ok((Envp::Parent, std::env::var_os("PATH")));
    }
    let env = changes.resolve(std::env::vars_os());
    let sets_path = changes
        .vars()
        .any(|(key, value)| key == "PATH" && value.is_some());
    let path = if sets_path {
        env.get(OsStr::new("PATH")).cloned()
    } else {
        std::env::var_os("PATH")
    };
    let envp = env
        .iter()
        .map(|(key, value)| {
            let mut entry = Vec::with_capacity(key.len() + value.len() + 2);
            entry.extend_from_slice(key.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            c_string(spec, entry)
        })
        .collect::<Result<_, _>>()?;
    Ok((Envp::Built(envp), path))
}

/// Finds the program as `execvp` would: a name with a slash is used as is; a bare name is
/// looked up in `path` (the default `/usr/local/bin:/usr/bin:/bin` when there is none), and
/// the first executable regular file wins. One `access` per directory, and no allocation but
/// the one buffer the candidates are written into.
fn resolve(spec: &SpawnSpec, path: Option<&OsStr>) -> Result<CString, SpawnError> {
    let executable = spec.get_executable().as_bytes();
    if executable.contains(&b'/') {
        return c_string(spec, executable);
    }
    let path = path.map_or(&b"/usr/local/bin:/usr/bin:/bin"[..], OsStrExt::as_bytes);
    let mut candidate = Vec::with_capacity(path.len() + executable.len() + 2);
    let mut denied = false;
    for dir in path.split(|&byte| byte == b':') {
        candidate.clear();
        candidate.extend_from_slice(if dir.is_empty() { b"." } else { dir });
        candidate.push(b'/');
        candidate.extend_from_slice(executable);
        candidate.push(0);
        let Ok(name) = CStr::from_bytes_with_nul(&candidate) else {
            // A NUL byte in the name or in this directory: nothing by that name can exist.
            continue;
        };
        let executable_here = access(name, Access::EXEC_OK);
        // Directories are searchable, so `access` passes them: only a regular file counts.
        let regular = || {
            rustix::fs::stat(name)
                .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile)
        };
        match executable_here {
            Ok(()) if regular() => {
                candidate.pop();
                return c_string(spec, candidate);
            }
            Err(rustix::io::Errno::ACCESS) if regular() => denied = true,
            _ => {}
        }
    }
    let executable = spec.get_executable().to_string_lossy().into_owned();
    Err(if denied {
        SpawnError::PermissionDenied(executable)
    } else {
        SpawnError::NotFound(executable)
    })
}
