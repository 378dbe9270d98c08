//! Section 5 on real processes: events in order, ProcessEnd from the wait status, signals.

use std::sync::{Arc, Mutex};

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessSpawner, Signal, SpawnSpec, TransportError,
};
use process_transport_real::RealSpawner;
use process_transport_tests::{assert_bytes_eq, check_order, guard, run_real, Event, Recorder};

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_exit_code_and_order() {
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]);
    let (transport, end) = run_real(recorder, spec).await;
    assert_eq!(
        end,
        ProcessEnd::Terminated {
            exit_code: Some(3),
            signal: None
        }
    );
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"out\n");
    assert_bytes_eq!(log.bytes(ChildFd::STDERR), b"err\n");
    check_order(&log.events(), &STD_PIPES).unwrap();
    assert_eq!(log.reentered(), 0);
    assert_eq!(transport.pid(), None);
    assert_eq!(
        guard(transport.ended()).await,
        end,
        "ended() keeps its value"
    );
}

#[tokio::test]
async fn make_connection_is_delivered_during_the_spawn() {
    let (recorder, log) = Recorder::new();
    let transport = RealSpawner::new()
        .spawn_process(recorder, SpawnSpec::new("true"))
        .await
        .unwrap();
    assert_eq!(log.events()[0], Event::Connected);
    guard(transport.ended()).await;
}

#[tokio::test]
async fn false_exits_with_code_1() {
    let (recorder, log) = Recorder::new();
    let (_, end) = run_real(recorder, SpawnSpec::new("false")).await;
    assert_eq!(end.exit_code(), Some(1));
    assert!(!end.success());
    check_order(&log.events(), &STD_PIPES).unwrap();
}

#[tokio::test]
async fn a_signal_by_name_terminates_and_is_reported() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.signal_process(Signal::Term).unwrap();
        }
    });
    let (transport, end) = run_real(recorder, SpawnSpec::new("sleep").arg("600")).await;
    assert_eq!(end, ProcessEnd::from_signal(15));
    assert_eq!(end.signal(), Some(15));
    check_order(&log.events(), &STD_PIPES).unwrap();
    let err = transport.signal_process(Signal::Kill).unwrap_err();
    assert!(
        matches!(err, TransportError::ProcessExitedAlready),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_signal_by_number_is_delivered() {
    let (recorder, _log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.signal_process(Signal::Number(9)).unwrap();
        }
    });
    let (_, end) = run_real(recorder, SpawnSpec::new("sleep").arg("600")).await;
    assert_eq!(end, ProcessEnd::from_signal(9));
}

#[tokio::test]
async fn pid_is_set_until_the_exit_and_none_inside_process_exited() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let inside = seen.clone();
    let (recorder, _log) = Recorder::reacting(move |event, transport| match event {
        Event::Connected => inside
            .lock()
            .unwrap()
            .push(("connected", transport.pid().is_some())),
        Event::Exited(_) => {
            inside
                .lock()
                .unwrap()
                .push(("exited", transport.pid().is_some()));
            let refused = matches!(
                transport.signal_process(Signal::Term),
                Err(TransportError::ProcessExitedAlready)
            );
            inside.lock().unwrap().push(("signal refused", refused));
        }
        _ => {}
    });
    run_real(recorder, SpawnSpec::new("true")).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("connected", true),
            ("exited", false),
            ("signal refused", true)
        ]
    );
}

#[tokio::test]
async fn the_pid_is_the_childs() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            let pid = transport.pid().unwrap();
            transport.write(format!("{pid}\n").as_bytes()).unwrap();
            transport.close_stdin();
        }
    });
    run_real(
        recorder,
        SpawnSpec::new("sh").args([
            "-c",
            "read expected; [ \"$expected\" = \"$$\" ] && echo same",
        ]),
    )
    .await;
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"same\n");
}

#[tokio::test]
async fn process_ended_waits_for_a_grandchild_holding_a_pipe() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if let Event::Exited(_) = event {
            // The shell is gone, its background child still holds stdout: release it.
            transport.write(b"go\n").unwrap();
            transport.close_stdin();
        }
    });
    // A background job gets /dev/null as stdin; keep the real one on fd 3 for it.
    let spec = SpawnSpec::new("sh").args(["-c", "exec 3<&0; (read x <&3; echo late) & exit 0"]);
    let (_, end) = run_real(recorder, spec).await;
    assert_eq!(end, ProcessEnd::Done);
    let events = log.events();
    check_order(&events, &STD_PIPES).unwrap();
    let exited = events
        .iter()
        .position(|e| *e == Event::Exited(ProcessEnd::Done))
        .unwrap();
    let late = events
        .iter()
        .position(|e| *e == Event::Data(ChildFd::STDOUT, b"late\n".to_vec()))
        .unwrap();
    assert!(exited < late, "{events:?}");
}
