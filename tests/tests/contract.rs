//! The contract suite, run against the real transport and against the fakes' scripted twins:
//! both must pass every scenario.

use process_transport_contract::{run_contract, scenario_names, ShellCatalog};
use process_transport_real::RealSpawner;
use process_transport_tests::twins::twin_reactor;

#[test]
fn the_suite_has_at_least_seventy_named_scenarios() {
    let names = scenario_names();
    assert!(names.len() >= 70, "{} scenarios", names.len());
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "scenario names repeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_transport_keeps_the_contract() {
    let report = run_contract(&RealSpawner::new(), &ShellCatalog).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.names(), scenario_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_keep_the_contract() {
    let report = run_contract(&twin_reactor(), &ShellCatalog).await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_keep_the_contract_with_output_in_small_chunks() {
    let reactor = twin_reactor();
    // Odd-sized chunks shake out framing; one-byte chunks are tested on smaller payloads.
    reactor.set_chunk_size(Some(7));
    let report = run_contract(&reactor, &ShellCatalog).await;
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_catches_a_twin_that_lies() {
    let reactor = twin_reactor();
    // A twin that exits with the wrong code, and one that forgets its stderr.
    reactor.register(
        ["sh", "-c", "exit 3"],
        process_transport_fakes::Script::new().exit(4),
    );
    reactor.register(
        ["sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2"],
        process_transport_fakes::Script::new()
            .stdout("out\n")
            .exit(0),
    );
    let report = run_contract(&reactor, &ShellCatalog).await;
    let failed: Vec<&str> = report.failures().iter().map(|o| o.name).collect();
    assert!(
        failed.contains(&"a_non_zero_exit_code_is_terminated_with_it"),
        "{report}"
    );
    assert!(failed.contains(&"stderr_is_delivered_exactly"), "{report}");
    assert!(!failed.contains(&"stdout_is_delivered_exactly"), "{report}");
    assert!(
        report
            .to_string()
            .contains("FAILED  stderr_is_delivered_exactly: stderr: \"\""),
        "{report}"
    );
}
