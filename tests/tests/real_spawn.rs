//! The real transport starts processes with the whole SpawnSpec, and names what went wrong.

use std::io::Read;
use std::os::fd::AsRawFd;

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessSpawner, SpawnError, SpawnSpec,
};
use process_transport_real::RealSpawner;
use process_transport_tests::{assert_bytes_eq, check_order, run_real, Event, Recorder};

fn stdout_of(log: &process_transport_tests::Log) -> String {
    String::from_utf8(log.bytes(ChildFd::STDOUT)).unwrap()
}

#[tokio::test]
async fn finds_the_executable_on_path_and_by_absolute_path() {
    for exe in ["true", "/bin/sh"] {
        let (recorder, log) = Recorder::new();
        let (_, end) = run_real(recorder, SpawnSpec::new(exe).args(["-c", "exit 0"])).await;
        assert_eq!(end, ProcessEnd::Done, "{exe}");
        check_order(&log.events(), &[ChildFd(0), ChildFd(1), ChildFd(2)]).unwrap();
    }
}

#[tokio::test]
async fn passes_the_arguments_exactly() {
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("sh").args(["-c", r#"printf '%s|' "$@""#, "sh", "a", "b c", "", "*"]);
    run_real(recorder, spec).await;
    assert_eq!(stdout_of(&log), "a|b c||*|");
}

#[tokio::test]
async fn inherits_the_environment_by_default() {
    let (recorder, log) = Recorder::new();
    run_real(
        recorder,
        SpawnSpec::new("sh").args(["-c", "printf %s \"$PATH\""]),
    )
    .await;
    assert_eq!(stdout_of(&log), std::env::var("PATH").unwrap());
}

#[tokio::test]
async fn sets_and_removes_variables() {
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("sh")
        .args(["-c", "printf '%s|%s' \"$GREETING\" \"${HOME-unset}\""])
        .env("GREETING", "hello world")
        .env_remove("HOME");
    run_real(recorder, spec).await;
    assert_eq!(stdout_of(&log), "hello world|unset");
}

#[tokio::test]
async fn an_exact_environment_holds_only_the_given_variables() {
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("/bin/sh")
        .args(["-c", "printf '%s|%s' \"$ONLY\" \"${HOME-unset}\""])
        .env_clear()
        .env("ONLY", "1");
    run_real(recorder, spec).await;
    assert_eq!(stdout_of(&log), "1|unset");
}

#[tokio::test]
async fn runs_in_the_given_working_directory() {
    let (recorder, log) = Recorder::new();
    run_real(recorder, SpawnSpec::new("sh").args(["-c", "pwd"]).cwd("/")).await;
    assert_eq!(stdout_of(&log), "/\n");
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[tokio::test]
async fn runs_as_the_given_uid_and_gid_when_root() {
    if !running_as_root() {
        eprintln!("skipped: changing uid and gid needs root");
        return;
    }
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("sh")
        .args(["-c", "id -u; id -g"])
        .uid(65534)
        .gid(65534);
    let (_, end) = run_real(recorder, spec).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_eq!(stdout_of(&log), "65534\n65534\n");
}

#[tokio::test]
async fn extra_pipes_work_in_both_directions() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport
                .write_to_child(ChildFd(4), b"into fd 4\n")
                .unwrap();
            transport.close_child_fd(ChildFd(4));
        }
    });
    let spec = SpawnSpec::new("sh")
        .args(["-c", "echo 'out of fd 3' >&3; cat <&4"])
        .child_fd(ChildFd(3), ChildFdMapping::ParentReads)
        .child_fd(ChildFd(4), ChildFdMapping::ParentWrites);
    let (_, end) = run_real(recorder, spec).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_bytes_eq!(log.bytes(ChildFd(3)), b"out of fd 3\n");
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"into fd 4\n");
    check_order(&log.events(), &[0, 1, 2, 3, 4].map(ChildFd)).unwrap();
}

#[tokio::test]
async fn a_parent_fd_is_inherited_under_the_given_number() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("sh")
        .args(["-c", "echo inherited >&7"])
        .child_fd(ChildFd(7), ChildFdMapping::Inherit(writer.as_raw_fd()));
    let (_, end) = run_real(recorder, spec).await;
    drop(writer);
    assert_eq!(end, ProcessEnd::Done);
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "inherited\n");
    check_order(&log.events(), &[0, 1, 2].map(ChildFd)).unwrap();
}

async fn spawn_error(spec: SpawnSpec) -> (SpawnError, process_transport_tests::Log) {
    let (recorder, log) = Recorder::new();
    let err = RealSpawner::new()
        .spawn_process(recorder, spec)
        .await
        .err()
        .expect("the spawn fails");
    (err, log)
}

#[tokio::test]
async fn a_missing_executable_is_not_found_and_named() {
    let (err, log) = spawn_error(SpawnSpec::new("no-such-program-3f9a")).await;
    assert!(
        matches!(err, SpawnError::NotFound(ref exe) if exe == "no-such-program-3f9a"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "cannot spawn \"no-such-program-3f9a\": executable not found"
    );
    assert_eq!(log.events(), [], "make_connection is never called");
}

#[tokio::test]
async fn a_file_without_execute_permission_is_permission_denied() {
    let path = std::env::temp_dir().join(format!("pt-not-executable-{}", std::process::id()));
    std::fs::write(&path, "#!/bin/sh\necho never\n").unwrap();
    let (err, log) = spawn_error(SpawnSpec::new(&path)).await;
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(err, SpawnError::PermissionDenied(ref exe) if *exe == path.to_string_lossy()),
        "{err:?}"
    );
    assert!(err.to_string().contains("permission denied"), "{err}");
    assert_eq!(log.events(), []);
}

#[tokio::test]
async fn a_nul_byte_in_an_argument_is_an_invalid_spec() {
    let (err, _) = spawn_error(SpawnSpec::new("echo").arg("a\0b")).await;
    assert!(matches!(err, SpawnError::InvalidSpec(_)), "{err:?}");
    assert!(err.to_string().contains("\"echo\""), "{err}");
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[tokio::test]
async fn an_fd_map_that_cannot_be_set_up_is_an_invalid_spec() {
    let (err, log) =
        spawn_error(SpawnSpec::new("true").child_fd(ChildFd(5), ChildFdMapping::Inherit(987_654)))
            .await;
    assert!(matches!(err, SpawnError::InvalidSpec(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid spawn spec: cannot spawn \"true\": child fd 5 inherits parent fd 987654, which is not open"
    );
    assert_eq!(log.events(), []);
}

#[tokio::test]
async fn a_missing_working_directory_is_named_as_missing() {
    let (err, _) = spawn_error(SpawnSpec::new("true").cwd("/no/such/dir")).await;
    match err {
        SpawnError::Io(ref io) => assert_eq!(io.kind(), std::io::ErrorKind::NotFound),
        ref other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "spawn failed: cannot spawn \"true\": working directory /no/such/dir does not exist"
    );
}

#[tokio::test]
async fn a_pty_spec_with_another_fd_map_is_refused_naming_the_fd() {
    let spec = SpawnSpec::new("true")
        .use_pty(true)
        .child_fd(ChildFd::STDERR, ChildFdMapping::Null);
    let (err, log) = spawn_error(spec).await;
    assert_eq!(
        err.to_string(),
        "invalid spawn spec: cannot spawn \"true\": use_pty makes fds 0, 1 and 2 the terminal \
         and maps no other fd, but child fd 2 is mapped as Null"
    );
    assert_eq!(log.events(), []);
}

#[tokio::test]
async fn a_pty_child_on_the_uid_path_leads_a_session_on_its_terminal() {
    if !running_as_root() {
        eprintln!("skipped: changing uid and gid needs root");
        return;
    }
    // A uid change takes the fork path: the terminal is made controlling with TIOCSCTTY.
    let spec = SpawnSpec::new("sh")
        .args(["-c", "test -t 0 && test -t 2 && printf 'ctty\\n' >/dev/tty"])
        .use_pty(true)
        .uid(0)
        .gid(0);
    let (recorder, log) = Recorder::new();
    let (_, end) = run_real(recorder, spec).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_eq!(log.bytes(ChildFd::STDOUT), b"ctty\r\n");
}

#[tokio::test]
async fn a_file_as_working_directory_is_named_as_not_a_directory() {
    let (err, _) = spawn_error(SpawnSpec::new("true").cwd("/bin/sh")).await;
    assert_eq!(
        err.to_string(),
        "spawn failed: cannot spawn \"true\": working directory /bin/sh is not a directory"
    );
}

#[tokio::test]
async fn a_working_directory_the_new_uid_cannot_enter_is_named_not_the_executable() {
    if !running_as_root() {
        eprintln!("skipped: changing uid and gid needs root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pt-private-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (err, log) = spawn_error(SpawnSpec::new("true").uid(65534).gid(65534).cwd(&dir)).await;
    std::fs::remove_dir(&dir).unwrap();
    match err {
        SpawnError::Io(ref io) => assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied),
        ref other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "spawn failed: cannot spawn \"true\": working directory {} cannot be entered as \
             uid 65534: Permission denied (os error 13)",
            dir.display()
        )
    );
    assert_eq!(log.events(), []);
}

#[tokio::test]
async fn an_fd_number_above_the_open_file_limit_is_named_with_the_reason() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap();
    for fd in [65_535, i32::MAX as u32, u32::MAX] {
        let spec = SpawnSpec::new("true").child_fd(ChildFd(fd), ChildFdMapping::ParentReads);
        let (err, log) = spawn_error(spec).await;
        assert!(matches!(err, SpawnError::InvalidSpec(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid spawn spec: cannot spawn \"true\": cannot place child fd {fd}: it is \
                 above this process's open-file limit ({limit}, RLIMIT_NOFILE); child fds must \
                 be below {}",
                limit - 1
            )
        );
        assert_eq!(log.events(), []);
    }
}

#[tokio::test]
async fn the_fork_path_reports_a_missing_executable_too() {
    if !running_as_root() {
        eprintln!("skipped: changing uid and gid needs root");
        return;
    }
    let (err, log) = spawn_error(SpawnSpec::new("no-such-program-3f9a").uid(0)).await;
    assert!(
        matches!(err, SpawnError::NotFound(ref exe) if exe == "no-such-program-3f9a"),
        "{err:?}"
    );
    assert_eq!(log.events(), []);
}

#[test]
fn outside_a_tokio_runtime_nothing_starts_and_the_error_says_why() {
    let (recorder, log) = Recorder::new();
    let result = futures_executor::block_on(
        RealSpawner::new().spawn_process(recorder, SpawnSpec::new("sh").args(["-c", "exit 0"])),
    );
    match result {
        Err(SpawnError::Io(err)) => assert_eq!(
            err.to_string(),
            "cannot spawn \"sh\": RealSpawner::spawn_process must run inside a tokio runtime \
             with I/O enabled"
        ),
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("the spawn succeeded outside a runtime"),
    }
    assert_eq!(log.events(), []);
}
