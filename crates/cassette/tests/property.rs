//! Random sessions with `cat` and `sh`, recorded on real processes and replayed: the protocol
//! sees the same trace, event for event, and each call returns the same.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnSpec,
};
use process_transport_cassette::{RecordingSpawner, ReplaySpawner};
use process_transport_real::RealSpawner;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// What the protocol does, in order.
#[derive(Clone, Debug)]
enum Op {
    Write(Vec<u8>),
    CloseStdin,
    Signal(Signal),
}

/// The programs a session runs.
const PROGRAMS: &[&[&str]] = &[
    &["cat"],
    &[
        "sh",
        "-c",
        "while read line; do echo \"got $line\"; done; echo bye >&2",
    ],
    &["sh", "-c", "read first; echo \"$first\" >&2; exec cat"],
    &[
        "sh",
        "-c",
        "trap 'echo term; exit 7' TERM; echo ready; while read l; do :; done",
    ],
];

/// Records every event the protocol gets, as a line.
struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    fn push(&self, line: String) {
        self.0.lock().expect("trace").push(line);
    }
}

impl ProcessProtocol for Trace {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {
        self.push("connected".into());
    }
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        self.push(format!("fd {}: {:?}", fd.0, String::from_utf8_lossy(data)));
    }
    fn child_connection_lost(&mut self, fd: ChildFd) {
        self.push(format!("lost {}", fd.0));
    }
    fn process_exited(&mut self, end: ProcessEnd) {
        self.push(format!("exited {end:?}"));
    }
    fn process_ended(&mut self, end: ProcessEnd) {
        self.push(format!("ended {end:?}"));
    }
}

/// Runs `ops` on `program` through `spawner`; the trace has the events the protocol got
/// (in order) and, apart, what each call returned.
async fn session(
    spawner: Arc<dyn ProcessSpawner>,
    program: &[&str],
    ops: &[Op],
) -> (Vec<String>, Vec<String>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let spec = SpawnSpec::new(program[0]).args(&program[1..]);
    let transport = spawner
        .spawn_process(Box::new(Trace(events.clone())), spec)
        .await
        .expect("the spawn starts");
    let mut results = Vec::new();
    for op in ops {
        let result = match op {
            Op::Write(data) => format!("{:?}", transport.write(data)),
            Op::CloseStdin => {
                transport.close_stdin();
                "closed".into()
            }
            Op::Signal(signal) => format!("{:?}", transport.signal_process(*signal)),
        };
        results.push(result);
    }
    // Every session ends: stdin is closed, then the child is killed if it still runs.
    transport.close_stdin();
    let ended = tokio::time::timeout(Duration::from_secs(5), transport.ended()).await;
    if ended.is_err() {
        let _ = transport.signal_process(Signal::Kill);
        tokio::time::timeout(Duration::from_secs(20), transport.ended())
            .await
            .expect("the session ends");
    }
    let events = events.lock().expect("trace").clone();
    (events, results)
}

fn op() -> impl Strategy<Value = Op> {
    let line = proptest::collection::vec(
        prop_oneof![Just(b'a'), Just(b'z'), Just(b' '), Just(b'\n')],
        1..12,
    );
    prop_oneof![
        6 => line.prop_map(Op::Write),
        1 => Just(Op::CloseStdin),
        1 => Just(Op::Signal(Signal::Term)),
    ]
}

#[test]
fn random_sessions_recorded_and_replayed_give_equal_traces() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mut runner = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..PROGRAMS.len(), proptest::collection::vec(op(), 0..8));
    runner
        .run(&strategy, |(program, ops)| {
            let program = PROGRAMS[program];
            let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
            let real = runtime.block_on(session(Arc::new(recorder.clone()), program, &ops));
            let replay = ReplaySpawner::new(recorder.cassette());
            let replayed = runtime.block_on(session(Arc::new(replay.clone()), program, &ops));
            prop_assert_eq!(&replayed, &real, "{}", recorder.cassette().transcript());
            prop_assert!(replay.unused().is_empty());
            Ok(())
        })
        .expect("every replay gives the recorded trace");
}
