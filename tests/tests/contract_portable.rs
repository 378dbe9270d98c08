//! The contract suite on the real transport's portable path (fork and exec, the child awaited
//! by pid), which every unix takes and Linux takes when asked.
//!
//! In a binary of its own: between its fork and its exec, a child of the fork path holds a
//! copy of every fd of the process for longer than a `posix_spawn` child does, and the
//! scenarios that expect a child's death by `SIGPIPE` must not share the process with another
//! suite spawning at the same time (see docs/fidelity.md, "Fds shared with a concurrent
//! spawn").

use process_transport_contract::{run_contract, scenario_names, ShellCatalog};
use process_transport_real::RealSpawner;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_transport_keeps_the_contract_on_the_portable_path() {
    let spawner = RealSpawner::new().portable(true);
    assert!(spawner.is_portable());
    let report = run_contract(&spawner, &ShellCatalog).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.names(), scenario_names());
}
