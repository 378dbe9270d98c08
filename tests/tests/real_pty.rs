//! Section 11 on real processes: children on a pseudo-terminal (`use_pty`).

use std::sync::Arc;

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessSpawner, ProcessTransport, PtySize, SpawnError,
    SpawnSpec, TransportError,
};
use process_transport_real::RealSpawner;
use process_transport_tests::{check_order, guard, run_real, Event, Log, Recorder};

/// The two fds of a terminal child, in the order their losses come.
const TERMINAL: [ChildFd; 2] = [ChildFd::STDIN, ChildFd::STDOUT];

fn sh(script: &str) -> SpawnSpec {
    SpawnSpec::new("sh").args(["-c", script]).use_pty(true)
}

fn text(log: &Log) -> String {
    String::from_utf8_lossy(&log.bytes(ChildFd::STDOUT)).into_owned()
}

async fn spawn(spec: SpawnSpec) -> (Arc<dyn ProcessTransport>, Log) {
    let (recorder, log) = Recorder::new();
    let transport = RealSpawner::new()
        .spawn_process(recorder, spec)
        .await
        .expect("the spawn succeeds");
    (transport, log)
}

async fn wait_for_text(log: &Log, wanted: &str) {
    let what = format!("{wanted:?} on the terminal");
    guard(log.wait_until(&what, |events| {
        let shown: Vec<u8> = events
            .iter()
            .filter_map(|event| match event {
                Event::Data(ChildFd::STDOUT, data) => Some(data.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        String::from_utf8_lossy(&shown).contains(wanted)
    }))
    .await
    .unwrap();
}

#[tokio::test]
async fn fds_0_1_and_2_are_a_terminal_and_everything_comes_as_fd_1() {
    let (recorder, log) = Recorder::new();
    let script = "test -t 0 && test -t 1 && test -t 2 && printf 'tty\\n' && printf 'err\\n' >&2";
    let (_, end) = run_real(recorder, sh(script)).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_eq!(text(&log), "tty\r\nerr\r\n");
    check_order(&log.events(), &TERMINAL).unwrap();
    assert!(
        !log.events().contains(&Event::Lost(ChildFd::STDERR)),
        "a terminal child has no fd 2 of its own: {:?}",
        log.events()
    );
}

#[tokio::test]
async fn the_terminal_is_the_controlling_terminal_of_a_new_session() {
    let (recorder, log) = Recorder::new();
    // `tty` names the terminal; /dev/tty opens only for a process with a controlling
    // terminal; a session leader's pid is its session id.
    let script = "tty; printf 'ctty\\n' >/dev/tty; ps -o sid= -p $$ | tr -d ' '; echo $$";
    let (_, end) = run_real(recorder, sh(script)).await;
    assert_eq!(end, ProcessEnd::Done);
    let shown = text(&log);
    let lines: Vec<&str> = shown.split("\r\n").collect();
    assert!(lines[0].starts_with("/dev/pts/"), "tty: {shown:?}");
    assert_eq!(lines[1], "ctty", "{shown:?}");
    if !lines[2].is_empty() && lines[2] != lines[3] {
        panic!("the child does not lead its session: {shown:?}");
    }
}

#[tokio::test]
async fn a_line_typed_is_echoed_then_read_and_close_stdin_ends_the_input() {
    let (transport, log) = spawn(sh("read line; printf 'got %s\\n' \"$line\"; exec cat")).await;
    transport.write(b"hello\n").unwrap();
    wait_for_text(&log, "got hello\r\n").await;
    transport.write(b"tail").unwrap();
    // An unfinished line: ending the input hands it over, then end of file ends cat.
    transport.close_stdin();
    let end = guard(transport.ended()).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_eq!(text(&log), "hello\r\ngot hello\r\ntailtail");
    check_order(&log.events(), &TERMINAL).unwrap();
}

#[tokio::test]
async fn the_size_set_at_spawn_and_a_resize_are_what_the_child_sees() {
    let spec = sh("stty size; read go; stty size").pty_size(PtySize::new(33, 101));
    let (transport, log) = spawn(spec).await;
    wait_for_text(&log, "33 101\r\n").await;
    transport.resize_pty(PtySize::new(40, 120)).unwrap();
    transport.write(b"go\n").unwrap();
    let end = guard(transport.ended()).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_eq!(text(&log), "33 101\r\ngo\r\n40 120\r\n");
    // Once the terminal is gone, a resize has nobody to tell, and is not an error.
    transport.resize_pty(PtySize::new(10, 10)).unwrap();
}

#[tokio::test]
async fn lose_connection_hangs_the_child_up() {
    let (transport, log) = spawn(sh("printf 'ready\\n'; exec sleep 600")).await;
    wait_for_text(&log, "ready").await;
    transport.lose_connection();
    let end = guard(transport.ended()).await;
    assert_eq!(end, ProcessEnd::from_signal(libc_sighup()));
    check_order(&log.events(), &TERMINAL).unwrap();
}

#[tokio::test]
async fn a_child_that_exits_while_the_parent_reads_nothing_still_ends() {
    let (transport, log) = spawn(sh("read x; exit 4")).await;
    transport.close_stdout();
    transport.write(b"bye\n").unwrap();
    let end = guard(transport.ended()).await;
    assert_eq!(end, ProcessEnd::from_exit_code(4));
    check_order(&log.events(), &TERMINAL).unwrap();
}

#[tokio::test]
async fn a_pty_spec_that_maps_another_fd_or_a_size_without_a_pty_is_invalid() {
    let cases = [
        (
            SpawnSpec::new("cat")
                .use_pty(true)
                .child_fd(ChildFd(3), ChildFdMapping::ParentReads),
            "child fd 3 is mapped as ParentReads",
        ),
        (
            SpawnSpec::new("cat")
                .use_pty(true)
                .no_child_fd(ChildFd::STDERR),
            "child fd 2 is left out",
        ),
        (
            SpawnSpec::new("cat").pty_size(PtySize::new(10, 20)),
            "a terminal size (10x20) is set, but use_pty is off",
        ),
    ];
    for (spec, why) in cases {
        let (recorder, _log) = Recorder::new();
        match RealSpawner::new().spawn_process(recorder, spec).await {
            Err(SpawnError::InvalidSpec(text)) => assert!(text.contains(why), "{text}"),
            other => panic!(
                "expected InvalidSpec naming {why:?}, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

#[tokio::test]
async fn a_child_without_a_terminal_cannot_be_resized() {
    let (transport, _log) = spawn(SpawnSpec::new("true")).await;
    assert!(matches!(
        transport.resize_pty(PtySize::new(1, 1)),
        Err(TransportError::NoTerminal)
    ));
    guard(transport.ended()).await;
}

fn libc_sighup() -> i32 {
    1
}

#[tokio::test]
async fn close_stdin_at_once_ends_cat_on_a_terminal() {
    for _ in 0..20 {
        let (recorder, log) = Recorder::reacting(|event, transport| {
            if *event == Event::Connected {
                transport.close_stdin();
            }
        });
        let (_, end) = run_real(recorder, SpawnSpec::new("cat").use_pty(true)).await;
        assert_eq!(end, ProcessEnd::Done, "{:?}", log.events());
    }
}
