//! Scripted children, chunked output, simulated back-pressure and the call log of the fakes.

use std::sync::{Arc, Mutex};

use process_transport_api::implement::ProducerCall::{Pause, Resume};
use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnError,
    SpawnSpec, Transport,
};
use process_transport_fakes::{
    assert_bytes_eq, DeliveredEvent, Logged, MemoryProcessReactor, Script, SignalAction,
    TransportCall,
};
use process_transport_tests::{check_order, Event, Recorder, RecordingProducer};

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

#[test]
fn a_scripted_child_answers_lines_and_exits_at_end_of_file() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["bc"],
        Script::answer_lines(|line| {
            let sum: i64 = line
                .split('+')
                .map(|n| n.trim().parse::<i64>().unwrap())
                .sum();
            format!("{sum}\n")
        }),
    );
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.write(b"1 + 2\n40 +").unwrap();
            transport.write(b" 2\n").unwrap();
            transport.close_stdin();
        }
    });
    reactor.spawn(recorder, SpawnSpec::new("bc")).unwrap();
    // Everything ran on this thread before spawn returned.
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"3\n42\n");
    assert_eq!(log.ended(), Some(ProcessEnd::Done));
    check_order(&log.events(), &STD_PIPES).unwrap();
}

#[test]
fn start_output_comes_before_reactions_to_what_make_connection_writes() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["greeter"], Script::cat().stdout("hello\n"));
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.write(b"echo me\n").unwrap();
        }
    });
    let child = reactor.spawn(recorder, SpawnSpec::new("greeter")).unwrap();
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"hello\necho me\n");
    child.transport().close_child_fd(ChildFd::STDIN);
    assert_eq!(log.ended(), Some(ProcessEnd::Done));
}

#[test]
fn a_script_can_exit_with_a_code_or_die_by_a_signal_at_once() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["sh", "-c", "exit 7"],
        Script::new().stderr("bad\n").exit(7),
    );
    reactor.register(["crash"], Script::new().killed_by(Signal::Number(11)));
    let (recorder, log) = Recorder::new();
    reactor
        .spawn(recorder, SpawnSpec::new("sh").args(["-c", "exit 7"]))
        .unwrap();
    assert_bytes_eq!(log.bytes(ChildFd::STDERR), b"bad\n");
    assert_eq!(log.ended(), Some(ProcessEnd::from_exit_code(7)));
    let (recorder, log) = Recorder::new();
    reactor.spawn(recorder, SpawnSpec::new("crash")).unwrap();
    assert_eq!(log.ended(), Some(ProcessEnd::from_signal(11)));
}

#[test]
fn signals_terminate_by_default_and_can_be_ignored_or_handled() {
    let reactor = MemoryProcessReactor::strict();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = handled.clone();
    reactor.register(
        ["daemon"],
        Script::new()
            .on_signal(Signal::Term, SignalAction::Ignore)
            .on_signal(
                Signal::Hup,
                SignalAction::Custom(Arc::new(move |child, signal| {
                    seen.lock().unwrap().push(signal);
                    child.write(ChildFd::STDOUT, "reloaded\n").unwrap();
                })),
            ),
    );
    let (recorder, log) = Recorder::new();
    let child = reactor.spawn(recorder, SpawnSpec::new("daemon")).unwrap();
    let transport = child.transport();
    transport.signal_process(Signal::Term).unwrap();
    assert_eq!(transport.exited(), None, "TERM is ignored");
    transport.signal_process(Signal::Hup).unwrap();
    assert_eq!(*handled.lock().unwrap(), [Signal::Hup]);
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"reloaded\n");
    transport.signal_process(Signal::Stop).unwrap();
    assert_eq!(transport.exited(), None, "STOP does not end a process");
    transport.signal_process(Signal::Int).unwrap();
    assert_eq!(
        log.ended(),
        Some(ProcessEnd::from_signal(2)),
        "INT terminates by default"
    );
    assert_eq!(
        transport.signals(),
        [Signal::Term, Signal::Hup, Signal::Stop, Signal::Int]
    );
}

#[test]
fn an_unregistered_program_is_not_found_on_a_strict_reactor() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat());
    let (recorder, log) = Recorder::new();
    let err = futures_executor::block_on(reactor.spawn_process(recorder, SpawnSpec::new("tac")))
        .err()
        .unwrap();
    assert!(
        matches!(err, SpawnError::NotFound(ref exe) if exe == "tac"),
        "{err:?}"
    );
    assert_eq!(log.events(), []);
}

#[test]
fn an_unregistered_command_line_of_a_known_program_names_the_closest_registered_one() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat());
    reactor.register(["cat", "-u"], Script::cat());
    let (recorder, log) = Recorder::new();
    let err = futures_executor::block_on(
        reactor.spawn_process(recorder, SpawnSpec::new("cat").arg("-n")),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            err,
            SpawnError::Unregistered { ref command, ref closest }
                if command == "cat -n" && closest.as_deref() == Some("cat -u")
        ),
        "{err:?}"
    );
    assert_eq!(log.events(), []);
    assert!(reactor.spawns().is_empty());
}

#[test]
fn a_reactor_that_is_not_strict_lets_the_test_play_unregistered_commands() {
    let reactor = MemoryProcessReactor::new();
    reactor.register(["cat"], Script::cat());
    let (recorder, log) = Recorder::new();
    let child = reactor.spawn(recorder, SpawnSpec::new("unknown")).unwrap();
    child.write(ChildFd::STDOUT, "played by the test").unwrap();
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"played by the test");
}

#[test]
fn a_command_line_registration_wins_over_a_program_registration() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register_program("git", Script::new().stdout("any\n").exit(0));
    reactor.register(["git", "status"], Script::new().stdout("clean\n").exit(0));
    for (args, expected) in [(vec!["status"], "clean\n"), (vec!["log", "-1"], "any\n")] {
        let (recorder, log) = Recorder::new();
        reactor
            .spawn(recorder, SpawnSpec::new("git").args(args))
            .unwrap();
        assert_bytes_eq!(log.bytes(ChildFd::STDOUT), expected.as_bytes());
    }
}

/// A line protocol with the framing bug chunking is meant to find: it treats every chunk as
/// one whole line.
#[derive(Default)]
struct NaiveLines(Arc<Mutex<Vec<String>>>);

impl ProcessProtocol for NaiveLines {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _fd: ChildFd, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        self.0.lock().unwrap().push(text.trim_end().to_string());
    }
}

#[test]
fn output_one_byte_at_a_time_exposes_a_framing_bug() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["ls"], Script::new().stdout("a.txt\nb.txt\n").exit(0));
    reactor
        .spawn(Box::new(NaiveLines(lines.clone())), SpawnSpec::new("ls"))
        .unwrap();
    assert_eq!(
        *lines.lock().unwrap(),
        ["a.txt\nb.txt"],
        "whole writes hide the bug"
    );

    lines.lock().unwrap().clear();
    reactor.set_chunk_size(Some(1));
    reactor
        .spawn(Box::new(NaiveLines(lines.clone())), SpawnSpec::new("ls"))
        .unwrap();
    assert_eq!(
        lines.lock().unwrap().len(),
        12,
        "one byte per chunk: {:?}",
        lines.lock().unwrap()
    );
}

#[test]
fn chunked_output_still_joins_to_what_the_child_wrote() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["talk"],
        Script::new()
            .stdout("hello world\n")
            .stderr("oops\n")
            .chunk_size(1)
            .exit(0),
    );
    let (recorder, log) = Recorder::new();
    reactor.spawn(recorder, SpawnSpec::new("talk")).unwrap();
    let chunks: Vec<usize> = log
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Data(_, data) => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, vec![1; 17]);
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"hello world\n");
    assert_bytes_eq!(log.bytes(ChildFd::STDERR), b"oops\n");
    check_order(&log.events(), &STD_PIPES).unwrap();
}

#[test]
fn a_slow_reader_fills_the_stdin_buffer_and_drains_it() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["slow"], Script::new().holds_stdin());
    let child = reactor
        .spawn(Recorder::new().0, SpawnSpec::new("slow"))
        .unwrap();
    let transport = child.transport();
    transport.set_high_water(10);
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    transport.write(b"0123456789").unwrap();
    assert_eq!(producer.calls(), [], "at the mark");
    transport.write(b"ab").unwrap();
    assert_eq!(producer.calls(), [Pause]);
    assert_eq!(child.unread(ChildFd::STDIN), 12);
    assert_eq!(child.read_at_most(ChildFd::STDIN, 5), b"01234");
    assert_eq!(producer.calls(), [Pause], "not drained yet");
    assert_eq!(child.read_at_most(ChildFd::STDIN, 100), b"56789ab");
    assert_eq!(producer.calls(), [Pause, Resume]);
}

#[test]
fn the_call_log_orders_calls_and_events_across_fds() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat().stderr("warming up\n"));
    let (recorder, _log) = Recorder::reacting(|event, transport| {
        if let Event::Data(ChildFd::STDOUT, _) = event {
            transport.close_stdin();
        }
    });
    let child = reactor.spawn(recorder, SpawnSpec::new("cat")).unwrap();
    let transport = child.transport();
    transport.write(b"hi\n").unwrap();
    assert!(transport.write_to_child(ChildFd(5), b"x").is_err());

    let log = transport.call_log();
    assert_eq!(
        log.to_string(),
        "\
<- make_connection
<- child_data_received(2, \"warming up\\n\")
-> write_to_child(0, \"hi\\n\")
<- child_data_received(1, \"hi\\n\")
-> close_child_fd(0)
<- child_connection_lost(0)
<- child_connection_lost(1)
<- child_connection_lost(2)
<- process_exited(exited with code 0)
<- process_ended(exited with code 0)
-> write_to_child(5, \"x\") failed: child fd 5 is not mapped as a pipe the parent writes
"
    );
    assert_eq!(
        log.calls(),
        [
            TransportCall::Write(ChildFd::STDIN, b"hi\n".to_vec()),
            TransportCall::CloseChildFd(ChildFd::STDIN),
            TransportCall::Write(ChildFd(5), b"x".to_vec()),
        ]
    );
    assert_eq!(
        log.events().last(),
        Some(&DeliveredEvent::ProcessEnded(ProcessEnd::Done))
    );
    assert!(matches!(
        log.entries()[2],
        Logged::Call(TransportCall::Write(..), None)
    ));
}
