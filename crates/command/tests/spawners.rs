//! Which spawner runs a command (explicit, scoped default, real), the same code on a fake, a
//! mock and real processes, spawners that wait, and `blocking::Command`.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use mockall::predicate::eq;
use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnError,
    SpawnSpec,
};
use process_transport_command::{blocking, set_default, with_default, Command, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_mocks::{bytes_eq, MockProcessSpawner, MockProcessTransport};
use tokio::io::AsyncWriteExt;

/// This platform's shell and its flag for a script: `sh -c`, or `cmd /c` on Windows.
const SHELL: [&str; 2] = if cfg!(windows) {
    ["cmd", "/c"]
} else {
    ["sh", "-c"]
};

/// How the shell's `echo` ends a line.
const EOL: &str = if cfg!(windows) { "\r\n" } else { "\n" };

/// The code under test, written once: counts the words a command prints.
async fn word_count(program: &str, args: &[&str]) -> io::Result<usize> {
    let out = Command::new(program).args(args).output().await?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} failed: {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .count())
}

/// A mock spawner that answers one spawn of `spec` as a child printing `stdout` and exiting 0
/// would: it connects the protocol and delivers the events of section 5.
fn mock_answering(command: String, stdout: &'static [u8]) -> MockProcessSpawner {
    let mut spawner = MockProcessSpawner::new();
    spawner
        .expect_spawn_process()
        .withf(move |_, spec| spec.command_line() == command)
        .times(1)
        .returning(move |mut protocol, _| {
            let mut mock = MockProcessTransport::new();
            mock.expect_pid().times(1).return_const(Some(77));
            let transport: Arc<dyn ProcessTransport> = Arc::new(mock);
            protocol.make_connection(transport.clone());
            protocol.child_data_received(ChildFd::STDOUT, stdout);
            protocol.child_connection_lost(ChildFd::STDOUT);
            protocol.child_connection_lost(ChildFd::STDERR);
            protocol.process_exited(ProcessEnd::Done);
            protocol.process_ended(ProcessEnd::Done);
            Ok(transport)
        });
    spawner
}

#[tokio::test]
async fn the_same_code_runs_on_a_script_a_mock_and_real_processes() -> io::Result<()> {
    let [shell, flag] = SHELL;
    let args = [flag, "echo one two three"];
    let line = format!("{shell} {flag} 'echo one two three'");

    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        [shell, flag, "echo one two three"],
        Script::new().stdout("one two three\n").exit(0),
    );
    let on_fake = with_default(Arc::new(reactor), word_count(shell, &args)).await?;

    let mock = mock_answering(line, b"one two three\n");
    let on_mock = with_default(Arc::new(mock), word_count(shell, &args)).await?;

    let on_real = word_count(shell, &args).await?;
    assert_eq!((on_fake, on_mock, on_real), (3, 3, 3));
    Ok(())
}

#[tokio::test]
async fn a_mock_transport_sees_exactly_the_calls_of_the_child_api() -> io::Result<()> {
    let mut transport = MockProcessTransport::new();
    let mut seq = mockall::Sequence::new();
    // The spawn asks the pid once, as tokio's spawn records it.
    transport
        .expect_pid()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(Some(77));
    transport
        .expect_register_producer()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    transport
        .expect_write()
        .with(bytes_eq("quit\n"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    transport
        .expect_signal_process()
        .with(eq(Signal::Term))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    transport
        .expect_close_stdin()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    let transport: Arc<dyn ProcessTransport> = Arc::new(transport);
    let (responder, connected) = process_transport_mocks::connect_with(transport);
    let mut spawner = MockProcessSpawner::new();
    spawner.expect_spawn_process().times(1).returning(responder);

    let mut child = Command::new("server")
        .stdin(Stdio::piped())
        .spawner(Arc::new(spawner))
        .spawn()?;
    child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(b"quit\n")
        .await?;
    child.signal(Signal::Term)?;
    drop(child.stdin.take());
    assert_eq!(
        connected.specs()[0].get_child_fds()[&ChildFd::STDIN],
        process_transport_api::ChildFdMapping::ParentWrites
    );
    Ok(())
}

#[tokio::test]
async fn an_explicit_spawner_wins_over_the_scoped_default() -> io::Result<()> {
    let scoped = MemoryProcessReactor::strict();
    scoped.register(["who"], Script::new().stdout("scoped").exit(0));
    let explicit = MemoryProcessReactor::strict();
    explicit.register(["who"], Script::new().stdout("explicit").exit(0));
    let _guard = set_default(Arc::new(scoped));
    let out = Command::new("who")
        .spawner(Arc::new(explicit))
        .output()
        .await?;
    assert_eq!(out.stdout, b"explicit");
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn set_default_nests_and_each_guard_restores_the_outer_spawner() -> io::Result<()> {
    let answering = |text: &'static str| {
        let reactor = MemoryProcessReactor::strict();
        reactor.register(["who"], Script::new().stdout(text).exit(0));
        Arc::new(reactor)
    };
    let who = || async { Command::new("who").output().await.map(|out| out.stdout) };
    {
        let _outer = set_default(answering("outer"));
        assert_eq!(who().await?, b"outer");
        {
            let _inner = set_default(answering("inner"));
            assert_eq!(who().await?, b"inner");
        }
        assert_eq!(who().await?, b"outer");
    }
    // No scope left: real processes, where `who` may or may not exist; the shell does.
    assert!(Command::new(SHELL[0])
        .args([SHELL[1], "exit 0"])
        .status()
        .await?
        .success());
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn guards_dropped_out_of_order_leave_the_live_one_and_then_none() -> io::Result<()> {
    let answering = |text: &'static str| {
        let reactor = MemoryProcessReactor::new();
        reactor.register(["pt-marker-who"], Script::new().stdout(text).exit(0));
        reactor
    };
    let (x, y) = (answering("x"), answering("y"));
    let who = || async { Command::new("pt-marker-who").output().await };
    /// A fixture's fields drop first to last: the outer guard before the inner one.
    struct Fixture {
        _outer: process_transport_command::DefaultGuard,
        _inner: process_transport_command::DefaultGuard,
    }
    let fixture = Fixture {
        _outer: set_default(Arc::new(x.clone())),
        _inner: set_default(Arc::new(y.clone())),
    };
    assert_eq!(who().await?.stdout, b"y");
    let Fixture { _outer, _inner } = fixture;
    drop(_outer);
    assert_eq!(who().await?.stdout, b"y", "the inner guard is still alive");
    drop(_inner);
    let err = who().await.expect_err("no default is left: real processes");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert_eq!((x.spawns().len(), y.spawns().len()), (0, 2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_default_follows_the_future_across_awaits_and_worker_threads() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["step"], Script::new().stdout("x").exit(0));
    let steps = async {
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.extend(Command::new("step").output().await?.stdout);
            tokio::task::yield_now().await;
        }
        io::Result::Ok(seen)
    };
    let task = tokio::spawn(with_default(Arc::new(reactor.clone()), steps));
    assert_eq!(task.await.map_err(io::Error::other)??, vec![b'x'; 20]);
    assert_eq!(reactor.spawns().len(), 20);
    Ok(())
}

/// A spawner that waits (here, one yield) before it delegates: one a user might write.
struct Slow(MemoryProcessReactor);

#[async_trait]
impl ProcessSpawner for Slow {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        tokio::task::yield_now().await;
        self.0.spawn_process(protocol, spec).await
    }
}

#[tokio::test]
async fn spawn_refuses_a_spawner_that_waits_and_spawn_async_serves_it() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["slow"], Script::new().exit(0));
    let spawner = Arc::new(Slow(reactor.clone()));
    let err = Command::new("slow")
        .spawner(spawner.clone())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert!(
        err.to_string().contains("use Command::spawn_async"),
        "{err}"
    );
    assert!(reactor.spawns().is_empty(), "nothing was started");
    let mut child = Command::new("slow")
        .spawner(spawner.clone())
        .spawn_async()
        .await?;
    assert!(child.wait().await?.success());
    // output and status await the spawn, so they serve it too.
    assert!(Command::new("slow")
        .spawner(spawner)
        .status()
        .await?
        .success());
    Ok(())
}

#[test]
fn blocking_output_and_status_on_a_fake_and_on_real_processes() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["uname"], Script::new().stdout("Linux\n").exit(0));
    let _guard = set_default(Arc::new(reactor));
    assert_eq!(blocking::Command::new("uname").output()?.stdout, b"Linux\n");
    let real = Arc::new(process_transport_real::RealSpawner::new());
    let script = if cfg!(windows) {
        "echo real& exit 4"
    } else {
        "echo real; exit 4"
    };
    let out = blocking::Command::new(SHELL[0])
        .args([SHELL[1], script])
        .spawner(real.clone())
        .output()?;
    assert_eq!(
        (out.stdout, out.status.code()),
        (format!("real{EOL}").into_bytes(), Some(4))
    );
    assert!(blocking::Command::new(SHELL[0])
        .args([SHELL[1], "exit 0"])
        .spawner(real)
        .status()?
        .success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_works_from_spawn_blocking_and_block_in_place_and_sees_no_thread_default() {
    let from_pool = tokio::task::spawn_blocking(|| {
        blocking::Command::new(SHELL[0])
            .args([SHELL[1], "echo pool"])
            .output()
    })
    .await
    .expect("the blocking task")
    .expect("the command");
    assert_eq!(from_pool.stdout, format!("pool{EOL}").into_bytes());
    let in_place = tokio::task::block_in_place(|| {
        blocking::Command::new(SHELL[0])
            .args([SHELL[1], "exit 6"])
            .status()
    })
    .expect("the command");
    assert_eq!(in_place.code(), Some(6));
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_called_straight_from_an_async_task_still_answers_instead_of_panicking() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["echo", "hi"], Script::new().stdout("hi\n").exit(0));
    // The spawner is chosen on this thread, so the scoped default applies.
    let _guard = set_default(Arc::new(reactor));
    let out = blocking::Command::new("echo")
        .arg("hi")
        .output()
        .expect("the command");
    assert_eq!(out.stdout, b"hi\n");
}

#[test]
fn blocking_gives_the_same_typed_errors() {
    let err = blocking::Command::new("no-such-program-77aa")
        .output()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = blocking::Command::new("echo")
        .arg("a\0")
        .status()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}
