//! On the real transport no call fails because of a change the protocol has not been shown:
//! a child can exit at any instant, and the protocol learns it from an event.

use std::sync::{Arc, Mutex};

use process_transport_api::{ChildFd, ProcessEnd, Signal, SpawnSpec};
use process_transport_tests::{check_order, run_real, Event, Recorder};

const SPAWNS: usize = 300;

/// `true` exits at once without reading: the write in `make_connection` races its exit, and
/// must succeed every time, with the loss of stdin reported as an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_a_fast_exit_never_fails() {
    let failures = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..SPAWNS {
        let seen = failures.clone();
        let (recorder, log) = Recorder::reacting(move |event, transport| {
            if *event == Event::Connected {
                let payload = vec![b'x'; 4096];
                for result in [transport.write(&payload), transport.write(b"more")] {
                    if let Err(err) = result {
                        seen.lock().unwrap().push(err.to_string());
                    }
                }
            }
        });
        let (_, end) = run_real(recorder, SpawnSpec::new("true")).await;
        assert_eq!(end, ProcessEnd::Done);
        check_order(&log.events(), &[ChildFd(0), ChildFd(1), ChildFd(2)]).unwrap();
    }
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
}

/// A signal sent between the child's exit and the delivery of `process_exited` is accepted;
/// once `process_exited` is delivered it is `ProcessExitedAlready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_racing_the_exit_fails_only_once_the_exit_was_shown() {
    for _ in 0..SPAWNS / 3 {
        let results = Arc::new(Mutex::new(Vec::new()));
        let seen = results.clone();
        let mut shown = false;
        let (recorder, _log) = Recorder::reacting(move |event, transport| {
            shown |= matches!(event, Event::Exited(_));
            let result = transport.signal_process(Signal::Term);
            if shown || result.is_err() {
                seen.lock()
                    .unwrap()
                    .push((shown, result.map_err(|e| e.to_string())));
            }
        });
        run_real(recorder, SpawnSpec::new("true")).await;
        let results = results.lock().unwrap();
        assert!(
            results
                .iter()
                .all(|(shown, result)| *shown == result.is_err()),
            "{results:?}"
        );
    }
}
