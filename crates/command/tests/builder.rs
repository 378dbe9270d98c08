//! The builder's unix settings, getters, conversions and `Debug`: as tokio's, on real
//! processes and recorded by the fakes.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::Arc;

#[cfg(unix)]
use process_transport_api::{ChildFd, ChildFdMapping, PtySize};
use process_transport_command::{Command, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};
#[cfg(unix)]
use tokio::io::AsyncReadExt;

#[cfg(unix)]
fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

#[cfg(unix)]
async fn stdout_of(command: &mut Command) -> io::Result<String> {
    let out = command.stdin(Stdio::null()).output().await?;
    assert!(out.status.success(), "{out:?}");
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(unix)]
#[tokio::test]
async fn process_group_zero_makes_the_child_lead_a_group_of_its_own() -> io::Result<()> {
    let script = "read -r pid comm state ppid pgrp rest < /proc/$$/stat; echo $pgrp $$";
    let ours = stdout_of(sh(script).process_group(0)).await?;
    let words: Vec<&str> = ours.split_whitespace().collect();
    assert_eq!(words.len(), 2, "{ours}");
    assert_eq!(words[0], words[1], "the child's group is its own pid");
    // Without it the child stays in this process's group.
    let inherited = stdout_of(&mut sh(script)).await?;
    let words: Vec<&str> = inherited.split_whitespace().collect();
    assert_ne!(words[0], words[1]);
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn arg0_is_the_childs_argv_0() -> io::Result<()> {
    let out = stdout_of(sh("tr '\\0' ' ' < /proc/$$/cmdline").arg0("not-sh")).await?;
    assert!(out.starts_with("not-sh -c "), "{out}");
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
#[allow(unsafe_code)]
async fn pre_exec_runs_in_the_child_and_its_error_fails_the_spawn() -> io::Result<()> {
    let mut command = Command::new("true");
    // SAFETY: the hook makes no call at all.
    unsafe {
        command.pre_exec(|| Ok(()));
    }
    assert!(command.status().await?.success());

    let mut failing = Command::new("true");
    // SAFETY: as above; building an io::Error from a code does not allocate.
    unsafe {
        failing.pre_exec(|| Err(io::Error::from_raw_os_error(1)));
    }
    let err = failing.status().await.expect_err("the hook failed");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    Ok(())
}

#[tokio::test]
#[allow(unsafe_code)]
async fn a_fake_records_the_unix_settings_and_runs_no_hook() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["make"], Script::new().exit(0));
    let mut command = Command::new("make");
    command.process_group(0).arg0("gmake");
    // SAFETY: the hook is never run by a fake; if it were, it makes no call.
    unsafe {
        command.pre_exec(|| panic!("a fake runs no hook"));
    }
    assert!(command
        .spawner(Arc::new(reactor.clone()))
        .status()
        .await?
        .success());
    let spec = &reactor.spawns()[0];
    assert_eq!(spec.get_process_group(), Some(0));
    assert_eq!(spec.get_arg0(), Some(OsStr::new("gmake")));
    assert_eq!(spec.get_pre_exec().len(), 1);
    Ok(())
}

#[test]
fn the_getters_read_back_what_was_set() {
    let mut command = Command::new("git");
    command
        .args(["log", "-1"])
        .env("GIT_PAGER", "cat")
        .env_remove("GIT_DIR")
        .current_dir("/tmp")
        .kill_on_drop(true);
    assert_eq!(command.get_program(), "git");
    assert_eq!(command.get_args().collect::<Vec<_>>(), ["log", "-1"]);
    assert_eq!(
        command.get_envs().collect::<Vec<_>>(),
        [
            (OsStr::new("GIT_DIR"), None),
            (OsStr::new("GIT_PAGER"), Some(OsStr::new("cat")))
        ]
    );
    assert_eq!(command.get_current_dir(), Some(Path::new("/tmp")));
    assert!(command.get_kill_on_drop());
}

#[test]
fn as_std_shows_the_command_as_tokios_does_and_follows_changes() {
    let mut command = Command::new("rsync");
    command.args(["-a", "src/"]);
    let logged: Vec<_> = command.as_std().get_args().collect();
    assert_eq!(logged, ["-a", "src/"]);
    command.arg("dst/").env("RSYNC_RSH", "ssh");
    assert_eq!(command.as_std().get_args().count(), 3);
    assert_eq!(command.as_std().get_envs().count(), 1);
    let std = command.clone().into_std();
    assert_eq!(std.get_program(), "rsync");
}

#[test]
fn debug_prints_what_tokios_prints() {
    let mut ours = Command::new("sh");
    ours.args(["-c", "echo hi"])
        .env("A", "1")
        .current_dir("/tmp")
        .kill_on_drop(true);
    let mut theirs = tokio::process::Command::new("sh");
    theirs
        .args(["-c", "echo hi"])
        .env("A", "1")
        .current_dir("/tmp")
        .kill_on_drop(true);
    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
    assert_eq!(
        format!("{:?}", Command::new("true")),
        format!("{:?}", tokio::process::Command::new("true"))
    );
}

#[test]
fn a_std_command_converts_with_everything_its_getters_show() {
    let mut std = std::process::Command::new("cargo");
    std.arg("build")
        .env("CARGO_MAKEFLAGS", "-j2")
        .env_remove("RUSTFLAGS")
        .current_dir("/src");
    let ours = Command::from(std);
    assert_eq!(ours.get_program(), "cargo");
    assert_eq!(ours.get_args().collect::<Vec<_>>(), ["build"]);
    assert_eq!(
        ours.get_envs().collect::<Vec<_>>(),
        [
            (OsStr::new("CARGO_MAKEFLAGS"), Some(OsStr::new("-j2"))),
            (OsStr::new("RUSTFLAGS"), None)
        ]
    );
    assert_eq!(ours.get_current_dir(), Some(Path::new("/src")));
}

#[cfg(unix)]
#[tokio::test]
async fn an_extra_fd_the_child_writes_is_read_apart_on_real_and_fake() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let script = "echo out; echo three >&3";
    reactor.register(
        ["sh", "-c", script],
        Script::new()
            .stdout("out\n")
            .output(ChildFd(3), "three\n")
            .exit(0),
    );
    for spawner in [
        Arc::new(process_transport_real::RealSpawner::new()) as Arc<_>,
        Arc::new(reactor) as Arc<_>,
    ] {
        let mut child = sh(script)
            .stdout(Stdio::piped())
            .child_fd(3, ChildFdMapping::ParentReads)
            .spawner(spawner)
            .spawn()?;
        let mut three = child.take_output(3).expect("fd 3 is piped");
        assert!(child.take_output(3).is_none());
        assert_eq!(three.fd(), ChildFd(3));
        let mut text = String::new();
        three.read_to_string(&mut text).await?;
        assert_eq!(text, "three\n");
        let out = child.wait_with_output().await?;
        assert_eq!(out.stdout, b"out\n");
    }
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_pty_is_the_childs_terminal_of_the_size_asked() -> io::Result<()> {
    let mut child = sh("stty size; [ -t 0 ] && [ -t 2 ] && echo tty")
        .pty(PtySize::new(40, 120))
        .spawn()?;
    assert!(child.stderr.is_none(), "a terminal has one output");
    let mut text = String::new();
    child
        .stdout
        .take()
        .expect("the terminal")
        .read_to_string(&mut text)
        .await?;
    assert_eq!(text, "40 120\r\ntty\r\n");
    assert!(child.wait().await?.success());
    Ok(())
}

#[test]
fn the_types_are_send_and_sync_as_tokios_are() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Command>();
    send_sync::<Stdio>();
    send_sync::<process_transport_command::Child>();
    send_sync::<process_transport_command::ChildStdin>();
    send_sync::<process_transport_command::ChildStdout>();
    send::<process_transport_command::ChildOutput>();
}
