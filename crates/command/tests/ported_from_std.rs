//! The standard library's own process tests, ported to `blocking` by changing the imports:
//! the platform-neutral unix ones of `library/std/src/process/tests.rs`, two of
//! `library/std/src/sys/process/unix/unix/tests.rs`, `library/std/tests/process_spawning.rs`,
//! and five run-pass programs of `tests/ui/process` (as `ui_*`; the others re-run their own
//! binary as the child, print to a closed pipe, or are Windows only).
//! They run on the default spawner (real processes) and, where a twin means something, on the
//! fakes.
//!
//! Left out: the Windows-only tests (`test_creation_flags`, `test_proc_thread_attributes`,
//! `env_empty`, `run_bat_script`; the Windows transport has its own, run under Wine) and
//! `test_capture_env_at_spawn`, which changes this process's environment while other tests of
//! the binary run (the real spawner, like std, reads the environment at the spawn).

#![cfg(unix)]

use std::io::prelude::*;
use std::io::ErrorKind;
use std::sync::Arc;

use process_transport_command::blocking::{Command, Output, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};

fn known_command() -> Command {
    Command::new("echo")
}

fn shell_cmd() -> Command {
    Command::new("/bin/sh")
}

fn env_cmd() -> Command {
    Command::new("env")
}

/// Runs `test` on real processes, then with the fakes' twins of its programs in scope.
fn on_real_and_fake(test: fn()) {
    test();
    let reactor = MemoryProcessReactor::strict();
    for (script, twin) in [
        ("true", Script::new().exit(0)),
        ("false", Script::new().exit(1)),
        ("echo foobar", Script::new().stdout("foobar\n").exit(0)),
        ("echo hello", Script::new().stdout("hello\n").exit(0)),
        ("pwd", Script::new().stdout("/\n").exit(0)),
        (
            "read line; echo $line",
            Script::new().holds_stdin().on_stdin_eof(|child| {
                let line = child.read(process_transport_api::ChildFd::STDIN);
                let _ = child.write(
                    process_transport_api::ChildFd::STDOUT,
                    [&line[..], b"\n"].concat(),
                );
                child.exit(0);
            }),
        ),
    ] {
        reactor.register(["/bin/sh", "-c", script], twin);
    }
    let _guard = process_transport_command::set_default(Arc::new(reactor));
    test();
}

#[test]
fn smoke() {
    on_real_and_fake(|| {
        let p = shell_cmd().arg("-c").arg("true").spawn();
        assert!(p.is_ok());
        let mut p = p.unwrap();
        assert!(p.wait().unwrap().success());
    });
}

#[test]
fn smoke_failure() {
    assert!(Command::new("if-this-is-a-binary-then-the-world-has-ended")
        .spawn()
        .is_err());
}

#[test]
fn exit_reported_right() {
    on_real_and_fake(|| {
        let mut p = shell_cmd().arg("-c").arg("false").spawn().unwrap();
        assert_eq!(p.wait().unwrap().code(), Some(1));
        drop(p.wait());
    });
}

#[test]
fn signal_reported_right() {
    use std::os::unix::process::ExitStatusExt;

    let mut p = shell_cmd()
        .arg("-c")
        .arg("read a")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    p.kill().unwrap();
    match p.wait().unwrap().signal() {
        Some(9) => {}
        result => panic!("not terminated by signal 9 (instead, {result:?})"),
    }
}

fn run_output(mut cmd: Command) -> String {
    let mut p = cmd.spawn().unwrap();
    assert!(p.stdout.is_some());
    let mut ret = String::new();
    p.stdout.as_mut().unwrap().read_to_string(&mut ret).unwrap();
    assert!(p.wait().unwrap().success());
    ret
}

#[test]
fn stdout_works() {
    on_real_and_fake(|| {
        let mut cmd = shell_cmd();
        cmd.arg("-c").arg("echo foobar").stdout(Stdio::piped());
        assert_eq!(run_output(cmd), "foobar\n");
    });
}

#[test]
fn set_current_dir_works() {
    on_real_and_fake(|| {
        let mut cmd = shell_cmd();
        cmd.arg("-c")
            .arg("pwd")
            .current_dir("/")
            .stdout(Stdio::piped());
        assert_eq!(run_output(cmd), "/\n");
    });
}

#[test]
fn stdin_works() {
    on_real_and_fake(|| {
        let mut p = shell_cmd()
            .arg("-c")
            .arg("read line; echo $line")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.as_mut().unwrap().write_all(b"foobar").unwrap();
        drop(p.stdin.take());
        let mut out = String::new();
        p.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
        assert!(p.wait().unwrap().success());
        assert_eq!(out, "foobar\n");
    });
}

#[test]
fn test_process_status() {
    on_real_and_fake(|| {
        let status = shell_cmd().arg("-c").arg("false").status().unwrap();
        assert_eq!(status.code(), Some(1));
        let status = shell_cmd().arg("-c").arg("true").status().unwrap();
        assert!(status.success());
    });
}

#[test]
fn test_process_output_fail_to_start() {
    match Command::new("/no-binary-by-this-name-should-exist").output() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
        Ok(..) => panic!(),
    }
}

#[test]
fn test_process_output_output() {
    on_real_and_fake(|| {
        let Output {
            status,
            stdout,
            stderr,
        } = shell_cmd().arg("-c").arg("echo hello").output().unwrap();
        let output_str = std::str::from_utf8(&stdout).unwrap();
        assert!(status.success());
        assert_eq!(output_str.trim(), "hello");
        assert_eq!(stderr, Vec::<u8>::new());
    });
}

#[test]
fn test_process_output_error() {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new("mkdir").arg("./").output().unwrap();
    assert!(status.code().is_some());
    assert_ne!(status.code(), Some(0));
    assert_eq!(stdout, Vec::<u8>::new());
    assert!(!stderr.is_empty());
}

#[test]
fn test_finish_once() {
    on_real_and_fake(|| {
        let mut prog = shell_cmd().arg("-c").arg("false").spawn().unwrap();
        assert_eq!(prog.wait().unwrap().code(), Some(1));
    });
}

#[test]
fn test_finish_twice() {
    on_real_and_fake(|| {
        let mut prog = shell_cmd().arg("-c").arg("false").spawn().unwrap();
        assert_eq!(prog.wait().unwrap().code(), Some(1));
        assert_eq!(prog.wait().unwrap().code(), Some(1));
    });
}

#[test]
fn test_wait_with_output_once() {
    on_real_and_fake(|| {
        let prog = shell_cmd()
            .arg("-c")
            .arg("echo hello")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let Output {
            status,
            stdout,
            stderr,
        } = prog.wait_with_output().unwrap();
        let output_str = std::str::from_utf8(&stdout).unwrap();
        assert!(status.success());
        assert_eq!(output_str.trim(), "hello");
        assert_eq!(stderr, Vec::<u8>::new());
    });
}

#[test]
fn test_override_env() {
    let mut cmd = env_cmd();
    cmd.env_clear().env("RUN_TEST_NEW_ENV", "123");
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", &p);
    }
    let result = cmd.output().unwrap();
    let output = String::from_utf8_lossy(&result.stdout).to_string();
    assert!(output.contains("RUN_TEST_NEW_ENV=123"), "{output}");
}

#[test]
fn test_add_to_env() {
    let result = env_cmd().env("RUN_TEST_NEW_ENV", "123").output().unwrap();
    let output = String::from_utf8_lossy(&result.stdout).to_string();
    assert!(output.contains("RUN_TEST_NEW_ENV=123"), "{output}");
}

#[test]
fn test_interior_nul_in_progname_is_error() {
    match Command::new("has-some-\0\0s-inside").spawn() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
}

#[test]
fn test_interior_nul_in_arg_is_error() {
    match known_command().arg("has-some-\0\0s-inside").spawn() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
}

#[test]
fn test_interior_nul_in_args_is_error() {
    match known_command().args(["has-some-\0\0s-inside"]).spawn() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
}

#[test]
fn test_interior_nul_in_current_dir_is_error() {
    match known_command().current_dir("has-some-\0\0s-inside").spawn() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
}

#[test]
fn test_interior_nul_in_env_key_is_error() {
    match env_cmd().env("has-some-\0\0s-inside", "value").spawn() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
}

#[test]
fn test_interior_nul_in_env_value_is_error() {
    match env_cmd().env("key", "has-some-\0\0s-inside").spawn() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
}

#[test]
fn test_command_implements_send_sync() {
    fn take_send_sync_type<T: Send + Sync>(_: T) {}
    take_send_sync_type(Command::new(""))
}

// library/std/tests/process_spawning.rs: the program is found on the PATH the command gives
// the child, not only on the parent's. The original copies its own test binary and runs it
// with a filter; a copy of `true` does the same here without running a harness again.
#[test]
fn issue_15149() {
    let temp = tempfile::tempdir().unwrap();
    let child_dir = temp.path().join("issue-15140-child");
    std::fs::create_dir_all(&child_dir).unwrap();
    let child_path = child_dir.join(format!("mytest{}", std::env::consts::EXE_SUFFIX));
    let true_path = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("true"))
        .find(|path| path.is_file())
        .expect("true on PATH");
    std::fs::copy(&true_path, &child_path).unwrap();

    let path = {
        let mut paths: Vec<_> = std::env::split_paths(&std::env::var_os("PATH").unwrap()).collect();
        paths.push(child_dir.to_path_buf());
        std::env::join_paths(paths).unwrap()
    };
    let child_output = Command::new("mytest").env("PATH", &path).output().unwrap();
    assert!(child_output.status.success(), "{child_output:?}");
}

// library/std/src/sys/process/unix/unix/tests.rs: the display of std's own ExitStatus, which
// `blocking` returns. (Its fd tests use the unstable `CommandExt::fd`; `Stdio::from` a pipe
// and `Command::child_fd` are what this crate has, tested in blocking.rs and builder.rs.)
#[test]
fn exitstatus_display_tests() {
    use process_transport_command::blocking::ExitStatus;
    use std::os::unix::process::ExitStatusExt;

    let t = |v, s: &str| assert_eq!(s, format!("{}", <ExitStatus as ExitStatusExt>::from_raw(v)));
    t(0x0000f, "signal: 15 (SIGTERM)");
    t(0x0008b, "signal: 11 (SIGSEGV) (core dumped)");
    t(0x00000, "exit status: 0");
    t(0x0ff00, "exit status: 255");
    if cfg!(target_os = "linux") {
        t(0x0137f, "stopped (not terminated) by signal: 19 (SIGSTOP)");
        t(0x0ffff, "continued (WIFCONTINUED)");
    }
}

// The same file: a hook that panics in the forked child does not unwind into the parent;
// the child dies by a signal.
#[test]
#[allow(unsafe_code)]
fn test_command_fork_no_unwind() {
    use process_transport_command::blocking::unix::CommandExt;
    use std::os::unix::process::ExitStatusExt;

    let got = std::panic::catch_unwind(|| {
        let mut c = Command::new("echo");
        c.arg("hi");
        // SAFETY: the hook only panics, which is what the test is about.
        unsafe {
            c.pre_exec(|| panic!("{}", "crash now!"));
        }
        c.status().expect("failed to get command status")
    });
    let status = got.expect("panic unexpectedly propagated");
    let signal = status
        .signal()
        .expect("expected child process to die of signal");
    // SIGABRT, SIGILL, SIGTRAP or SIGSEGV.
    assert!([6, 4, 5, 11].contains(&signal), "signal {signal}");
}

// tests/ui/process/process-envs.rs: `env_clear` then `envs` of a filtered copy gives the child
// only those. The original sets a variable in this process first; a variable the parent has
// anyway (`HOME`, or `PATH`'s absence of others) shows the same without changing the
// environment under the other tests.
#[test]
fn ui_process_envs() {
    let filtered: std::collections::HashMap<String, String> =
        std::env::vars().filter(|(k, _)| k == "PATH").collect();
    let mut cmd = env_cmd();
    cmd.env_clear()
        .envs(&filtered)
        .env("RUN_TEST_NEW_ENV", "123");
    let result = cmd.output().unwrap();
    let output = String::from_utf8_lossy(&result.stdout);
    let names: Vec<&str> = output
        .lines()
        .filter_map(|line| line.split('=').next())
        .collect();
    assert_eq!(names, ["PATH", "RUN_TEST_NEW_ENV"], "{output}");
}

// tests/ui/process/process-remove-from-env.rs: `env_remove` keeps a variable from the child.
// The original sets it in this process first; here it is set on the command, then removed.
#[test]
fn ui_process_remove_from_env() {
    let result = Command::new("/bin/sh")
        .args(["-c", "env"])
        .env("RUN_TEST_NEW_ENV", "123")
        .env_remove("RUN_TEST_NEW_ENV")
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&result.stdout);
    assert!(!output.contains("RUN_TEST_NEW_ENV"), "{output}");
}

// tests/ui/process/process-spawn-nonexistent.rs
#[test]
fn ui_process_spawn_nonexistent() {
    let err = Command::new("nonexistent").spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

// tests/ui/process/try-wait.rs. The original re-runs its own binary as the child (`sleep`,
// `return-quickly`); `sleep` and `true` are those children here, and the loop that waits for
// the quick one yields instead of sleeping.
#[test]
fn ui_try_wait() {
    let mut me = Command::new("sleep").arg("1000").spawn().unwrap();
    assert!(me.try_wait().unwrap().is_none());
    assert!(me.try_wait().unwrap().is_none());
    me.kill().unwrap();
    me.wait().unwrap();
    assert!(!me.try_wait().unwrap().unwrap().success());
    assert!(!me.try_wait().unwrap().unwrap().success());

    let mut me = Command::new("true").spawn().unwrap();
    let guard = std::time::Instant::now();
    loop {
        match me.try_wait() {
            Ok(Some(res)) => {
                assert!(res.success());
                break;
            }
            Ok(None) => {
                assert!(guard.elapsed().as_secs() < 60, "true did not end");
                std::thread::yield_now();
            }
            Err(e) => panic!("error in try_wait: {e}"),
        }
    }
    assert!(me.try_wait().unwrap().unwrap().success());
}

// tests/ui/process/process-spawn-with-unicode-params.rs: non-ASCII in the program's
// directory, an argument and an environment value reach the child intact. The original
// copies its own binary into the directory; `sh` prints what it was given here.
#[test]
fn ui_process_spawn_with_unicode_params() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("ünicödé");
    std::fs::create_dir(&dir).unwrap();
    let out = Command::new("/bin/sh")
        .args([
            "-c",
            "printf '%s|%s|%s' \"$1\" \"$UNICODE_VALUE\" \"$(pwd)\"",
            "sh",
            "äƒ∂",
        ])
        .env("UNICODE_VALUE", "ŋ̈")
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, format!("äƒ∂|ŋ̈|{}", dir.display()));
}
