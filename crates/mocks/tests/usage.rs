//! How the mocks are used: sequences, counts, unexpected calls, payload and spec predicates,
//! async methods, and one piece of code tested against a mock and a fake.

use std::sync::{Arc, Mutex};

use mockall::predicate::{always, eq};
use mockall::Sequence;
use predicates::Predicate;
use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnError,
    SpawnSpec, Transport, TransportError,
};
use process_transport_fakes::{assert_bytes_eq, MemoryProcessReactor, MemoryProcessTransport};
use process_transport_mocks::{
    bytes_contains, bytes_eq, bytes_prefix, connect_with, spawn_spec, utf8_text,
    MockProcessProtocol, MockProcessSpawner, MockProcessTransport, MockPushProducer, MockTransport,
};

/// The code under test in several tests: ask the child to quit, then stop it.
fn shut_down(transport: &dyn ProcessTransport) -> Result<(), TransportError> {
    transport.write_to_child(ChildFd::STDIN, b"quit\n")?;
    transport.close_stdin();
    transport.signal_process(Signal::Term)
}

fn strict_shutdown_mock() -> MockProcessTransport {
    let mut seq = Sequence::new();
    let mut transport = MockProcessTransport::new();
    transport
        .expect_write_to_child()
        .with(eq(ChildFd::STDIN), bytes_eq("quit\n"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    transport
        .expect_close_stdin()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    transport
        .expect_signal_process()
        .with(eq(Signal::Term))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    transport
}

#[test]
fn a_strict_sequence_passes_when_the_calls_come_in_order() {
    let transport: Arc<dyn ProcessTransport> = Arc::new(strict_shutdown_mock());
    shut_down(transport.as_ref()).unwrap();
}

#[test]
#[should_panic(expected = "MockProcessTransport::close_stdin(): Method sequence violation")]
fn the_same_calls_out_of_order_fail_with_mockalls_message() {
    let transport = strict_shutdown_mock();
    transport.close_stdin();
}

#[test]
fn shut_down_on_the_fake_records_the_same_story() {
    let transport = MemoryProcessTransport::new();
    shut_down(&transport).unwrap();
    assert_bytes_eq!(transport.value(), b"quit\n");
    assert_eq!(transport.closed_child_fds(), [ChildFd::STDIN]);
    assert_eq!(transport.signals(), [Signal::Term]);
}

#[test]
#[should_panic(
    expected = "MockProcessTransport::signal_process: Expectation(true) called 2 times which is more than the expected 1"
)]
fn times_limits_the_calls() {
    let mut transport = MockProcessTransport::new();
    transport
        .expect_signal_process()
        .with(always())
        .times(1)
        .returning(|_| Ok(()));
    let _ = transport.signal_process(Signal::Term);
    let _ = transport.signal_process(Signal::Term);
}

#[test]
#[should_panic(
    expected = "MockProcessTransport::close_stdin: Expectation(<anything>) called 1 time(s) which is fewer than expected 2"
)]
fn a_missing_call_fails_when_the_mock_is_dropped() {
    let mut transport = MockProcessTransport::new();
    transport.expect_close_stdin().times(2).return_const(());
    transport.close_stdin();
}

#[test]
#[should_panic(
    expected = "MockProcessTransport::signal_process(Kill): No matching expectation found"
)]
fn an_unexpected_call_fails() {
    let mut transport = MockProcessTransport::new();
    transport
        .expect_signal_process()
        .with(eq(Signal::Term))
        .returning(|_| Ok(()));
    let _ = transport.signal_process(Signal::Kill);
}

#[test]
#[should_panic(expected = "MockProcessTransport::pid(): No matching expectation found")]
fn a_call_with_no_expectation_at_all_fails() {
    let transport = MockProcessTransport::new();
    let _ = transport.pid();
}

#[test]
fn payload_predicates_match_writes() {
    let mut transport = MockTransport::new();
    transport
        .expect_write()
        .with(bytes_prefix("HELO "))
        .times(1)
        .returning(|_| Ok(()));
    transport
        .expect_write()
        .with(bytes_contains("\r\n.\r\n"))
        .times(1)
        .returning(|_| Ok(()));
    transport
        .expect_write()
        .with(utf8_text("QUIT\r\n"))
        .times(1)
        .returning(|_| Ok(()));
    transport
        .expect_write_sequence()
        .withf(|pieces| bytes_eq("DATA\r\n").joined().eval(pieces))
        .times(1)
        .returning(|_| Ok(()));
    let transport: Box<dyn Transport> = Box::new(transport);
    transport.write(b"HELO example.org\r\n").unwrap();
    transport.write_sequence(&[b"DA", b"TA\r\n"]).unwrap();
    transport.write(b"hello\r\n.\r\n").unwrap();
    transport.write(b"QUIT\r\n").unwrap();
}

#[test]
fn an_owned_write_is_expected_and_logged_as_a_write() {
    let mut mock = MockTransport::new();
    mock.expect_write()
        .with(bytes_eq("payload"))
        .times(1)
        .returning(|_| Ok(()));
    let mock: Box<dyn Transport> = Box::new(mock);
    mock.write_owned(b"payload".to_vec()).unwrap();

    let fake = MemoryProcessTransport::new();
    fake.write_owned(b"payload".to_vec()).unwrap();
    assert_eq!(
        fake.call_log().to_string(),
        "-> write_to_child(0, \"payload\")\n"
    );
    assert_eq!(fake.value(), b"payload");
}

#[test]
fn a_mocked_error_reaches_the_code_under_test() {
    let mut transport = MockProcessTransport::new();
    transport
        .expect_write_to_child()
        .returning(|fd, _| Err(TransportError::ChildFdClosed(fd)));
    let err = shut_down(&transport).unwrap_err();
    assert!(
        matches!(err, TransportError::ChildFdClosed(ChildFd(0))),
        "{err:?}"
    );
}

#[test]
fn a_push_producer_mock_checks_what_a_fake_transport_asks_of_it() {
    let mut seq = Sequence::new();
    let mut producer = MockPushProducer::new();
    producer
        .expect_pause_producing()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    producer
        .expect_resume_producing()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    producer
        .expect_stop_producing()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    let transport = MemoryProcessTransport::new();
    transport.set_high_water(2);
    transport
        .register_producer(Arc::new(producer), true)
        .unwrap();
    transport.write(b"abc").unwrap();
    transport.child().read(ChildFd::STDIN);
    transport.close_stdin();
}

#[tokio::test]
async fn the_async_ended_is_awaited() {
    let mut transport = MockProcessTransport::new();
    transport
        .expect_ended()
        .times(1)
        .returning(|| ProcessEnd::from_exit_code(3));
    let transport: Arc<dyn ProcessTransport> = Arc::new(transport);
    assert_eq!(transport.ended().await, ProcessEnd::from_exit_code(3));
}

#[tokio::test]
async fn a_spawner_mock_asserts_the_exact_command_line() {
    let mut spawner = MockProcessSpawner::new();
    let transport: Arc<dyn ProcessTransport> = Arc::new(MemoryProcessTransport::new());
    let (responder, connected) = connect_with(transport);
    spawner
        .expect_spawn_process()
        .withf(|_, spec| {
            spawn_spec()
                .executable("git")
                .args(["commit", "-m", "first commit"])
                .env("GIT_AUTHOR_NAME", "Ada")
                .cwd("/srv/repo")
                .eval(spec)
        })
        .times(1)
        .returning(responder);
    spawner.expect_spawn_process().returning(|_, spec| {
        Err(SpawnError::NotFound(
            spec.get_executable().to_string_lossy().into(),
        ))
    });

    let spawner: Arc<dyn ProcessSpawner> = Arc::new(spawner);
    let spec = SpawnSpec::new("git")
        .args(["commit", "-m", "first commit"])
        .env("GIT_AUTHOR_NAME", "Ada")
        .cwd("/srv/repo");
    assert_eq!(spec.command_line(), "git commit -m 'first commit'");
    let (recorder, log) = Greeter::new();
    spawner.spawn_process(recorder, spec).await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["connected"]);
    assert_eq!(connected.len(), 1);
    connected.with_protocol(0, |r: &mut Greeter| assert!(r.connected));

    let err = spawner
        .spawn_process(
            Box::new(MockProcessProtocol::new()),
            SpawnSpec::new("git").arg("push"),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SpawnError::NotFound(ref exe) if exe == "git"),
        "{err:?}"
    );
}

/// A minimal protocol for the spawner test (the mocks crate does not depend on tests/).
struct Greeter {
    log: Arc<Mutex<Vec<&'static str>>>,
    connected: bool,
}

impl Greeter {
    fn new() -> (Box<Self>, Arc<Mutex<Vec<&'static str>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (
            Box::new(Greeter {
                log: log.clone(),
                connected: false,
            }),
            log,
        )
    }
}

impl ProcessProtocol for Greeter {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {
        self.connected = true;
        self.log.lock().unwrap().push("connected");
    }
}

/// One protocol, tested with the mock (the calls it makes) and with the fake (the outcome).
/// It answers "ready" on stdout with "go\n" and stops the child on "error" on stderr.
#[derive(Default)]
struct Supervisor {
    transport: Option<Arc<dyn ProcessTransport>>,
}

impl ProcessProtocol for Supervisor {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        self.transport = Some(transport);
    }
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        let transport = self.transport.as_ref().expect("connected");
        match (fd, data) {
            (ChildFd::STDOUT, b"ready\n") => transport.write(b"go\n").expect("stdin open"),
            (ChildFd::STDERR, data) if data.starts_with(b"error") => {
                transport.signal_process(Signal::Term).expect("running")
            }
            _ => {}
        }
    }
}

#[test]
fn the_protocol_with_a_mock_transport() {
    let mut seq = Sequence::new();
    let mut transport = MockProcessTransport::new();
    transport
        .expect_write()
        .with(bytes_eq("go\n"))
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
        .expect_signal_process()
        .with(eq(Signal::Kill))
        .never();

    let mut supervisor = Supervisor::default();
    supervisor.make_connection(Arc::new(transport));
    supervisor.child_data_received(ChildFd::STDOUT, b"ready\n");
    supervisor.child_data_received(ChildFd::STDOUT, b"working\n");
    supervisor.child_data_received(ChildFd::STDERR, b"error: disk full\n");
}

#[test]
fn the_protocol_with_the_fake_reactor() {
    let reactor = MemoryProcessReactor::new();
    let child = reactor
        .spawn(Box::new(Supervisor::default()), SpawnSpec::new("worker"))
        .unwrap();
    child.write(ChildFd::STDOUT, "ready\n").unwrap();
    child.write(ChildFd::STDOUT, "working\n").unwrap();
    child.write(ChildFd::STDERR, "error: disk full\n").unwrap();
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"go\n");
    assert_eq!(child.transport().signals(), [Signal::Term]);
}

#[test]
fn a_process_protocol_mock_checks_what_the_fake_delivers_in_order() {
    let mut seq = Sequence::new();
    let mut protocol = MockProcessProtocol::new();
    protocol
        .expect_make_connection()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    protocol
        .expect_child_data_received()
        .with(eq(ChildFd::STDOUT), bytes_eq("hi"))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    protocol
        .expect_child_connection_lost()
        .times(3)
        .in_sequence(&mut seq)
        .return_const(());
    protocol
        .expect_process_exited()
        .with(eq(ProcessEnd::Done))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    protocol
        .expect_process_ended()
        .with(eq(ProcessEnd::Done))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    let child = MemoryProcessReactor::new()
        .spawn(Box::new(protocol), SpawnSpec::new("echo"))
        .unwrap();
    child.write(ChildFd::STDOUT, "hi").unwrap();
    child.exit(0);
    child.take_protocol::<MockProcessProtocol>().checkpoint();
}
