//! The real transport's own tests that mean the same on every platform, with the workspace's
//! helper program (`pt-helper`) as the child: what the contract does not check (many bytes
//! both ways at once, writes racing a fast exit, who may drop the transport, the spawn's
//! errors). They run under Wine in CI; the unix ones (`tests/tests/real_*.rs`) start `sh`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};
use process_transport_contract::{check_order, Event, Recorder};
use process_transport_real::RealSpawner;

const HELPER: &str = env!("CARGO_BIN_EXE_pt-helper");

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

/// Guards against a hang only; the tests wait on events.
async fn guard<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .expect("the test hung: no event within the guard timeout")
}

fn helper(args: &[&str]) -> SpawnSpec {
    SpawnSpec::new(HELPER).args(args)
}

/// Spawns `spec` with `protocol` on the real transport and waits for `process_ended`.
async fn run(protocol: Box<dyn ProcessProtocol>, spec: SpawnSpec) -> ProcessEnd {
    let transport = RealSpawner::new()
        .spawn_process(protocol, spec)
        .await
        .expect("the spawn succeeds");
    guard(transport.ended()).await
}

const MIB: usize = 1 << 20;

/// Writes `input` bytes at connection, then closes stdin; counts what comes back on stdout.
struct Count {
    stdout: Arc<AtomicUsize>,
    input: usize,
}

impl ProcessProtocol for Count {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        let chunk = vec![b'x'; MIB];
        for _ in 0..self.input / MIB {
            transport.write(&chunk).expect("buffered");
        }
        transport.close_stdin();
    }

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        assert_eq!(fd, ChildFd::STDOUT);
        self.stdout.fetch_add(data.len(), Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mib_through_cat_never_deadlocks() {
    let stdout = Arc::new(AtomicUsize::new(0));
    let protocol = Count {
        stdout: stdout.clone(),
        input: 50 * MIB,
    };
    assert_eq!(
        run(Box::new(protocol), helper(&["cat"])).await,
        ProcessEnd::Done
    );
    assert_eq!(stdout.load(Ordering::SeqCst), 50 * MIB);
}

/// `exit 0` ends at once without reading: the writes in `make_connection` race its exit and
/// must succeed every time, with the loss of stdin reported as an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_a_fast_exit_never_fails() {
    let failures = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..50 {
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
        assert_eq!(
            run(recorder, helper(&["exit", "0"])).await,
            ProcessEnd::Done
        );
        check_order(&log.events(), &STD_PIPES).unwrap();
    }
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn the_transport_can_be_dropped_by_everyone_while_the_child_runs() {
    let (recorder, log) = Recorder::new();
    let transport = RealSpawner::new()
        .spawn_process(recorder, helper(&["talk"]))
        .await
        .unwrap();
    drop(transport);
    guard(log.wait_until("process_ended", |events| {
        matches!(events.last(), Some(Event::Ended(_)))
    }))
    .await
    .unwrap();
    check_order(&log.events(), &STD_PIPES).unwrap();
    assert_eq!(
        (log.bytes(ChildFd::STDOUT), log.bytes(ChildFd::STDERR)),
        (b"out\n".to_vec(), b"err\n".to_vec())
    );
}

/// Keeps the transport it is given, as protocols do, and nothing else.
struct Keeper(Option<Arc<dyn ProcessTransport>>);

impl ProcessProtocol for Keeper {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        transport.close_stdin();
        self.0 = Some(transport);
    }
}

#[tokio::test]
async fn a_protocol_that_keeps_its_transport_is_freed_when_the_process_ends() {
    let transport = RealSpawner::new()
        .spawn_process(Box::new(Keeper(None)), helper(&["cat"]))
        .await
        .unwrap();
    let weak = Arc::downgrade(&transport);
    assert_eq!(guard(transport.ended()).await, ProcessEnd::Done);
    drop(transport);
    assert!(
        weak.upgrade().is_none(),
        "the protocol still holds the transport after process_ended"
    );
}

async fn spawn_error(spec: SpawnSpec) -> SpawnError {
    let (recorder, log) = Recorder::new();
    let err = match RealSpawner::new().spawn_process(recorder, spec).await {
        Err(err) => err,
        Ok(_) => panic!("the spawn succeeded"),
    };
    assert_eq!(log.events(), [], "a failed spawn delivers no event");
    err
}

#[tokio::test]
async fn a_missing_executable_is_not_found_and_named() {
    let err = spawn_error(SpawnSpec::new("no-such-program-3f9a")).await;
    assert!(
        matches!(err, SpawnError::NotFound(ref exe) if exe == "no-such-program-3f9a"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_working_directory_is_named_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let err = spawn_error(helper(&["exit", "0"]).cwd(&missing)).await;
    match err {
        SpawnError::Io(ref io) => assert_eq!(io.kind(), std::io::ErrorKind::NotFound),
        ref other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

/// tokio itself panics here (at the first registration); the real transport says why instead.
/// A runtime with I/O on the same thread first does not change the answer.
#[test]
fn in_a_runtime_without_io_nothing_starts_and_the_error_says_why() {
    let spawner = RealSpawner::new();
    let with_io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime with I/O");
    let (recorder, _) = Recorder::new();
    let transport = with_io
        .block_on(spawner.spawn_process(recorder, helper(&["exit", "0"])))
        .expect("spawned with I/O");
    assert_eq!(with_io.block_on(guard(transport.ended())), ProcessEnd::Done);
    let (recorder, log) = Recorder::new();
    let spawn = spawner.spawn_process(recorder, helper(&["exit", "0"]));
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime without I/O")
        .block_on(spawn);
    match result {
        Err(SpawnError::Io(err)) => assert!(
            err.to_string().ends_with(
                "RealSpawner::spawn_process must run inside a tokio runtime with I/O enabled \
                 (this one was built without it: call enable_io or enable_all on its builder)"
            ),
            "{err}"
        ),
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("the spawn succeeded outside a runtime"),
    }
    assert_eq!(log.events(), []);
}
