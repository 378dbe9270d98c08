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
use process_transport_contract::{run_contract, ShellCatalog};
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

/// The scenarios a replay through shims cannot keep; docs/fidelity.md says why.
const NOT_THROUGH_SHIMS: [&str; 0] = [];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_recorded_on_real_processes_replays_through_shims_with_the_same_verdicts() {
    let dir = std::env::temp_dir().join(format!("pt-shims-contract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.json");
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
    run_contract(&recorder, &ShellCatalog).await.assert_passed();
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
    let replayed = run_contract(&spawner, &ShellCatalog).await;
    let failed: Vec<&str> = replayed
        .failures()
        .iter()
        .map(|outcome| outcome.name)
        .collect();
    assert_eq!(
        failed, NOT_THROUGH_SHIMS,
        "verdicts through shims:\n{replayed}"
    );
}
