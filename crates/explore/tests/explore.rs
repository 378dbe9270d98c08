//! The explorer's promises: the same schedule gives the same run, byte for byte; the empty
//! schedule is the fakes' natural order; it explores code written with the `Command` front
//! door and replayed cassettes; a body that waits for nothing is reported, not hung.

use std::sync::{Arc, Mutex};

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessProtocol, ProcessTransport, SpawnSpec,
};
use process_transport_cassette::{RecordingSpawner, ReplaySpawner};
use process_transport_command::{Command, Stdio};
use process_transport_explore::{replay, Exploration, Explore};
use process_transport_fakes::{FakeChild, MemoryProcessReactor, Script};

struct Quiet;
impl ProcessProtocol for Quiet {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

/// Spawns on `reactor` a child that prints on both outputs and exits with 2.
fn spawn_talker(reactor: &MemoryProcessReactor) -> FakeChild {
    reactor.register(
        ["talk"],
        Script::new().stdout("one\ntwo\n").stderr("oops\n").exit(2),
    );
    reactor
        .spawn(Box::new(Quiet), SpawnSpec::new("talk"))
        .unwrap()
}

/// Runs a talking child and keeps the printed call log of the run.
async fn logged_run(exploration: Exploration, log: Arc<Mutex<Vec<String>>>) {
    let child = spawn_talker(exploration.reactor());
    child.transport().ended().await;
    log.lock()
        .unwrap()
        .push(child.transport().call_log().to_string());
}

#[test]
fn the_same_schedule_gives_the_same_run_byte_for_byte() {
    let schedule = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
    let runs = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..3 {
        let runs = runs.clone();
        replay(&schedule, move |e| logged_run(e, runs.clone()));
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);

    // And different schedules give different runs.
    let others = Arc::new(Mutex::new(Vec::new()));
    let seen = others.clone();
    Explore::new()
        .schedules(200)
        .run(move |e| logged_run(e, seen.clone()));
    let mut distinct = others.lock().unwrap().clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 20, "{} distinct runs", distinct.len());
}

#[test]
fn the_empty_schedule_is_the_order_the_fakes_play_without_an_explorer() {
    let explored = Arc::new(Mutex::new(Vec::new()));
    let into = explored.clone();
    replay(&[], move |e| logged_run(e, into.clone()));

    let child = spawn_talker(&MemoryProcessReactor::new());
    assert_eq!(
        explored.lock().unwrap()[0],
        child.transport().call_log().to_string()
    );
}

#[test]
fn code_written_with_the_command_front_door_is_explored() {
    // Reads a `key=value` reply line by line, as the code under test would.
    let explored = Explore::new().schedules(500).run(|exploration| async move {
        let reactor = exploration.reactor().clone();
        reactor.register(
            ["config", "--list"],
            Script::new()
                .stdout("user=ann\nshell=sh\n")
                .stderr("1 warning\n")
                .exit(0),
        );
        let output = Command::new("config")
            .arg("--list")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawner(Arc::new(reactor))
            .output()
            .await
            .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"user=ann\nshell=sh\n");
        assert_eq!(output.stderr, b"1 warning\n");
    });
    assert_eq!(explored.schedules, 500);
}

#[test]
fn a_replayed_cassette_is_explored_with_its_bytes_fixed() {
    // A recording made once (here over a fake, as it would be over a real process).
    let source = MemoryProcessReactor::new();
    source.register(
        ["greet"],
        Script::new().stdout("hello\nworld\n").stderr("!\n").exit(0),
    );
    let recorder = RecordingSpawner::new(Arc::new(source));
    futures_lite_block_on(async {
        let child = Command::new("greet")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawner(Arc::new(recorder.clone()))
            .output()
            .await
            .unwrap();
        assert_eq!(child.stdout, b"hello\nworld\n");
    });
    let cassette = recorder.cassette();

    let chunkings = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let seen = chunkings.clone();
    Explore::new().schedules(300).run(move |exploration| {
        let cassette = cassette.clone();
        let seen = seen.clone();
        async move {
            let replay = ReplaySpawner::new(cassette).explored_by(exploration.explorer());
            let chunks = Arc::new(Mutex::new(Vec::new()));
            let transport = process_transport_api::ProcessSpawner::spawn_process(
                &replay,
                Box::new(Chunks(chunks.clone())),
                // As `Command::output` spawned it: stdin inherited.
                SpawnSpec::new("greet").child_fd(ChildFd::STDIN, ChildFdMapping::Inherit(0)),
            )
            .await
            .unwrap();
            transport.ended().await;
            let chunks = chunks.lock().unwrap().clone();
            let stdout: Vec<u8> = chunks
                .iter()
                .filter(|(fd, _)| *fd == ChildFd::STDOUT)
                .flat_map(|(_, data)| data.clone())
                .collect();
            assert_eq!(stdout, b"hello\nworld\n", "the recorded bytes are fixed");
            seen.lock().unwrap().insert(chunks.len());
        }
    });
    assert!(
        chunkings.lock().unwrap().len() > 3,
        "the chunking varies: {:?}",
        chunkings.lock().unwrap()
    );
}

/// Every chunk delivered, with its fd.
type Delivered = Arc<Mutex<Vec<(ChildFd, Vec<u8>)>>>;

/// Keeps every chunk with its fd.
struct Chunks(Delivered);

impl ProcessProtocol for Chunks {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        self.0.lock().unwrap().push((fd, data.to_vec()));
    }
}

#[test]
fn a_body_waiting_for_something_no_child_will_do_is_reported_not_hung() {
    let failure = Explore::new()
        .schedules(10)
        .try_run(|exploration| async move {
            let reactor = exploration.reactor();
            reactor.register(["server"], Script::new().stdout("ready\n"));
            let child = reactor
                .spawn(Box::new(Quiet), SpawnSpec::new("server"))
                .unwrap();
            // The server never exits: this waits forever.
            child.transport().ended().await;
        })
        .unwrap_err();
    assert!(
        failure
            .message
            .contains("the test waits for something no child will do"),
        "{failure}"
    );
}

/// Runs a future that only fakes wake, on this thread.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

#[test]
fn a_command_with_no_script_is_not_found_naming_the_closest() {
    let failure = Explore::new()
        .schedules(5)
        .try_run(|exploration| async move {
            let reactor = exploration.reactor();
            reactor.register(["git", "status"], Script::new().exit(0));
            let spawned = reactor.spawn(Box::new(Quiet), SpawnSpec::new("git").arg("stauts"));
            if let Err(err) = spawned {
                panic!("{err}");
            }
        })
        .unwrap_err();
    assert!(failure.message.contains("git stauts"), "{failure}");
    assert!(
        failure
            .message
            .contains(r#"the closest registered command is "git status""#),
        "{failure}"
    );
}
