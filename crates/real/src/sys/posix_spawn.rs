//! The fast spawn path: `posix_spawn`, which glibc runs as a vfork, with file actions that
//! lay out the child fd map and close everything else.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::ptr;

use process_transport_api::{SpawnError, SpawnSpec};
use rustix::fs::{access, Access};

use super::unix::{invalid, spawn_error, FdPlan};

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
    let env = spec.get_env().resolve(std::env::vars_os());
    let program = resolve(spec, &env)?;
    let program = c_string(spec, program.into_os_string().into_vec())?;

    let argv: Vec<CString> = std::iter::once(spec.get_executable())
        .chain(spec.get_args().iter().map(OsString::as_os_str))
        .map(|arg| c_string(spec, arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(key, value)| {
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            c_string(spec, entry)
        })
        .collect::<Result<_, _>>()?;
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
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

    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the program path, the actions and the
    // attributes objects, and the NUL-terminated argv and envp arrays of live CStrings.
    let code = unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attributes.0,
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
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

/// Finds the program as `execvp` would: a name with a slash is used as is; a bare name is
/// looked up in the child's `PATH` if the spec sets one, else the parent's.
fn resolve(spec: &SpawnSpec, env: &BTreeMap<OsString, OsString>) -> Result<PathBuf, SpawnError> {
    let executable = spec.get_executable();
    if executable.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(executable));
    }
    let sets_path = spec
        .get_env()
        .vars()
        .any(|(key, value)| key == "PATH" && value.is_some());
    let search = if sets_path {
        env.get(OsStr::new("PATH")).cloned()
    } else {
        std::env::var_os("PATH")
    }
    .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));

    let mut denied = false;
    for dir in std::env::split_paths(&search) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let candidate = dir.join(executable);
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if access(&candidate, Access::EXEC_OK).is_ok() {
                    return Ok(candidate);
                }
                denied = true;
            }
            _ => {}
        }
    }
    let executable = executable.to_string_lossy().into_owned();
    Err(if denied {
        SpawnError::PermissionDenied(executable)
    } else {
        SpawnError::NotFound(executable)
    })
}
