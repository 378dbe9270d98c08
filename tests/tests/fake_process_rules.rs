//! Section 4, row by row, on the process fakes.

use std::sync::Arc;

use process_transport_api::implement::ProducerCall::{Pause, Resume, Stop};
use process_transport_api::{
    Address, ChildFd, ChildFdMapping, ProcessEnd, ProcessSpawner, ProcessTransport, PushProducer,
    Signal, SpawnSpec, Transport, TransportError,
};
use process_transport_fakes::{
    assert_bytes_eq, FakeChild, MemoryProcessReactor, MemoryProcessTransport,
};
use process_transport_tests::{Event, Recorder, RecordingProducer};

fn spawn(spec: SpawnSpec) -> (FakeChild, process_transport_tests::Log) {
    let (recorder, log) = Recorder::new();
    let child = MemoryProcessReactor::new().spawn(recorder, spec).unwrap();
    (child, log)
}

fn with_extra_fds() -> SpawnSpec {
    SpawnSpec::new("tool")
        .child_fd(ChildFd(3), ChildFdMapping::ParentWrites)
        .child_fd(ChildFd(4), ChildFdMapping::ParentReads)
}

#[test]
fn write_and_write_sequence_go_to_stdin_in_order() {
    let transport = MemoryProcessTransport::new();
    transport.write(b"one ").unwrap();
    transport
        .write_sequence(&[b"two ", b"", b"three "])
        .unwrap();
    transport.write_to_child(ChildFd::STDIN, b"four").unwrap();
    assert_bytes_eq!(transport.value(), b"one two three four");
    assert_bytes_eq!(transport.value_of(ChildFd::STDIN), b"one two three four");
    assert_eq!(
        transport.child().read(ChildFd::STDIN),
        b"one two three four"
    );
}

#[test]
fn writing_to_an_fd_not_mapped_for_writing_is_unknown_child_fd() {
    let transport = MemoryProcessTransport::with_child_fds(with_extra_fds().get_child_fds());
    for fd in [ChildFd(9), ChildFd::STDOUT, ChildFd::STDERR, ChildFd(4)] {
        let err = transport.write_to_child(fd, b"x").unwrap_err();
        assert!(
            matches!(err, TransportError::UnknownChildFd(got) if got == fd),
            "{err:?}"
        );
    }
    transport.write_to_child(ChildFd(3), b"extra").unwrap();
    assert_bytes_eq!(transport.value_of(ChildFd(3)), b"extra");
    assert_bytes_eq!(transport.value_of(ChildFd(4)), b"");
}

#[test]
fn an_inherited_fd_is_not_writable() {
    let spec = SpawnSpec::new("tool").child_fd(ChildFd(5), ChildFdMapping::Inherit(1));
    let transport = MemoryProcessTransport::with_child_fds(spec.get_child_fds());
    assert!(matches!(
        transport.write_to_child(ChildFd(5), b"x"),
        Err(TransportError::UnknownChildFd(ChildFd(5)))
    ));
}

fn assert_closed(result: Result<(), TransportError>, fd: u32) {
    assert!(
        matches!(result, Err(TransportError::ChildFdClosed(ChildFd(got))) if got == fd),
        "{result:?}"
    );
}

#[test]
fn write_after_close_child_fd_is_child_fd_closed() {
    let transport = MemoryProcessTransport::with_child_fds(with_extra_fds().get_child_fds());
    transport.close_child_fd(ChildFd(3));
    assert_closed(transport.write_to_child(ChildFd(3), b"x"), 3);
    transport.close_child_fd(ChildFd::STDIN);
    assert_closed(transport.write(b"x"), 0);
    assert_closed(transport.write_sequence(&[b"x"]), 0);
    assert_bytes_eq!(transport.value_of(ChildFd(3)), b"");
}

#[test]
fn write_after_close_stdin_is_an_error() {
    let transport = MemoryProcessTransport::new();
    transport.write(b"kept").unwrap();
    transport.close_stdin();
    assert_closed(transport.write(b"lost?"), 0);
    assert_closed(transport.write_to_child(ChildFd::STDIN, b"lost?"), 0);
    assert_bytes_eq!(transport.value(), b"kept");
}

#[test]
fn write_after_lose_connection_is_an_error() {
    let transport = MemoryProcessTransport::new();
    transport.lose_connection();
    assert_closed(transport.write(b"x"), 0);
}

#[test]
fn write_after_the_child_closed_its_end_is_an_error() {
    let (child, log) = spawn(SpawnSpec::new("head").args(["-n", "1"]));
    let transport = child.transport();
    transport.write(b"line\n").unwrap();
    child.close(ChildFd::STDIN);
    assert_closed(transport.write(b"more\n"), 0);
    assert_eq!(
        log.events(),
        [Event::Connected, Event::Lost(ChildFd::STDIN)]
    );
}

#[test]
fn close_stdin_delivers_buffered_bytes_then_eof_and_stops_the_producer() {
    let (child, log) = spawn(SpawnSpec::new("cat"));
    let transport = child.transport();
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    transport.write(b"buffered").unwrap();
    transport.close_stdin();
    assert!(!child.at_eof(ChildFd::STDIN), "the bytes come first");
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"buffered");
    assert!(child.at_eof(ChildFd::STDIN));
    assert_eq!(producer.calls(), [Stop]);
    assert!(transport.producer().is_none());
    assert_eq!(transport.closed_child_fds(), [ChildFd::STDIN]);
    assert_eq!(
        log.events(),
        [Event::Connected, Event::Lost(ChildFd::STDIN)]
    );
}

#[test]
fn close_child_fd_of_an_unknown_or_closed_fd_has_no_effect() {
    let (child, log) = spawn(SpawnSpec::new("cat"));
    let transport = child.transport();
    transport.close_child_fd(ChildFd(7));
    transport.close_stdout();
    transport.close_stdout();
    transport.close_child_fd(ChildFd::STDOUT);
    assert_eq!(transport.closed_child_fds(), [ChildFd::STDOUT]);
    assert_eq!(
        log.events(),
        [Event::Connected, Event::Lost(ChildFd::STDOUT)]
    );
}

#[test]
fn closing_a_read_pipe_stops_its_output() {
    let (child, log) = spawn(SpawnSpec::new("cat"));
    child.write(ChildFd::STDERR, b"before").unwrap();
    child.transport().close_stderr();
    assert!(matches!(
        child.write(ChildFd::STDERR, b"after"),
        Err(TransportError::ChildFdClosed(ChildFd(2)))
    ));
    assert_bytes_eq!(log.bytes(ChildFd::STDERR), b"before");
    assert_eq!(
        log.milestones(),
        [Event::Connected, Event::Lost(ChildFd::STDERR)]
    );
}

#[test]
fn lose_connection_closes_stdin_then_stderr_then_stdout() {
    let (child, log) = spawn(with_extra_fds());
    let transport = child.transport();
    transport.lose_connection();
    assert_eq!(
        transport.closed_child_fds(),
        [ChildFd(0), ChildFd(2), ChildFd(1)]
    );
    assert_eq!(
        log.events(),
        [
            Event::Connected,
            Event::Lost(ChildFd(0)),
            Event::Lost(ChildFd(2)),
            Event::Lost(ChildFd(1))
        ]
    );
    transport
        .write_to_child(ChildFd(3), b"extra fds stay open")
        .unwrap();
}

#[test]
fn lose_connection_skips_fds_that_are_not_pipes() {
    let spec = SpawnSpec::new("tool")
        .no_child_fd(ChildFd::STDIN)
        .child_fd(ChildFd::STDERR, ChildFdMapping::Inherit(2));
    let (child, log) = spawn(spec);
    child.transport().lose_connection();
    assert_eq!(child.transport().closed_child_fds(), [ChildFd::STDOUT]);
    assert_eq!(
        log.events(),
        [Event::Connected, Event::Lost(ChildFd::STDOUT)]
    );
}

#[test]
fn signals_are_recorded_in_order_while_the_process_runs() {
    let transport = MemoryProcessTransport::new();
    for signal in [
        Signal::Hup,
        Signal::Int,
        Signal::Number(10),
        Signal::Stop,
        Signal::Term,
        Signal::Kill,
    ] {
        transport.signal_process(signal).unwrap();
    }
    assert_eq!(
        transport.signals(),
        [
            Signal::Hup,
            Signal::Int,
            Signal::Number(10),
            Signal::Stop,
            Signal::Term,
            Signal::Kill
        ]
    );
}

#[test]
fn signal_after_the_exit_is_process_exited_already() {
    let (child, _log) = spawn(SpawnSpec::new("cat"));
    let transport = child.transport();
    child.exit_keeping_fds(ProcessEnd::Done);
    let err = transport.signal_process(Signal::Term).unwrap_err();
    assert!(
        matches!(err, TransportError::ProcessExitedAlready),
        "{err:?}"
    );
    assert_eq!(transport.signals(), []);
}

#[test]
fn pid_is_set_until_the_exit_and_none_after() {
    let transport = MemoryProcessTransport::new();
    assert_eq!(transport.pid(), Some(process_transport_fakes::DEFAULT_PID));
    transport.set_pid(Some(77));
    assert_eq!(transport.pid(), Some(77));
    transport.child().exit(0);
    assert_eq!(transport.pid(), None);
    transport.set_pid(Some(78));
    assert_eq!(
        transport.pid(),
        None,
        "a pid cannot come back after the exit"
    );
}

#[test]
fn the_reactor_gives_each_child_its_own_pid() {
    let reactor = MemoryProcessReactor::new();
    let first = reactor
        .spawn(Recorder::new().0, SpawnSpec::new("a"))
        .unwrap();
    let second = reactor
        .spawn(Recorder::new().0, SpawnSpec::new("b"))
        .unwrap();
    assert_eq!(first.transport().pid(), Some(1000));
    assert_eq!(second.transport().pid(), Some(1001));
}

#[test]
fn registering_a_second_producer_is_an_error() {
    let transport = MemoryProcessTransport::new();
    transport
        .register_producer(RecordingProducer::new(), true)
        .unwrap();
    let err = transport
        .register_producer(RecordingProducer::new(), true)
        .unwrap_err();
    assert!(
        matches!(err, TransportError::ProducerAlreadyRegistered),
        "{err:?}"
    );
}

#[test]
fn unregistering_without_a_producer_is_an_error() {
    let transport = MemoryProcessTransport::new();
    let err = transport.unregister_producer().unwrap_err();
    assert!(
        matches!(err, TransportError::NoProducerRegistered),
        "{err:?}"
    );
    transport
        .register_producer(RecordingProducer::new(), true)
        .unwrap();
    transport.unregister_producer().unwrap();
    assert!(matches!(
        transport.unregister_producer(),
        Err(TransportError::NoProducerRegistered)
    ));
}

#[test]
fn a_producer_registered_without_stdin_is_stopped_at_once() {
    let spec = SpawnSpec::new("tool").no_child_fd(ChildFd::STDIN);
    let transport = MemoryProcessTransport::with_child_fds(spec.get_child_fds());
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    assert_eq!(producer.calls(), [Stop]);
    assert!(transport.producer().is_none());

    let closed = MemoryProcessTransport::new();
    closed.close_stdin();
    let producer = RecordingProducer::new();
    closed.register_producer(producer.clone(), false).unwrap();
    assert_eq!(producer.calls(), [Stop]);
}

#[test]
fn a_pull_producer_is_resumed_at_once_and_each_time_the_buffer_drains() {
    let transport = MemoryProcessTransport::new();
    let writer = transport.clone();
    let mut sent = 0;
    let producer = RecordingProducer::on_resume(move || {
        if sent < 3 {
            sent += 1;
            writer.write(format!("chunk {sent};").as_bytes()).unwrap();
        }
    });
    transport
        .register_producer(producer.clone(), false)
        .unwrap();
    assert_eq!(producer.calls(), [Resume]);
    let child = transport.child();
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"chunk 1;");
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"chunk 2;");
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"chunk 3;");
    assert_eq!(producer.calls(), [Resume, Resume, Resume, Resume]);
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"");
    assert_eq!(
        producer.calls().len(),
        4,
        "an empty buffer that stays empty is no drain"
    );
}

#[test]
fn a_push_producer_is_paused_above_the_high_water_mark_and_resumed_when_drained() {
    let transport = MemoryProcessTransport::new();
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    transport.write(&vec![b'a'; 64 * 1024]).unwrap();
    assert_eq!(producer.calls(), [], "at the mark is not over it");
    transport.write(b"b").unwrap();
    assert_eq!(producer.calls(), [Pause]);
    transport.write(b"c").unwrap();
    assert_eq!(producer.calls(), [Pause], "paused once");
    assert_eq!(transport.child().read(ChildFd::STDIN).len(), 64 * 1024 + 2);
    assert_eq!(producer.calls(), [Pause, Resume]);
}

#[test]
fn the_high_water_mark_can_be_set() {
    let transport = MemoryProcessTransport::new();
    transport.set_high_water(4);
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    transport.write(b"12345").unwrap();
    assert_eq!(producer.calls(), [Pause]);
}

#[test]
fn pausing_the_transport_holds_output_but_not_the_exit() {
    let (child, log) = spawn(SpawnSpec::new("cat"));
    let transport = child.transport();
    child.write(ChildFd::STDOUT, b"before ").unwrap();
    transport.pause_producing();
    child.write(ChildFd::STDOUT, b"held").unwrap();
    child.write(ChildFd::STDERR, b"held too").unwrap();
    child.exit(0);
    assert_eq!(
        log.events(),
        [
            Event::Connected,
            Event::Data(ChildFd::STDOUT, b"before ".to_vec()),
            Event::Lost(ChildFd::STDIN),
            Event::Exited(ProcessEnd::Done),
        ]
    );
    assert_eq!(transport.ended_now(), None);
    transport.resume_producing();
    assert_eq!(
        log.events()[4..],
        [
            Event::Data(ChildFd::STDOUT, b"held".to_vec()),
            Event::Data(ChildFd::STDERR, b"held too".to_vec()),
            Event::Lost(ChildFd::STDOUT),
            Event::Lost(ChildFd::STDERR),
            Event::Ended(ProcessEnd::Done),
        ]
    );
    assert_eq!(transport.ended_now(), Some(ProcessEnd::Done));
}

#[test]
fn a_process_transport_is_addressed_as_a_process() {
    let transport = MemoryProcessTransport::new();
    assert_eq!(transport.host(), Address::Process);
    assert_eq!(transport.peer(), Address::Process);
}

#[test]
fn clones_share_state() {
    let kept = MemoryProcessTransport::new();
    let handed_out: Arc<dyn ProcessTransport> = Arc::new(kept.clone());
    handed_out.write(b"via the clone").unwrap();
    handed_out.signal_process(Signal::Int).unwrap();
    handed_out.close_stdin();
    assert_bytes_eq!(kept.value(), b"via the clone");
    assert_eq!(kept.signals(), [Signal::Int]);
    assert_eq!(kept.closed_child_fds(), [ChildFd::STDIN]);
}

#[test]
fn a_spawn_with_a_nul_byte_fails_and_delivers_nothing() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let err = futures_executor::block_on(
        reactor.spawn_process(recorder, SpawnSpec::new("echo").arg("a\0b")),
    )
    .err()
    .expect("the spawn fails");
    assert!(
        matches!(err, process_transport_api::SpawnError::InvalidSpec(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"echo\""), "{err}");
    assert_eq!(log.events(), []);
    assert!(reactor.spawns().is_empty());
}
