//! A tokio runtime shut down while a child runs: the child's pipes close, and once it exits it
//! is reaped, not left a zombie. One test in this binary: it watches a pid.

use std::time::Instant;

use process_transport_api::{ProcessSpawner, SpawnSpec};
use process_transport_real::RealSpawner;
use process_transport_tests::{Recorder, HANG_GUARD};

/// `true` while `pid` exists, zombie or not.
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_runtime_dropped_with_a_child_running_leaves_no_zombie_once_it_exits() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // `cat` runs until its stdin closes. The recorder keeps its transport, as protocols do.
    let pid = runtime.block_on(async {
        let (recorder, _log) = Recorder::new();
        let transport = RealSpawner::new()
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
