//! Section 5, rule by rule, on MemoryProcessReactor.

use futures_executor::block_on;
use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessSpawner, ProcessTransport, Signal, SpawnSpec,
    Transport,
};
use process_transport_fakes::{assert_bytes_eq, MemoryProcessReactor};
use process_transport_tests::{check_order, Event, Recorder};
use std::future::Future;

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

#[test]
fn make_connection_comes_first_and_during_the_spawn() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let transport = block_on(reactor.spawn_process(recorder, SpawnSpec::new("cat"))).unwrap();
    assert_eq!(log.events(), [Event::Connected]);
    assert_eq!(transport.pid(), Some(1000));
}

#[test]
fn the_chunks_of_one_fd_join_to_what_the_child_wrote() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let child = reactor.spawn(recorder, SpawnSpec::new("cat")).unwrap();
    for chunk in ["hel", "lo ", "", "world\n"] {
        child.write(ChildFd::STDOUT, chunk).unwrap();
    }
    child.write(ChildFd::STDERR, "warn").unwrap();
    child.exit(0);
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"hello world\n");
    assert_bytes_eq!(log.bytes(ChildFd::STDERR), b"warn");
    check_order(&log.events(), &STD_PIPES).unwrap();
}

#[test]
fn every_pipe_is_lost_exactly_once_after_its_last_data() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("tool")
        .child_fd(ChildFd(3), ChildFdMapping::ParentReads)
        .child_fd(ChildFd(4), ChildFdMapping::ParentWrites)
        .child_fd(ChildFd(5), ChildFdMapping::Inherit(1));
    let child = reactor.spawn(recorder, spec).unwrap();
    child.write(ChildFd(3), "extra").unwrap();
    child.close(ChildFd(3));
    child.close(ChildFd(3));
    child.transport().close_child_fd(ChildFd(4));
    child.exit(1);
    let events = log.events();
    check_order(
        &events,
        &[ChildFd(0), ChildFd(1), ChildFd(2), ChildFd(3), ChildFd(4)],
    )
    .unwrap();
    assert_eq!(
        events,
        [
            Event::Connected,
            Event::Data(ChildFd(3), b"extra".to_vec()),
            Event::Lost(ChildFd(3)),
            Event::Lost(ChildFd(4)),
            Event::Lost(ChildFd(0)),
            Event::Lost(ChildFd(1)),
            Event::Lost(ChildFd(2)),
            Event::Exited(ProcessEnd::from_exit_code(1)),
            Event::Ended(ProcessEnd::from_exit_code(1)),
        ]
    );
}

#[test]
fn process_exited_may_come_before_the_losses_and_process_ended_waits_for_them() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let child = reactor.spawn(recorder, SpawnSpec::new("sh")).unwrap();
    let transport = child.transport();
    child.exit_keeping_fds(ProcessEnd::from_signal(9));
    assert_eq!(transport.pid(), None);
    child.write(ChildFd::STDOUT, "from a grandchild").unwrap();
    child.close(ChildFd::STDOUT);
    assert_eq!(transport.ended_now(), None);
    child.close(ChildFd::STDERR);
    assert_eq!(transport.ended_now(), None);
    child.close(ChildFd::STDIN);
    assert_eq!(
        log.milestones(),
        [
            Event::Connected,
            Event::Exited(ProcessEnd::from_signal(9)),
            Event::Lost(ChildFd::STDOUT),
            Event::Lost(ChildFd::STDERR),
            Event::Lost(ChildFd::STDIN),
            Event::Ended(ProcessEnd::from_signal(9)),
        ]
    );
    assert_eq!(block_on(transport.ended()), ProcessEnd::from_signal(9));
}

#[test]
fn process_exited_may_come_between_the_losses() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let child = reactor.spawn(recorder, SpawnSpec::new("sh")).unwrap();
    child.close(ChildFd::STDOUT);
    child.exit_keeping_fds(ProcessEnd::Done);
    child.close(ChildFd::STDERR);
    child.close(ChildFd::STDIN);
    check_order(&log.events(), &STD_PIPES).unwrap();
    assert_eq!(log.milestones()[2], Event::Exited(ProcessEnd::Done));
}

#[test]
fn nothing_is_delivered_after_process_ended() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let child = reactor.spawn(recorder, SpawnSpec::new("cat")).unwrap();
    child.kill(Signal::Term);
    let transport = child.transport();
    transport.lose_connection();
    transport.close_child_fd(ChildFd::STDOUT);
    assert!(child.write(ChildFd::STDOUT, "late").is_err());
    child.close(ChildFd::STDOUT);
    check_order(&log.events(), &STD_PIPES).unwrap();
    assert_eq!(log.ended(), Some(ProcessEnd::from_signal(15)));
}

#[test]
fn ended_resolves_only_after_process_ended_was_delivered() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if let Event::Ended(_) = event {
            // Inside process_ended the future is not resolved yet.
            let mut ended = std::pin::pin!(transport.ended());
            let waker = std::task::Waker::noop();
            let pending = ended
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_pending();
            assert!(pending, "ended() resolved before process_ended returned");
        }
    });
    let child = reactor.spawn(recorder, SpawnSpec::new("cat")).unwrap();
    let transport = child.transport();
    let waiter = std::thread::spawn(move || block_on(transport.ended()));
    child.exit(2);
    assert_eq!(waiter.join().unwrap(), ProcessEnd::from_exit_code(2));
    assert_eq!(log.reentered(), 0);
}

#[test]
fn a_failed_spawn_never_calls_make_connection() {
    let reactor = MemoryProcessReactor::new();
    let (recorder, log) = Recorder::new();
    let result = block_on(reactor.spawn_process(recorder, SpawnSpec::new("")));
    assert!(matches!(
        result,
        Err(process_transport_api::SpawnError::InvalidSpec(_))
    ));
    assert_eq!(log.events(), []);
}

#[test]
fn the_reactor_records_every_spec_and_hands_the_protocol_back() {
    let reactor = MemoryProcessReactor::new();
    let specs = [
        SpawnSpec::new("sort").arg("-r").env("LC_ALL", "C"),
        SpawnSpec::new("/bin/sh").args(["-c", "exit 3"]).cwd("/tmp"),
    ];
    for spec in &specs {
        reactor.spawn(Recorder::new().0, spec.clone()).unwrap();
    }
    assert_eq!(reactor.spawns(), specs);
    let recorder = reactor.child(1).take_protocol::<Recorder>();
    assert!(recorder.transport().is_some());
    assert_eq!(reactor.children().len(), 2);
}

#[test]
#[should_panic(expected = "FakeChild: the protocol is not a")]
fn asking_for_the_wrong_protocol_type_panics_with_its_name() {
    let reactor = MemoryProcessReactor::new();
    reactor
        .spawn(Recorder::new().0, SpawnSpec::new("cat"))
        .unwrap();
    reactor.last_child().with_protocol(|_: &mut WrongType| ());
}

struct WrongType;
impl process_transport_api::ProcessProtocol for WrongType {
    fn make_connection(&mut self, _: std::sync::Arc<dyn ProcessTransport>) {}
}

#[test]
#[should_panic(expected = "FakeChild::end misuse: the child already exited (exited with code 0)")]
fn exiting_twice_is_a_misuse() {
    let reactor = MemoryProcessReactor::new();
    let child = reactor
        .spawn(Recorder::new().0, SpawnSpec::new("cat"))
        .unwrap();
    child.exit(0);
    child.exit(0);
}

#[test]
fn the_child_cannot_write_after_closing_its_end_or_on_a_pipe_it_reads() {
    let reactor = MemoryProcessReactor::new();
    let child = reactor
        .spawn(Recorder::new().0, SpawnSpec::new("cat"))
        .unwrap();
    child.close(ChildFd::STDOUT);
    assert!(matches!(
        child.write(ChildFd::STDOUT, "x"),
        Err(process_transport_api::TransportError::ChildFdClosed(
            ChildFd(1)
        ))
    ));
    assert!(matches!(
        child.write(ChildFd::STDIN, "x"),
        Err(process_transport_api::TransportError::UnknownChildFd(
            ChildFd(0)
        ))
    ));
}
