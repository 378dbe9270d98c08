//! The races a real child can win or lose, each a held event the explorer places: output
//! that arrives after the exit (a grandchild holding the pipe), a signal racing the exit, a
//! write racing the loss of stdin, and a chunk boundary inside the pattern an expect-style
//! reader waits for. For each, code written the way real projects write it with the
//! `Command` front door: a wrong version the explorer catches (at random and exhaustively)
//! and a right one that passes every distinct order.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};

mod common;
use common::{caught, found};

use process_transport_api::{ChildFd, ProcessEnd};
use process_transport_command::{Command, Stdio};
use process_transport_explore::{Coverage, Exploration, Explore};
use process_transport_fakes::{FakeChild, Script};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const SIGKILL: i32 = 9;

/// `body` passes 2,000 random schedules and, exhaustively, its first `orders` distinct
/// orders: all of them when `coverage` is `Coverage::All`.
fn proven<B, F>(coverage: Coverage, orders: u32, body: B)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    assert_eq!(Explore::new().schedules(2_000).run(&body).schedules, 2_000);
    let bound = match coverage {
        Coverage::All => 100_000,
        _ => orders,
    };
    let explored = Explore::new().exhaustive().schedules(bound).run(&body);
    assert_eq!(
        (explored.coverage, explored.schedules),
        (coverage, orders),
        "{explored}"
    );
}

// 1. Output after the exit: the child exits and a grandchild it started keeps its stdout,
//    writing the last line after the exit.

fn build_with_a_grandchild() -> Script {
    Script::new().start_with(|child: &FakeChild| {
        child.write(ChildFd::STDOUT, "cc\n").unwrap();
        child.exit_keeping_fds(ProcessEnd::Done);
        child.write(ChildFd::STDOUT, "ld\n").unwrap();
        child.close(ChildFd::STDOUT);
    })
}

/// Reads the build's lines while waiting for it; `drain`: also reads what comes after the
/// exit, to the end of the output.
async fn build_log(exploration: Exploration, drain: bool) {
    let reactor = exploration.reactor().clone();
    reactor.register(["build"], build_with_a_grandchild());
    let mut child = Command::new("build")
        .stdout(Stdio::piped())
        .spawner(Arc::new(reactor))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    let status = loop {
        tokio::select! {
            biased;
            line = lines.next_line() => match line.unwrap() {
                Some(line) => log.push(line),
                None => break child.wait().await.unwrap(),
            },
            status = child.wait() => break status.unwrap(),
        }
    };
    if drain {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push(line);
        }
    }
    assert!(status.success());
    assert_eq!(log, ["cc", "ld"], "the build's log");
}

#[test]
fn output_after_the_exit_is_lost_by_a_reader_that_stops_at_the_exit() {
    let message = caught(|e| build_log(e, false));
    found(0, |e| build_log(e, false));
    assert!(message.contains("the build's log"), "{message}");
}

#[test]
fn output_after_the_exit_is_kept_by_a_reader_that_reads_to_the_end() {
    proven(Coverage::All, 96, |e| build_log(e, true));
}

// 2. A signal racing the exit: the parent stops a worker that may be finishing on its own.

/// How a stopped worker ended, across runs.
type Ends = Arc<Mutex<BTreeSet<String>>>;

/// Stops a worker once it is ready; `killed_is_fine`: a worker ended by the stop itself is not
/// an error.
async fn stop_worker(exploration: Exploration, killed_is_fine: bool, ends: Ends) {
    let reactor = exploration.reactor().clone();
    reactor.register(["worker"], Script::new().stdout("up\n").exit(0));
    let mut child = Command::new("worker")
        .stdout(Stdio::piped())
        .spawner(Arc::new(reactor))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("up"));
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    ends.lock().unwrap().insert(status.to_string());
    let stopped = killed_is_fine && status.signal() == Some(SIGKILL);
    assert!(status.success() || stopped, "the worker failed: {status}");
}

#[test]
fn a_stop_that_takes_the_kill_for_a_failure_is_caught() {
    let message = caught(|e| stop_worker(e, false, Ends::default()));
    found(2, |e| stop_worker(e, false, Ends::default()));
    assert!(
        message.contains("the worker failed: signal: 9 (SIGKILL)"),
        "{message}"
    );
}

#[test]
fn a_stop_that_allows_either_end_passes_and_sees_both() {
    let ends = Ends::default();
    proven(Coverage::All, 40, |e| stop_worker(e, true, ends.clone()));
    let ends: Vec<String> = ends.lock().unwrap().iter().cloned().collect();
    assert_eq!(ends, ["exit status: 0", "signal: 9 (SIGKILL)"]);
}

// 3. A write racing the loss of stdin: copying one child's output into another that reads
//    only the start of its input, as `head -c` does.

/// Copies the lines of `list` into `head -c 2`; `broken_pipe_is_fine`: a write refused
/// because the child stopped reading ends the copy, and is not an error.
async fn copy_into_head(exploration: Exploration, broken_pipe_is_fine: bool) {
    let reactor = Arc::new(exploration.reactor().clone());
    reactor.register(["list"], Script::new().stdout("a\nb\n").exit(0));
    reactor.register(["head", "-c", "2"], Script::head_bytes(2));
    let mut list = Command::new("list")
        .stdout(Stdio::piped())
        .spawner(reactor.clone())
        .spawn()
        .unwrap();
    let mut head = Command::new("head")
        .args(["-c", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(reactor)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(list.stdout.take().unwrap()).lines();
    let mut stdin = head.stdin.take().unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        match stdin.write_all(format!("{line}\n").as_bytes()).await {
            Ok(()) => {}
            Err(err) if broken_pipe_is_fine && err.kind() == io::ErrorKind::BrokenPipe => break,
            Err(err) => panic!("copying {line:?}: {:?}: {err}", err.kind()),
        }
    }
    drop(stdin);
    let mut first = Vec::new();
    let mut stdout = head.stdout.take().unwrap();
    stdout.read_to_end(&mut first).await.unwrap();
    assert_eq!(first, b"a\n");
    assert!(head.wait().await.unwrap().success());
    // The list may be cut short by the closed pipe, or have finished.
    drop(lines);
    list.wait().await.unwrap();
}

#[test]
fn a_copy_that_takes_a_broken_pipe_for_a_failure_is_caught() {
    let message = caught(|e| copy_into_head(e, false));
    assert!(message.contains("copying \"b\": BrokenPipe: "), "{message}");
}

#[test]
fn a_copy_that_expects_the_reader_to_stop_passes() {
    proven(Coverage::Bounded, 20_000, |e| copy_into_head(e, true));
}

// 4. A chunk boundary inside the pattern an expect-style reader waits for.

/// Logs in: waits for the prompt `pw: `, answers it, reads the greeting. `whole`: looks for
/// the prompt in everything read so far; otherwise in each read alone.
async fn log_in(exploration: Exploration, whole: bool) {
    let reactor = exploration.reactor().clone();
    reactor.register(
        ["login"],
        Script::new()
            .stdout("hi\npw: ")
            .on_stdin(|child: &FakeChild, _: &[u8]| {
                child.write(ChildFd::STDOUT, "ok\n").unwrap();
                child.exit(0);
            }),
    );
    let mut child = Command::new("login")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(Arc::new(reactor))
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0; 64];
    loop {
        let n = stdout.read(&mut buf).await.unwrap();
        assert!(n > 0, "the output ended before the prompt");
        seen.extend_from_slice(&buf[..n]);
        let looked_at = if whole { &seen[..] } else { &buf[..n] };
        if looked_at.windows(4).any(|window| window == b"pw: ") {
            break;
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"secret\n").await.unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"ok\n");
    assert!(child.wait().await.unwrap().success());
}

#[test]
fn an_expect_reader_that_looks_in_each_read_alone_is_caught_hanging() {
    let message = caught(|e| log_in(e, false));
    found(82, |e| log_in(e, false));
    assert!(message.contains("it would hang here"), "{message}");
}

#[test]
fn an_expect_reader_that_looks_in_all_it_read_passes() {
    proven(Coverage::All, 5_248, |e| log_in(e, true));
}
