//! A protocol that calls its transport from inside each kind of callback: the events those
//! calls cause come after the running callback returns, never nested, and nothing deadlocks.

use std::sync::{Arc, Mutex};

use process_transport_api::{ChildFd, ProcessEnd, Signal, SpawnSpec, TransportError};
use process_transport_fakes::{assert_bytes_eq, MemoryProcessReactor};
use process_transport_tests::{check_order, Event, Recorder, RecordingProducer};

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

#[test]
fn lose_connection_inside_make_connection_is_delivered_after_it() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.write(b"bye").unwrap();
            transport.lose_connection();
        }
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    assert_eq!(
        log.events(),
        [
            Event::Connected,
            Event::Lost(ChildFd(0)),
            Event::Lost(ChildFd(2)),
            Event::Lost(ChildFd(1))
        ]
    );
    assert_bytes_eq!(child.read(ChildFd::STDIN), b"bye");
    assert_eq!(log.reentered(), 0);
}

#[test]
fn closing_inside_child_data_received_queues_the_loss() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if let Event::Data(ChildFd::STDOUT, data) = event {
            if data.ends_with(b"\n") {
                transport.close_stdout();
                transport.close_stdin();
            }
        }
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    child.write(ChildFd::STDOUT, "line\n").unwrap();
    assert_eq!(
        log.events(),
        [
            Event::Connected,
            Event::Data(ChildFd::STDOUT, b"line\n".to_vec()),
            Event::Lost(ChildFd::STDOUT),
            Event::Lost(ChildFd::STDIN),
        ]
    );
    assert_eq!(log.reentered(), 0);
}

#[test]
fn closing_another_fd_inside_child_connection_lost_chains_without_nesting() {
    let (recorder, log) = Recorder::reacting(|event, transport| match event {
        Event::Lost(ChildFd::STDOUT) => transport.close_stderr(),
        Event::Lost(ChildFd::STDERR) => transport.close_stdin(),
        _ => {}
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    child.close(ChildFd::STDOUT);
    child.exit(0);
    let events = log.events();
    assert_eq!(
        events,
        [
            Event::Connected,
            Event::Lost(ChildFd::STDOUT),
            Event::Lost(ChildFd::STDERR),
            Event::Lost(ChildFd::STDIN),
            Event::Exited(ProcessEnd::Done),
            Event::Ended(ProcessEnd::Done),
        ]
    );
    check_order(&events, &STD_PIPES).unwrap();
    assert_eq!(log.reentered(), 0);
}

#[test]
fn inside_process_exited_the_pid_is_gone_and_signals_are_refused() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let inside = seen.clone();
    let (recorder, log) = Recorder::reacting(move |event, transport| {
        if let Event::Exited(_) = event {
            let refused = matches!(
                transport.signal_process(Signal::Kill),
                Err(TransportError::ProcessExitedAlready)
            );
            inside.lock().unwrap().push((transport.pid(), refused));
            transport.lose_connection();
        }
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    child.exit_keeping_fds(ProcessEnd::from_exit_code(4));
    assert_eq!(*seen.lock().unwrap(), [(None, true)]);
    assert_eq!(
        log.milestones(),
        [
            Event::Connected,
            Event::Exited(ProcessEnd::from_exit_code(4)),
            Event::Lost(ChildFd(0)),
            Event::Lost(ChildFd(2)),
            Event::Lost(ChildFd(1)),
            Event::Ended(ProcessEnd::from_exit_code(4)),
        ]
    );
    assert_eq!(log.reentered(), 0);
}

#[test]
fn calls_inside_process_ended_are_answered_and_deliver_nothing() {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let inside = answers.clone();
    let (recorder, log) = Recorder::reacting(move |event, transport| {
        if let Event::Ended(_) = event {
            inside
                .lock()
                .unwrap()
                .push(format!("{:?}", transport.write(b"late")));
            transport.lose_connection();
            transport.close_child_fd(ChildFd(1));
        }
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    child.exit(0);
    assert_eq!(*answers.lock().unwrap(), ["Err(ChildFdClosed(ChildFd(0)))"]);
    check_order(&log.events(), &STD_PIPES).unwrap();
}

#[test]
fn a_pull_producer_that_writes_inside_resume_is_not_reentered() {
    let child = MemoryProcessReactor::new()
        .spawn(Recorder::new().0, SpawnSpec::new("cat"))
        .unwrap();
    let transport = child.transport();
    let writer = transport.clone();
    let child_side = child.clone();
    let mut rounds = 0;
    let producer = RecordingProducer::on_resume(move || {
        rounds += 1;
        if rounds <= 3 {
            use process_transport_api::Transport;
            writer.write(format!("{rounds}").as_bytes()).unwrap();
            // The child drains at once: the resume this causes is queued, not nested.
            assert_eq!(
                child_side.read(ChildFd::STDIN),
                format!("{rounds}").as_bytes()
            );
        }
    });
    use process_transport_api::Transport;
    transport
        .register_producer(producer.clone(), false)
        .unwrap();
    assert_eq!(producer.calls().len(), 4);
    assert_bytes_eq!(transport.value(), b"123");
}

#[test]
fn events_from_another_thread_during_a_callback_wait_their_turn() {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (recorder, log) = Recorder::reacting(move |event, _| {
        if *event == Event::Data(ChildFd::STDOUT, b"first".to_vec()) {
            started_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
        }
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    let writer = child.clone();
    let first = std::thread::spawn(move || writer.write(ChildFd::STDOUT, "first").unwrap());
    started_rx.recv().unwrap();
    // The first callback is still running: this write is queued and delivered by it.
    child.write(ChildFd::STDOUT, "second").unwrap();
    release_tx.send(()).unwrap();
    first.join().unwrap();
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"firstsecond");
    assert_eq!(log.reentered(), 0);
}
