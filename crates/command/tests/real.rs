//! `Command` on real processes (the default spawner): the same methods as on the fakes.

#![cfg(unix)]

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use process_transport_api::{Signal, SpawnError};
use process_transport_command::{Command, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Guards against a hang only; the tests wait on events.
const GUARD: Duration = Duration::from_secs(60);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {GUARD:?}"))
}

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

#[tokio::test]
async fn output_collects_exact_bytes_and_the_code() -> io::Result<()> {
    let out = guarded(
        "output",
        sh("printf 'out\\n'; printf 'err' >&2; exit 3").output(),
    )
    .await?;
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"out\n"[..], &b"err"[..])
    );
    assert_eq!(out.status.code(), Some(3));
    // std's own type, as tokio returns it: helpers typed with std's types take it.
    let status: std::process::ExitStatus = out.status;
    assert_eq!(status.to_string(), "exit status: 3");
    Ok(())
}

#[tokio::test]
async fn output_gives_the_child_the_parents_own_stdin_as_tokio_does() -> io::Result<()> {
    // The parent's fd 0 (whatever the harness gave it) is the one the child reads.
    let ours = std::fs::read_link("/proc/self/fd/0").ok();
    let out = guarded("output", sh("readlink /proc/self/fd/0 || true").output()).await?;
    let theirs = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    match ours {
        Some(path) => assert_eq!(theirs, path.to_string_lossy()),
        None => assert_eq!(theirs, ""),
    }
    Ok(())
}

#[tokio::test]
async fn output_with_stdin_null_gives_the_real_null_device() -> io::Result<()> {
    let out = guarded(
        "output",
        sh("cat; echo done; ls -l /proc/self/fd/0")
            .stdin(Stdio::null())
            .output(),
    )
    .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("done\n"), "{text}");
    assert!(text.trim_end().ends_with("/dev/null"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_round_trip_of_4_mib_through_cat_keeps_every_byte() -> io::Result<()> {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i: u32| (i % 253) as u8).collect();
    let write = async {
        stdin.write_all(&data).await?;
        stdin.shutdown().await
    };
    let mut back = Vec::new();
    let (written, read) = guarded("the round trip", async {
        tokio::join!(write, stdout.read_to_end(&mut back))
    })
    .await;
    written?;
    read?;
    assert!(back == data, "{} bytes back of {}", back.len(), data.len());
    assert!(guarded("wait", child.wait()).await?.success());
    Ok(())
}

#[tokio::test]
async fn kill_ends_a_sleeping_child_with_signal_9_and_the_id_goes() -> io::Result<()> {
    let mut child = Command::new("sleep").arg("600").spawn()?;
    assert!(child.id().is_some_and(|pid| pid > 0));
    assert_eq!(child.try_wait()?, None);
    guarded("kill", child.kill()).await?;
    let status = child.wait().await?;
    assert_eq!(
        (status.signal(), status.to_string().as_str()),
        (Some(9), "signal: 9 (SIGKILL)")
    );
    assert_eq!(child.id(), None);
    // As tokio's and std's: the child is reaped, and a kill has nothing left to do.
    child.start_kill()?;
    Ok(())
}

#[tokio::test]
async fn the_id_stays_after_the_exit_until_wait_returns_it() -> io::Result<()> {
    let mut child = Command::new("true").spawn()?;
    let pid = child.id().expect("running");
    // The transport has seen the whole end; the caller has not.
    guarded("the end", child.transport().ended()).await;
    assert_eq!(child.transport().pid(), None);
    assert_eq!(child.id(), Some(pid));
    assert!(child.wait().await?.success());
    assert_eq!(child.id(), None);
    Ok(())
}

#[tokio::test]
async fn signal_delivers_term_to_a_real_child() -> io::Result<()> {
    let mut child = sh("echo ready; exec sleep 600")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    assert_eq!(
        guarded("ready", lines.next_line()).await?.as_deref(),
        Some("ready")
    );
    child.signal(Signal::Term)?;
    assert_eq!(guarded("wait", child.wait()).await?.signal(), Some(15));
    Ok(())
}

#[tokio::test]
async fn kill_on_drop_kills_the_real_child() -> io::Result<()> {
    let mut child = sh("echo ready; exec sleep 600")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    assert_eq!(
        guarded("ready", lines.next_line()).await?.as_deref(),
        Some("ready")
    );
    let transport = child.transport();
    drop(child);
    assert_eq!(
        guarded("the end", transport.ended()).await.signal(),
        Some(9)
    );
    Ok(())
}

#[tokio::test]
async fn status_inherits_and_returns_the_code() -> io::Result<()> {
    assert_eq!(
        guarded("status", sh("exit 5").status()).await?.code(),
        Some(5)
    );
    assert!(guarded("status", Command::new("true").status())
        .await?
        .success());
    assert!(!guarded("status", Command::new("false").status())
        .await?
        .success());
    Ok(())
}

#[tokio::test]
async fn env_cwd_and_args_reach_the_child() -> io::Result<()> {
    let out = guarded(
        "output",
        sh("printf '%s|%s|%s|%s' \"$A\" \"${HOME-unset}\" \"$(pwd)\" \"$0\"")
            .arg("zero")
            .env("A", "1")
            .env_remove("HOME")
            .current_dir("/")
            .output(),
    )
    .await?;
    assert_eq!(out.stdout, b"1|unset|/|zero");
    let mut cleared = sh("printf '%s' \"${A-none}\"");
    let cleared = guarded("output", cleared.env("A", "1").env_clear().output()).await?;
    assert_eq!(cleared.stdout, b"none");
    Ok(())
}

#[tokio::test]
async fn a_missing_program_is_not_found_naming_it() {
    let err = Command::new("no-such-program-5c1e")
        .output()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<SpawnError>()),
        Some(SpawnError::NotFound(exe)) if exe == "no-such-program-5c1e"
    ));
    assert!(err.to_string().contains("no-such-program-5c1e"));
}

#[tokio::test]
async fn a_program_that_is_not_executable_is_permission_denied() {
    let err = Command::new("/etc/passwd").status().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
}

#[tokio::test]
async fn a_nul_in_an_argument_is_invalid_input() {
    let err = Command::new("echo").arg("a\0b").spawn().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("argument 1"), "{err}");
}

#[tokio::test]
async fn a_write_to_a_child_that_exited_is_ok_until_the_loss_is_seen_then_a_broken_pipe(
) -> io::Result<()> {
    let mut child = Command::new("true").stdin(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    assert!(guarded("the exit", child.wait()).await?.success());
    // The exit is known; the loss of stdin is reported by then or soon: a write either goes
    // nowhere (Ok) or fails as a broken pipe, and never anything else.
    let result = guarded("the write", async {
        loop {
            if let Err(err) = stdin.write_all(b"x").await {
                return err;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(result.kind(), io::ErrorKind::BrokenPipe);
    Ok(())
}

#[test]
fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
    let err = Command::new("true").spawn().unwrap_err();
    assert!(
        err.to_string().contains("must run inside a tokio runtime"),
        "{err}"
    );
}

#[tokio::test]
async fn status_closes_a_piped_stdout_before_waiting_so_a_loud_child_ends() -> io::Result<()> {
    // 3 MB into a pipe nobody reads: with the pipe kept open the child would wait forever.
    let status = guarded(
        "status",
        sh("head -c 3000000 /dev/zero")
            .stdout(Stdio::piped())
            .status(),
    )
    .await?;
    assert!(!status.success(), "{status}");
    assert!(
        status.signal() == Some(13) || status.code() == Some(141),
        "ended by SIGPIPE: {status}"
    );
    Ok(())
}

#[test]
fn a_child_spawned_on_one_runtime_is_waited_on_another() {
    let runtime = || tokio::runtime::Runtime::new().expect("a runtime");
    // The first runtime is gone before the child is waited on, and its pipes with it.
    let mut child = runtime()
        .block_on(async { sh("read line; exit 3").stdin(Stdio::piped()).spawn() })
        .expect("spawned");
    let status = runtime()
        .block_on(guarded("wait", child.wait()))
        .expect("waited");
    assert_eq!(status.code(), Some(3));
}
