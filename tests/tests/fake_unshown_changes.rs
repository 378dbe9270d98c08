//! The fakes never let a call fail, or a script act, because of a change the protocol has not
//! been shown yet; `with_protocol` never deadlocks on the events its closure causes; an
//! unregistered producer hears nothing more.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use process_transport_api::{
    implement::ProducerCall, ChildFd, CloseReason, ProcessEnd, ProcessProtocol, ProcessTransport,
    Protocol, Signal, SpawnSpec, Transport, TransportError,
};
use process_transport_fakes::{
    assert_bytes_eq, FakeChild, MemoryProcessReactor, Script, StringTransportWithDisconnection,
};
use process_transport_tests::{Event, Recorder, RecordingProducer, HANG_GUARD};

/// Runs `body` on another thread and fails the test if it does not finish within the guard:
/// the defects these tests pin down used to hang.
fn without_hanging<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(body());
    });
    result
        .recv_timeout(HANG_GUARD)
        .expect("the call hung (or panicked): events caused inside with_protocol must queue")
}

#[derive(Default)]
struct Keep {
    transport: Option<Arc<dyn ProcessTransport>>,
    out: Vec<u8>,
    lost: Vec<ChildFd>,
}

impl ProcessProtocol for Keep {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        self.transport = Some(transport);
    }
    fn child_data_received(&mut self, _fd: ChildFd, data: &[u8]) {
        self.out.extend_from_slice(data);
    }
    fn child_connection_lost(&mut self, fd: ChildFd) {
        self.lost.push(fd);
    }
}

fn keep_transport(keep: &mut Keep) -> Arc<dyn ProcessTransport> {
    keep.transport.clone().expect("make_connection ran")
}

#[test]
fn closing_stdin_inside_with_protocol_delivers_the_loss_after_the_closure() {
    let lost = without_hanging(|| {
        let child = MemoryProcessReactor::new()
            .spawn(Box::new(Keep::default()), SpawnSpec::new("cat"))
            .unwrap();
        child.with_protocol(|keep: &mut Keep| {
            keep_transport(keep).close_stdin();
            assert_eq!(keep.lost, [], "delivered under the closure");
        });
        child.with_protocol(|keep: &mut Keep| keep.lost.clone())
    });
    assert_eq!(lost, [ChildFd::STDIN]);
}

#[test]
fn a_write_to_a_scripted_cat_inside_with_protocol_is_echoed_after_the_closure() {
    let out = without_hanging(|| {
        let reactor = MemoryProcessReactor::new();
        reactor.register(["cat"], Script::cat());
        let child = reactor
            .spawn(Box::new(Keep::default()), SpawnSpec::new("cat"))
            .unwrap();
        child.with_protocol(|keep: &mut Keep| keep_transport(keep).write(b"echo me").unwrap());
        child.with_protocol(|keep: &mut Keep| keep.out.clone())
    });
    assert_bytes_eq!(out, b"echo me");
}

#[derive(Default)]
struct KeepConnection {
    transport: Option<Arc<dyn Transport>>,
    lost: Vec<CloseReason>,
}

impl Protocol for KeepConnection {
    fn make_connection(&mut self, transport: Arc<dyn Transport>) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, _data: &[u8]) {}
    fn connection_lost(&mut self, reason: CloseReason) {
        self.lost.push(reason);
    }
}

#[test]
fn lose_connection_inside_with_protocol_of_a_string_transport_is_delivered_after_it() {
    let lost = without_hanging(|| {
        let transport = StringTransportWithDisconnection::new();
        transport.connect(Box::new(KeepConnection::default()));
        transport.with_protocol(|p: &mut KeepConnection| {
            p.transport.as_ref().unwrap().lose_connection();
        });
        transport.with_protocol(|p: &mut KeepConnection| p.lost.clone())
    });
    assert_eq!(lost, [CloseReason::Done]);
}

#[test]
#[should_panic(expected = "with_protocol misuse: called from inside one of the protocol's own")]
fn with_protocol_from_inside_a_callback_is_a_named_misuse_not_a_deadlock() {
    let slot: Arc<Mutex<Option<FakeChild>>> = Arc::default();
    let own = slot.clone();
    let (recorder, _log) = Recorder::reacting(move |event, _| {
        if let Event::Data(..) = event {
            let child = own.lock().unwrap().clone().unwrap();
            child.with_protocol(|_: &mut Recorder| ());
        }
    });
    let child = MemoryProcessReactor::new()
        .spawn(recorder, SpawnSpec::new("cat"))
        .unwrap();
    *slot.lock().unwrap() = Some(child.clone());
    child.write(ChildFd::STDOUT, "x").unwrap();
}

#[test]
fn a_signal_in_the_loss_of_stdin_does_not_overtake_the_end_of_file_the_script_saw_first() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = results.clone();
    let (recorder, log) = Recorder::reacting(move |event, transport| {
        if *event == Event::Lost(ChildFd::STDIN) {
            seen.lock().unwrap().push(
                transport
                    .signal_process(Signal::Term)
                    .map_err(|e| e.to_string()),
            );
        }
    });
    let reactor = MemoryProcessReactor::new();
    reactor.register(["lines"], Script::answer_lines(|line| format!("{line}!\n")));
    let child = reactor.spawn(recorder, SpawnSpec::new("lines")).unwrap();
    child.transport().write(b"a\n").unwrap();
    child.transport().close_stdin();
    assert_eq!(*results.lock().unwrap(), [Ok(())]);
    assert_eq!(
        log.events(),
        [
            Event::Connected,
            Event::Data(ChildFd::STDOUT, b"a!\n".to_vec()),
            Event::Lost(ChildFd::STDIN),
            Event::Lost(ChildFd::STDOUT),
            Event::Lost(ChildFd::STDERR),
            Event::Exited(ProcessEnd::Done),
            Event::Ended(ProcessEnd::Done),
        ],
        "the script saw the end of file first and exited 0; the TERM found it gone"
    );
    assert_eq!(child.transport().signals(), [Signal::Term]);
}

#[test]
fn a_write_after_a_fatal_signal_succeeds_until_the_loss_of_stdin_is_delivered() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = results.clone();
    let (recorder, log) = Recorder::reacting(move |event, transport| {
        let mut seen = seen.lock().unwrap();
        match event {
            Event::Data(ChildFd::STDOUT, _) => {
                seen.push((
                    "signal",
                    transport.signal_process(Signal::Term).map_err(short),
                ));
                seen.push((
                    "write before the loss",
                    transport.write(b"late").map_err(short),
                ));
            }
            Event::Lost(ChildFd::STDIN) => {
                seen.push((
                    "write after the loss",
                    transport.write(b"later").map_err(short),
                ));
            }
            Event::Exited(_) => {
                seen.push((
                    "signal after the exit",
                    transport.signal_process(Signal::Kill).map_err(short),
                ));
            }
            _ => {}
        }
    });
    let reactor = MemoryProcessReactor::new();
    reactor.register(["cat"], Script::cat());
    let child = reactor.spawn(recorder, SpawnSpec::new("cat")).unwrap();
    // Output the test plays, so that the callback runs outside the script's own reactions.
    child.write(ChildFd::STDOUT, "ping").unwrap();
    assert_eq!(
        *results.lock().unwrap(),
        [
            ("signal", Ok(())),
            ("write before the loss", Ok(())),
            (
                "write after the loss",
                Err("ChildFdClosed(ChildFd(0))".to_owned())
            ),
            (
                "signal after the exit",
                Err("ProcessExitedAlready".to_owned())
            ),
        ]
    );
    let killed = ProcessEnd::from_signal(Signal::Term.linux_number());
    assert_eq!(log.ended(), Some(killed));
    // What the protocol wrote is all on record; what came after the child died reached no one.
    assert_bytes_eq!(child.transport().value(), b"late");
    assert_eq!(child.unread(ChildFd::STDIN), 0);
}

fn short(err: TransportError) -> String {
    format!("{err:?}")
}

#[test]
fn an_unregistered_producer_hears_nothing_queued_before_the_unregistration() {
    let producer = RecordingProducer::new();
    let registered = producer.clone();
    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = results.clone();
    let (recorder, _log) = Recorder::reacting(move |event, transport| {
        if *event == Event::Connected {
            transport
                .register_producer(registered.clone(), true)
                .unwrap();
            // Over the high-water mark: a pause is queued behind make_connection...
            transport.write(&vec![b'x'; 70 * 1024]).unwrap();
            // ...and the producer goes before it is delivered.
            seen.lock()
                .unwrap()
                .push(transport.unregister_producer().is_ok());
        }
    });
    let reactor = MemoryProcessReactor::new();
    reactor.register(["slow"], Script::new().holds_stdin());
    let child = reactor.spawn(recorder, SpawnSpec::new("slow")).unwrap();
    assert_eq!(*results.lock().unwrap(), [true]);
    child.read(ChildFd::STDIN);
    child.transport().close_stdin();
    assert_eq!(producer.calls(), Vec::<ProducerCall>::new());
}

#[test]
#[should_panic(expected = "data_received misuse: the connection was lost")]
fn data_after_connection_lost_is_a_named_misuse() {
    let transport = StringTransportWithDisconnection::new();
    transport.connect(Box::new(KeepConnection::default()));
    transport.lose_connection();
    transport.data_received(b"too late");
}
