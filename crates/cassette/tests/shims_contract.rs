//! Fidelity of shims: the contract's scenarios recorded through the real transport, then
//! replayed through shims (the protocol drives a real process that is a shim), keep their
//! verdicts but those listed in docs/fidelity.md.

use std::ffi::OsString;
use std::sync::Arc;

use async_trait::async_trait;
use process_transport_api::{
    ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};
use process_transport_cassette::{RecordingSpawner, Shims};
use process_transport_contract::{run_contract_without, ShellCatalog};
use process_transport_real::RealSpawner;

const BIN: &str = env!("CARGO_BIN_EXE_process-cassette");

/// Real processes, started with the shims' variables: every program of the catalog a shim.
struct ViaShims {
    real: RealSpawner,
    vars: Vec<(OsString, OsString)>,
}

#[async_trait]
impl ProcessSpawner for ViaShims {
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        let spec = self
            .vars
            .iter()
            .fold(spec, |spec, (name, value)| spec.env(name, value));
        self.real.spawn_process(protocol, spec).await
    }
}

/// The scenarios a replay through shims does not keep; docs/fidelity.md says why. Each waits
/// out the suite's hang guard through shims, so the run leaves them out.
const NOT_THROUGH_SHIMS: [&str; 6] = [
    // fds above 2: a shim has only its standard fds.
    "an_extra_fd_is_delivered_exactly",
    "extra_fds_both_ways_with_staged_closes_carry_their_bytes",
    "an_inherited_fd_gets_no_loss_and_is_not_writable",
    "a_terminal_child_refuses_writes_to_fd_2_and_fd_3",
    // argv[0] apart from the program: the shim knows itself only by argv[0].
    "the_spec_process_group_and_arg0_reach_the_child",
    // The terminal's line discipline, in raw mode in a shim.
    "a_terminal_echoes_typed_lines_and_close_stdin_ends_the_input_after_an_unfinished_line",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_recorded_on_real_processes_replays_through_shims_with_the_same_verdicts() {
    let dir = std::env::temp_dir().join(format!("pt-shims-contract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.json");
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
    // Recorded without them too: a replay serves repeated commands in order, so a recording
    // left unserved would be taken by the next spawn of its command.
    run_contract_without(&recorder, &ShellCatalog, &NOT_THROUGH_SHIMS)
        .await
        .assert_passed();
    recorder.save(&path).unwrap();

    let shims = Shims::builder(&path)
        .binary(BIN)
        .mode("replay")
        .open()
        .unwrap();
    let spawner = ViaShims {
        real: RealSpawner::new(),
        vars: shims.vars(),
    };
    let replayed = run_contract_without(&spawner, &ShellCatalog, &NOT_THROUGH_SHIMS).await;
    assert_eq!(
        replayed.outcomes.len(),
        process_transport_contract::scenario_names().len() - NOT_THROUGH_SHIMS.len()
    );
    replayed.assert_passed();
    // No input differed and every spawn found a recording. Left unserved: the refusals the
    // spawner makes before any program runs (the missing program, which is not shimmed; a
    // terminal with fd 3), and the children of the two scenarios that signal at once, whose
    // shim the signal may end before it claimed anything (both scenarios accept that end).
    match shims.finish() {
        Ok(()) => {}
        Err(process_transport_cassette::CassetteError::Unused { commands, .. }) => {
            assert!(commands.len() <= 4, "{commands:?}");
            for command in &commands {
                assert!(
                    ["no-such-program-for-the-contract", "cat", "sh -c exit 0"]
                        .contains(&command.as_str()),
                    "{commands:?}"
                );
            }
        }
        Err(other) => panic!("{other}"),
    }
}
