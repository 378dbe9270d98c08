//! The standard library's own process tests (`library/std/src/process/tests.rs`, the
//! platform-neutral unix ones), ported to `blocking` by changing the imports, run on the
//! default spawner (real processes) and, where a twin means something, on the fakes.
//!
//! Left out: the Windows-only tests (`test_creation_flags`, `test_proc_thread_attributes`,
//! `env_empty`, `run_bat_script`; no Windows transport yet) and `test_capture_env_at_spawn`,
//! which changes this process's environment while other tests of the binary run (the real
//! spawner, like std, reads the environment at the spawn).

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
