//! Section 11 on the fakes: a terminal child's fd shape, line discipline, size and hang-up.

use std::sync::Arc;

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport, PtySize, Signal, SpawnSpec, Transport,
    TransportError,
};
use process_transport_fakes::{
    DeliveredEvent, MemoryProcessReactor, Script, TerminalModes, TransportCall,
};

struct Quiet;
impl ProcessProtocol for Quiet {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

fn shown(events: &[DeliveredEvent]) -> String {
    let bytes: Vec<u8> = events
        .iter()
        .filter_map(|event| match event {
            DeliveredEvent::ChildDataReceived(ChildFd::STDOUT, data) => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn typed_input_is_echoed_and_reaches_the_child_a_line_at_a_time() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cat"], Script::cat());
    let child = reactor
        .spawn(Box::new(Quiet), SpawnSpec::new("cat").use_pty(true))
        .unwrap();
    let transport = child.transport();
    transport.set_chunk_size(Some(1));
    transport.write(b"ab\x7fc").unwrap();
    assert_eq!(child.unread(ChildFd::STDIN), 0, "no whole line yet");
    transport.write(b"\r").unwrap();
    transport.write(b"tail").unwrap();
    transport.close_stdin();
    let events = transport.call_log().events();
    assert_eq!(shown(&events), "ab\x08 \x08c\r\nac\r\ntailtail");
    assert_eq!(transport.ended_now(), Some(ProcessEnd::Done));
    let losses: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, DeliveredEvent::ChildConnectionLost(_)))
        .collect();
    assert_eq!(
        losses,
        [
            &DeliveredEvent::ChildConnectionLost(ChildFd::STDIN),
            &DeliveredEvent::ChildConnectionLost(ChildFd::STDOUT)
        ]
    );
}

#[test]
fn output_on_fds_0_1_and_2_comes_as_fd_1_with_crlf_and_fd_3_is_unknown() {
    let reactor = MemoryProcessReactor::new();
    let child = reactor
        .spawn(Box::new(Quiet), SpawnSpec::new("prog").use_pty(true))
        .unwrap();
    child.write(ChildFd::STDOUT, "out\n").unwrap();
    child.write(ChildFd::STDERR, "err\n").unwrap();
    child.write(ChildFd::STDIN, "in\n").unwrap();
    assert!(matches!(
        child.write(ChildFd(3), "x"),
        Err(TransportError::UnknownChildFd(ChildFd(3)))
    ));
    let transport = child.transport();
    assert!(matches!(
        transport.write_to_child(ChildFd::STDERR, b"x"),
        Err(TransportError::UnknownChildFd(ChildFd(2)))
    ));
    assert_eq!(
        shown(&transport.call_log().events()),
        "out\r\nerr\r\nin\r\n"
    );
    // stty raw -echo -onlcr
    child.set_terminal_modes(TerminalModes::PASSTHROUGH);
    child.write(ChildFd::STDOUT, "raw\n").unwrap();
    transport.write(b"typed\r").unwrap();
    assert_eq!(child.read(ChildFd::STDIN), b"typed\r");
    assert!(shown(&transport.call_log().events()).ends_with("in\r\nraw\n"));
}

#[test]
fn the_size_is_recorded_and_resize_pty_is_logged() {
    let reactor = MemoryProcessReactor::new();
    let spec = SpawnSpec::new("top")
        .use_pty(true)
        .pty_size(PtySize::new(50, 132));
    let child = reactor.spawn(Box::new(Quiet), spec).unwrap();
    assert_eq!(child.terminal_size(), Some(PtySize::new(50, 132)));
    assert_eq!(child.terminal_modes(), Some(TerminalModes::COOKED));
    child.transport().resize_pty(PtySize::new(10, 40)).unwrap();
    assert_eq!(child.terminal_size(), Some(PtySize::new(10, 40)));
    assert_eq!(
        child.transport().call_log().calls(),
        [TransportCall::ResizePty(PtySize::new(10, 40))]
    );

    let piped = reactor
        .spawn(Box::new(Quiet), SpawnSpec::new("top"))
        .unwrap();
    assert_eq!(piped.terminal_size(), None);
    assert!(matches!(
        piped.transport().resize_pty(PtySize::new(1, 1)),
        Err(TransportError::NoTerminal)
    ));
}

#[test]
fn closing_both_fds_of_the_terminal_hangs_the_child_up() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["sleep", "600"], Script::new().holds_stdin());
    let child = reactor
        .spawn(
            Box::new(Quiet),
            SpawnSpec::new("sleep").arg("600").use_pty(true),
        )
        .unwrap();
    let transport = child.transport();
    transport.close_stdout();
    assert_eq!(transport.ended_now(), None, "one fd closed: no hang-up yet");
    transport.close_stdin();
    assert_eq!(
        transport.ended_now(),
        Some(ProcessEnd::from_signal(Signal::Hup.linux_number()))
    );
}

#[test]
#[should_panic(
    expected = "FakeChild::set_terminal_modes misuse: `prog` was spawned without use_pty"
)]
fn setting_terminal_modes_without_a_terminal_is_a_misuse() {
    let reactor = MemoryProcessReactor::new();
    let child = reactor
        .spawn(Box::new(Quiet), SpawnSpec::new("prog"))
        .unwrap();
    child.set_terminal_modes(TerminalModes::PASSTHROUGH);
}
