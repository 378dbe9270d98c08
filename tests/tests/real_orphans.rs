//! A tokio runtime shut down while a child runs: the child's pipes close, and once it exits it
//! is reaped, not left a zombie. Each test watches the pid of its own child.

use std::time::Instant;

use process_transport_api::{ProcessSpawner, SpawnSpec};
use process_transport_real::RealSpawner;
use process_transport_tests::{Event, Recorder, HANG_GUARD};

/// `true` while `pid` exists, zombie or not.
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_runtime_dropped_with_a_child_running_leaves_no_zombie_once_it_exits() {
    runtime_dropped_with_a_running_child(RealSpawner::new(), false);
}

#[test]
fn the_portable_path_leaves_no_zombie_when_its_runtime_is_dropped() {
    runtime_dropped_with_a_running_child(RealSpawner::new().portable(true), false);
}

#[test]
fn a_child_whose_output_is_paused_from_the_start_leaves_no_zombie_either() {
    runtime_dropped_with_a_running_child(RealSpawner::new(), true);
}

/// Spawns `cat` on a runtime of its own, drops the runtime while `cat` runs (its output
/// paused from `make_connection` on, if asked), and waits until the pid is gone: the pipes
/// closed with the runtime, so `cat` ends, and it was reaped.
fn runtime_dropped_with_a_running_child(spawner: RealSpawner, paused: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // `cat` runs until its stdin closes. The recorder keeps its transport, as protocols do.
    let pid = runtime.block_on(async {
        let (recorder, _log) = Recorder::reacting(move |event, transport| {
            if paused && *event == Event::Connected {
                transport.pause_producing();
            }
        });
        let transport = spawner
            .spawn_process(recorder, SpawnSpec::new("cat"))
            .await
            .unwrap();
        transport.pid().unwrap()
    });
    assert!(exists(pid));
    drop(runtime);
    // Nothing signals a reap to another thread; look until the pid is gone.
    let start = Instant::now();
    while exists(pid) {
        assert!(
            start.elapsed() < HANG_GUARD,
            "child {pid} is still there: {}",
            std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
        );
        std::thread::yield_now();
    }
}
