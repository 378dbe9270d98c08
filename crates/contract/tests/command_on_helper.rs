//! The `Command` front door (async and `blocking`) on real processes, with the workspace's
//! helper program (`pt-helper`) as the child: the command crate's real-process tests in a form
//! that runs on every platform, Windows (under Wine in CI) included. The command crate's own
//! real-process tests start `sh` and `cat` and run on unix only.

use std::io::{self, Read, Write};
use std::time::Duration;

use process_transport_api::ProcessEnd;
use process_transport_command::{blocking, Command, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const HELPER: &str = env!("CARGO_BIN_EXE_pt-helper");

/// Guards against a hang only; the tests wait on events.
const GUARD: Duration = Duration::from_secs(60);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {GUARD:?}"))
}

fn helper(args: &[&str]) -> Command {
    let mut command = Command::new(HELPER);
    command.args(args);
    command
}

fn blocking_helper(args: &[&str]) -> blocking::Command {
    let mut command = blocking::Command::new(HELPER);
    command.args(args);
    command
}

/// The end of a killed child: SIGKILL on unix; on Windows `TerminateProcess` with exit code 1,
/// as std's `Child::kill` gives.
fn killed() -> ProcessEnd {
    if cfg!(windows) {
        ProcessEnd::from_exit_code(1)
    } else {
        ProcessEnd::from_signal(9)
    }
}

/// Spawns `pt-helper wait` and reads its "ready" line: the child runs until killed.
async fn waiting(command: &mut Command) -> io::Result<process_transport_command::Child> {
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    assert_eq!(
        guarded("ready", lines.next_line()).await?.as_deref(),
        Some("ready")
    );
    Ok(child)
}

#[tokio::test]
async fn output_collects_both_pipes_and_the_code() -> io::Result<()> {
    let out = guarded("output", helper(&["talk"]).output()).await?;
    assert_eq!(
        (
            out.stdout.as_slice(),
            out.stderr.as_slice(),
            out.status.code()
        ),
        (&b"out\n"[..], &b"err\n"[..], Some(0))
    );
    let out = guarded("output", helper(&["exit", "7"]).output()).await?;
    assert_eq!((out.stdout.len(), out.status.code()), (0, Some(7)));
    Ok(())
}

#[tokio::test]
async fn a_round_trip_of_4_mib_through_cat_keeps_every_byte() -> io::Result<()> {
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut child = helper(&["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&sent).await?;
        stdin.shutdown().await
    });
    let mut back = Vec::new();
    let mut stdout = child.stdout.take().expect("piped");
    guarded("read", stdout.read_to_end(&mut back)).await?;
    writer.await.expect("the writer")?;
    assert!(guarded("wait", child.wait()).await?.success());
    assert!(back == data, "{} bytes back of {}", back.len(), data.len());
    Ok(())
}

#[tokio::test]
async fn wait_with_output_feeds_a_big_stdin_and_reads_it_back() -> io::Result<()> {
    let mut child = helper(&["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = tokio::spawn(async move { stdin.write_all(&[7; 1 << 20]).await });
    let out = guarded("wait_with_output", child.wait_with_output()).await?;
    writer.await.expect("the writer")?;
    assert_eq!(
        (out.stdout.len(), out.stdout.iter().all(|&b| b == 7)),
        (1 << 20, true)
    );
    assert!(out.status.success());
    Ok(())
}

#[tokio::test]
async fn kill_ends_a_waiting_child_and_the_id_goes() -> io::Result<()> {
    let mut child = waiting(&mut helper(&["wait"])).await?;
    assert!(child.id().is_some_and(|pid| pid > 0));
    assert_eq!(child.try_wait()?, None);
    guarded("kill", child.kill()).await?;
    let status = child.wait().await?;
    assert_eq!(ProcessEnd::from(status), killed());
    assert_eq!(child.id(), None);
    // As tokio's and std's: the child is reaped, and a kill has nothing left to do.
    child.start_kill()?;
    Ok(())
}

#[tokio::test]
async fn the_id_stays_after_the_exit_until_wait_returns_it() -> io::Result<()> {
    let mut child = helper(&["exit", "0"]).spawn()?;
    let pid = child.id().expect("running");
    guarded("the end", child.transport().ended()).await;
    assert_eq!(child.transport().pid(), None);
    assert_eq!(child.id(), Some(pid));
    assert!(child.wait().await?.success());
    assert_eq!(child.id(), None);
    Ok(())
}

#[tokio::test]
async fn kill_on_drop_kills_the_real_child() -> io::Result<()> {
    let child = waiting(helper(&["wait"]).kill_on_drop(true)).await?;
    let transport = child.transport();
    drop(child);
    assert_eq!(guarded("the end", transport.ended()).await, killed());
    Ok(())
}

#[tokio::test]
async fn env_cwd_and_the_code_reach_the_child() -> io::Result<()> {
    let out = guarded(
        "output",
        helper(&["print-env", "PT_HELPER_A"])
            .env("PT_HELPER_A", "1")
            .output(),
    )
    .await?;
    assert_eq!(out.stdout, b"1");
    let cleared = guarded(
        "output",
        helper(&["print-env", "PT_HELPER_A"])
            .env("PT_HELPER_A", "1")
            .env_remove("PT_HELPER_A")
            .output(),
    )
    .await?;
    assert_eq!(cleared.stdout, b"");
    let dir = tempfile::tempdir()?;
    let out = guarded("output", helper(&["pwd"]).current_dir(dir.path()).output()).await?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        std::fs::canonicalize(shown.trim_end())?,
        std::fs::canonicalize(dir.path())?
    );
    let status = guarded("status", helper(&["exit", "5"]).status()).await?;
    assert_eq!(status.code(), Some(5));
    Ok(())
}

#[tokio::test]
async fn a_missing_program_is_not_found_naming_it() {
    let err = Command::new("no-such-program-5c1e")
        .output()
        .await
        .expect_err("no such program");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("no-such-program-5c1e"), "{err}");
}

#[tokio::test]
async fn status_closes_a_piped_stdout_before_waiting_so_a_loud_child_ends() -> io::Result<()> {
    // 3 MB into a pipe nobody reads: with the pipe kept open the child would wait forever.
    let status = guarded(
        "status",
        helper(&["spew", "3000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .status(),
    )
    .await?;
    // Its stdout broke: the helper says so and exits 101.
    assert_eq!(status.code(), Some(101), "{status}");
    Ok(())
}

#[tokio::test]
async fn a_childs_stdout_is_the_next_childs_stdin() -> io::Result<()> {
    let mut first = helper(&["talk"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let into: Stdio = first.stdout.take().expect("piped").try_into()?;
    let out = guarded("output", helper(&["cat"]).stdin(into).output()).await?;
    assert_eq!(out.stdout, b"out\n");
    assert!(guarded("wait", first.wait()).await?.success());
    Ok(())
}

#[tokio::test]
async fn files_as_stdin_and_stdout_carry_every_byte() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&input, &data)?;
    let output = dir.path().join("out");
    let status = guarded(
        "status",
        helper(&["cat"])
            .stdin(std::fs::File::open(&input)?)
            .stdout(std::fs::File::create(&output)?)
            .status(),
    )
    .await?;
    assert!(status.success());
    assert!(std::fs::read(&output)? == data);
    Ok(())
}

#[test]
fn a_child_spawned_on_one_runtime_is_waited_on_another() {
    let runtime = || tokio::runtime::Runtime::new().expect("a runtime");
    // The first runtime is gone before the child is waited on, and its pipes with it.
    let mut child = runtime()
        .block_on(async { helper(&["cat"]).stdin(Stdio::piped()).spawn() })
        .expect("spawned");
    drop(child.stdin.take());
    let status = runtime()
        .block_on(guarded("wait", child.wait()))
        .expect("waited");
    assert!(status.success());
}

/// A runtime of one thread: once `block_on` returns, nothing polls its I/O driver again, so
/// the pipes it leaves behind are closed by the transport itself or never.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// `cat` with its stdin and stdout piped, spawned on `runtime`.
fn piped_cat(runtime: &tokio::runtime::Runtime) -> process_transport_command::Child {
    runtime
        .block_on(async {
            helper(&["cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
        })
        .expect("spawned")
}

/// Closes the child's stdin and waits for it on a runtime of its own: a `cat` then ends well.
fn ends_after_its_stdin(mut child: process_transport_command::Child) {
    drop(child.stdin.take());
    let status = current_thread()
        .block_on(guarded("wait", child.wait()))
        .expect("waited");
    assert!(status.success());
}

#[test]
fn an_orphaned_childs_stdin_closes_when_its_runtime_is_gone() {
    // The runtime is dropped at the end of this statement, before the wait.
    let child = piped_cat(&current_thread());
    ends_after_its_stdin(child);
}

/// A runtime kept in a thread's local is dropped while the thread's locals are destroyed: its
/// children's pumps are dropped then, and the transport must act without the locals of its
/// own (a panic there would abort the process).
#[test]
fn a_runtime_in_a_thread_local_leaves_its_child_to_the_reaper_when_the_thread_ends() {
    thread_local! {
        static RUNTIME: std::cell::RefCell<Option<tokio::runtime::Runtime>> =
            const { std::cell::RefCell::new(None) };
    }
    let child = std::thread::spawn(|| {
        RUNTIME.with(|slot| {
            let runtime = current_thread();
            let child = piped_cat(&runtime);
            *slot.borrow_mut() = Some(runtime);
            child
        })
    })
    .join()
    .expect("the thread ended without a panic");
    ends_after_its_stdin(child);
}

#[test]
fn an_orphaned_child_writing_a_full_pipe_sees_it_broken() {
    // Far more than a pipe holds: the child blocks writing until the parent's end is gone.
    let mut child = current_thread()
        .block_on(async {
            helper(&["spew", "16777216"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
        })
        .expect("spawned");
    let status = current_thread()
        .block_on(guarded("wait", child.wait()))
        .expect("waited");
    // pt-helper reports the broken pipe and exits with 101.
    assert_eq!(status.code(), Some(101));
}

#[test]
fn blocking_output_status_and_a_pipeline() -> io::Result<()> {
    let out = blocking_helper(&["talk"]).output()?;
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(blocking_helper(&["exit", "6"]).status()?.code(), Some(6));

    let mut first = blocking_helper(&["cat"])
        .stdin(blocking::Stdio::piped())
        .stdout(blocking::Stdio::piped())
        .spawn()?;
    let between = first.stdout.take().expect("piped");
    let mut second = blocking_helper(&["cat"])
        .stdin(between)
        .stdout(blocking::Stdio::piped())
        .spawn()?;
    let mut stdin = first.stdin.take().expect("piped");
    stdin.write_all(b"through two cats\n")?;
    drop(stdin);
    let mut back = String::new();
    second
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut back)?;
    assert_eq!(back, "through two cats\n");
    assert!(first.wait()?.success() && second.wait()?.success());
    Ok(())
}
