//! `Command` on the recording fakes: every method, the defaults, back-pressure, bad input.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnError,
    SpawnSpec,
};
use process_transport_command::{Command, Stdio, READ_BUFFER_LIMIT};
use process_transport_fakes::{MemoryProcessReactor, MemoryProcessTransport, Script, SignalAction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The signal std's status says ended the child (unix); Windows has none.
fn signal_of(status: std::process::ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    return std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    return {
        let _ = status;
        None
    };
}

/// A fake child ended by `signal`: std's status names it on unix; on Windows it is exit code 1,
/// what `TerminateProcess` gives a real child.
fn assert_ends_by_signal(status: std::process::ExitStatus, signal: i32) {
    if cfg!(unix) {
        assert_eq!(signal_of(status), Some(signal));
    } else {
        assert_eq!(status.code(), Some(1));
    }
}

fn on(reactor: &MemoryProcessReactor, program: &str) -> Command {
    let mut command = Command::new(program);
    command.spawner(Arc::new(reactor.clone()));
    command
}

/// Polls `future` once, with a waker that does nothing: the test then changes the world and
/// polls again, with no timing involved.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn output_of_a_scripted_command_in_six_lines() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["git", "status"], Script::new().stdout("clean\n").exit(0));
    let out = Command::new("git")
        .arg("status")
        .spawner(Arc::new(reactor))
        .output()
        .await?;
    assert_eq!(out.stdout, b"clean\n");
    assert!(out.status.success());
    Ok(())
}

#[tokio::test]
async fn output_collects_both_pipes_and_the_code() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["tool"],
        Script::new()
            .stdout("out")
            .stderr("err")
            .stdout("put")
            .exit(4),
    );
    let out = on(&reactor, "tool").output().await?;
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"output"[..], &b"err"[..])
    );
    assert_eq!((out.status.code(), signal_of(out.status)), (Some(4), None));
    // std's words for it differ by platform.
    let shown = if cfg!(unix) {
        "exit status: 4"
    } else {
        "exit code: 4"
    };
    assert_eq!(out.status.to_string(), shown);
    Ok(())
}

#[tokio::test]
async fn output_inherits_stdin_and_pipes_the_rest() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat());
    let out = on(&reactor, "cat").output().await?;
    // A fake does not read the parent's own stdin: its cat sees end of file at once.
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let fds = reactor.spawns()[0].get_child_fds().clone();
    assert_eq!(fds[&ChildFd::STDIN], ChildFdMapping::Inherit(0));
    assert_eq!(fds[&ChildFd::STDOUT], ChildFdMapping::ParentReads);
    assert_eq!(fds[&ChildFd::STDERR], ChildFdMapping::ParentReads);
    Ok(())
}

#[tokio::test]
async fn explicit_stdio_wins_over_the_defaults_of_output() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["talk"],
        Script::new().stdout("lost").stderr("kept").exit(0),
    );
    let out = on(&reactor, "talk").stdout(Stdio::null()).output().await?;
    assert_eq!((out.stdout, out.stderr), (Vec::new(), b"kept".to_vec()));
    assert_eq!(
        reactor.spawns()[0].get_child_fds()[&ChildFd::STDOUT],
        ChildFdMapping::Null
    );
    Ok(())
}

#[tokio::test]
async fn spawn_and_status_inherit_stdio_by_default() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["true"], Script::new().exit(0));
    assert!(on(&reactor, "true").status().await?.success());
    let child = on(&reactor, "true").spawn()?;
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    for spec in reactor.spawns() {
        for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
            let mapping = spec.get_child_fds().get(&fd).copied();
            // Inherited when the test process has the fd, absent (closed) when it does not.
            assert!(
                matches!(mapping, Some(ChildFdMapping::Inherit(n)) if n == fd.0 as i32)
                    || mapping.is_none()
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn piped_stdin_and_stdout_carry_bytes_both_ways() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat());
    let mut child = on(&reactor, "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    stdin.write_all(b"ping\n").await?;
    let mut line = [0u8; 5];
    stdout.read_exact(&mut line).await?;
    assert_eq!(&line, b"ping\n");
    stdin.shutdown().await?;
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await?;
    assert!(rest.is_empty());
    assert!(child.wait().await?.success());
    Ok(())
}

#[tokio::test]
async fn wait_closes_stdin_first_so_a_reader_of_stdin_can_finish() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let cat = reactor.register(["cat"], Script::cat());
    let mut child = on(&reactor, "cat").stdin(Stdio::piped()).spawn()?;
    child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(b"last words")
        .await?;
    assert!(child.wait().await?.success());
    assert!(child.stdin.is_none());
    assert!(cat.child(0).at_eof(ChildFd::STDIN));
    assert_eq!(cat.child(0).stdin(), b"last words");
    Ok(())
}

#[tokio::test]
async fn wait_twice_returns_the_same_status_and_the_id_is_gone() -> io::Result<()> {
    let reactor = MemoryProcessReactor::new();
    let mut child = on(&reactor, "sh").args(["-c", "exit 2"]).spawn()?;
    assert_eq!(child.id(), Some(process_transport_fakes::DEFAULT_PID));
    reactor.last_child().exit(2);
    // Exited, but the exit was not returned yet: the id stays, as tokio's does.
    assert_eq!(child.id(), Some(process_transport_fakes::DEFAULT_PID));
    assert_eq!(child.wait().await?.code(), Some(2));
    assert_eq!(child.wait().await?.code(), Some(2));
    assert_eq!(child.id(), None);
    Ok(())
}

#[tokio::test]
async fn try_wait_is_none_while_running_and_the_status_after() -> io::Result<()> {
    let reactor = MemoryProcessReactor::new();
    let mut child = on(&reactor, "server").spawn()?;
    assert_eq!(child.try_wait()?, None);
    reactor.last_child().exit(7);
    assert!(child.id().is_some());
    assert_eq!(child.try_wait()?.and_then(|s| s.code()), Some(7));
    assert_eq!(child.id(), None);
    assert_eq!(child.try_wait()?.and_then(|s| s.code()), Some(7));
    Ok(())
}

#[tokio::test]
async fn kill_sends_one_sigkill_and_waits_for_the_end() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let server = reactor.register(["server"], Script::new());
    let mut child = on(&reactor, "server").spawn()?;
    child.kill().await?;
    assert_ends_by_signal(child.wait().await?, 9);
    assert_eq!(server.child(0).signals(), [Signal::Kill]);
    Ok(())
}

#[tokio::test]
async fn after_wait_returned_kill_and_signals_are_ok() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let done = reactor.register(["true"], Script::new().exit(0));
    let mut child = on(&reactor, "true").spawn()?;
    assert!(child.wait().await?.success());
    assert_eq!(child.id(), None);
    child.start_kill()?;
    child.kill().await?;
    child.signal(Signal::Term)?;
    assert_eq!(
        done.child(0).signals(),
        [],
        "nothing reaches a reaped child"
    );
    Ok(())
}

#[tokio::test]
async fn a_kill_of_an_exit_nobody_waited_for_yet_is_ok_and_sends_nothing() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let quick = reactor.register(["true"], Script::new().exit(0));
    let mut child = on(&reactor, "true").spawn()?;
    child.start_kill()?;
    assert!(quick.child(0).signals().is_empty());
    assert!(child.wait().await?.success());
    Ok(())
}

#[tokio::test]
async fn signal_sends_any_signal_and_the_script_reacts() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let server = reactor.register(
        ["server"],
        Script::new().on_signal(Signal::Hup, SignalAction::Ignore),
    );
    let mut child = on(&reactor, "server").spawn()?;
    child.signal(Signal::Hup)?;
    assert_eq!(child.try_wait()?, None);
    child.signal(Signal::Term)?;
    assert_ends_by_signal(child.wait().await?, 15);
    assert_eq!(server.child(0).signals(), [Signal::Hup, Signal::Term]);
    Ok(())
}

#[tokio::test]
async fn kill_on_drop_kills_a_running_child_and_only_then() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let server = reactor.register(["server"], Script::new());
    drop(on(&reactor, "server").kill_on_drop(true).spawn()?);
    drop(on(&reactor, "server").spawn()?);
    let mut waited = on(&reactor, "server").kill_on_drop(true).spawn()?;
    waited.kill().await?;
    drop(waited);
    let signals: Vec<Vec<Signal>> = server.children().iter().map(|c| c.signals()).collect();
    assert_eq!(signals, [vec![Signal::Kill], vec![], vec![Signal::Kill]]);
    Ok(())
}

#[tokio::test]
async fn transport_gives_the_transport_underneath() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let server = reactor.register(["server"], Script::new().holds_stdin());
    let child = on(&reactor, "server").stdin(Stdio::piped()).spawn()?;
    child
        .transport()
        .write_to_child(ChildFd::STDIN, b"direct")
        .map_err(io::Error::other)?;
    assert_eq!(server.child(0).stdin(), b"direct");
    Ok(())
}

#[tokio::test]
async fn a_write_after_shutdown_is_a_broken_pipe() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat());
    let mut child = on(&reactor, "cat").stdin(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.shutdown().await?;
    let err = stdin.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    Ok(())
}

#[tokio::test]
async fn a_write_to_a_child_that_closed_stdin_is_a_broken_pipe_with_the_transport_error_inside(
) -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["true"], Script::new().exit(0));
    let mut child = on(&reactor, "true").stdin(Stdio::piped()).spawn()?;
    let err = child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(b"x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<process_transport_api::TransportError>());
    assert!(
        matches!(
            inner,
            Some(process_transport_api::TransportError::ChildFdClosed(
                ChildFd(0)
            ))
        ),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unread_stdout_pauses_the_transport_and_reading_resumes_it() -> io::Result<()> {
    let reactor = MemoryProcessReactor::new();
    let mut child = on(&reactor, "producer").stdout(Stdio::piped()).spawn()?;
    let fake = reactor.last_child();
    let block = vec![7u8; 64 * 1024];
    let blocks = READ_BUFFER_LIMIT / block.len() + 2;
    for _ in 0..blocks {
        fake.write(ChildFd::STDOUT, &block)
            .map_err(io::Error::other)?;
    }
    // The reader fell behind: the transport was paused, and the rest is held there.
    assert!(fake.transport().is_paused());
    fake.exit(0);
    let mut all = Vec::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut all)
        .await?;
    assert_eq!(all.len(), blocks * block.len());
    assert!(!fake.transport().is_paused());
    assert!(child.wait().await?.success());
    Ok(())
}

#[tokio::test]
async fn a_write_waits_while_the_transport_is_over_its_high_water_mark() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let slow = reactor.register(["slow"], Script::new().holds_stdin());
    let mut child = on(&reactor, "slow").stdin(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let data: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let mut write = pin!(stdin.write_all(&data));
    let fake = slow.child(0);
    let mut received = Vec::new();
    let mut pending_polls = 0;
    while poll_once(&mut write).is_pending() {
        pending_polls += 1;
        // Never more than the high-water mark plus one write is waiting in the transport.
        assert!(fake.unread(ChildFd::STDIN) <= 64 * 1024 + data.len());
        received.extend(fake.read(ChildFd::STDIN));
    }
    received.extend(fake.read(ChildFd::STDIN));
    assert!(pending_polls > 0, "the writer never waited");
    assert_eq!(received, data);
    Ok(())
}

#[tokio::test]
async fn dropping_a_reader_closes_its_pipe_and_a_cat_dies_by_sigpipe() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    let cat = reactor.register(["cat"], Script::cat());
    let mut child = on(&reactor, "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    assert!(cat
        .child(0)
        .transport()
        .closed_child_fds()
        .contains(&ChildFd::STDOUT));
    child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(b"into nowhere")
        .await?;
    assert_ends_by_signal(child.wait().await?, 13);
    Ok(())
}

#[tokio::test]
async fn a_missing_program_is_not_found_with_the_spawn_error_inside() {
    let reactor = MemoryProcessReactor::strict();
    let err = on(&reactor, "no-such-tool").output().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<SpawnError>());
    assert!(
        matches!(inner, Some(SpawnError::NotFound(exe)) if exe == "no-such-tool"),
        "{err:?}"
    );
    assert!(err.to_string().contains("no-such-tool"));
}

#[tokio::test]
async fn an_unmatched_command_names_the_closest_registered_one() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["git", "status"], Script::new().exit(0));
    reactor.register(["git", "log"], Script::new().exit(0));
    let err = on(&reactor, "git")
        .arg("stauts")
        .output()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        r#"cannot spawn "git stauts": no registered command matches it; the closest registered command is "git status""#
    );
}

#[tokio::test]
async fn a_nul_byte_in_an_argument_is_invalid_input_naming_the_program() {
    let reactor = MemoryProcessReactor::new();
    let err = on(&reactor, "echo").arg("a\0b").spawn().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<SpawnError>()),
        Some(SpawnError::InvalidSpec(_))
    ));
    assert!(err.to_string().contains("\"echo\""), "{err}");
    assert!(reactor.spawns().is_empty());
}

/// A spawner that loses the protocol at once and returns a transport of its own.
struct Forgetful;

#[async_trait::async_trait]
impl ProcessSpawner for Forgetful {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        drop(protocol);
        Ok(Arc::new(MemoryProcessTransport::for_spec(spec)))
    }
}

#[tokio::test]
async fn a_transport_that_drops_the_protocol_gives_an_error_not_a_hang() -> io::Result<()> {
    let mut child = Command::new("lost")
        .stdout(Stdio::piped())
        .spawner(Arc::new(Forgetful))
        .spawn()?;
    let read = child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(read.kind(), io::ErrorKind::UnexpectedEof);
    let wait = child.wait().await.unwrap_err();
    assert!(
        wait.to_string()
            .contains("before reporting how the child ended"),
        "{wait}"
    );
    assert!(child.try_wait().is_err());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_script_delay_follows_the_paused_clock_so_a_timeout_fires_at_once() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["slow"],
        Script::new()
            .stdout("late\n")
            .delay(Duration::from_secs(60))
            .exit(0),
    );
    let started = tokio::time::Instant::now();
    let timed_out = tokio::time::timeout(
        Duration::from_secs(10),
        on(&reactor, "slow").kill_on_drop(true).output(),
    )
    .await;
    assert!(timed_out.is_err());
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    // Given time, it finishes: 60 s of the paused clock, no real time.
    let out = on(&reactor, "slow").output().await?;
    assert_eq!(
        (out.stdout.as_slice(), out.status.success()),
        (&b"late\n"[..], true)
    );
    assert_eq!(started.elapsed(), Duration::from_secs(70));
    Ok(())
}
