//! The contract every process transport must keep, as a reusable suite.
//!
//! [`run_contract`] starts children through any [`ProcessSpawner`] and checks, scenario by
//! scenario, the order of events and the shared behaviour of the api crate: event order, exit
//! reasons, write and close errors, signals, pids, producers, pause and resume. The workspace
//! runs it against the real transport (with [`ShellCatalog`]: `sh`, `cat`, `sleep`) and against
//! `MemoryProcessReactor` with scripted twins of the same commands, and both must pass every
//! scenario: that is what makes a test on the fake mean something on a real process.
//!
//! ```
//! use process_transport_contract::{Catalog, Child, ShellCatalog};
//!
//! // A catalog says how the spawner under test starts each child the suite needs.
//! let spec = ShellCatalog.spec(Child::Talk);
//! assert_eq!(spec.get_executable(), "sh");
//! assert!(process_transport_contract::scenario_names().len() >= 70);
//! ```
//!
//! Running it (inside a tokio runtime with time enabled):
//!
//! ```no_run
//! # #[allow(dead_code)]
//! # async fn run(spawner: &dyn process_transport_api::ProcessSpawner) {
//! use process_transport_contract::{run_contract, ShellCatalog};
//!
//! let report = run_contract(spawner, &ShellCatalog).await;
//! println!("{report}");
//! report.assert_passed();
//! # }
//! ```
//!
//! The [`Recorder`] protocol, the [`RecordingProducer`] and [`check_order`] the suite uses are
//! public, for suites of one's own.

#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod catalog;
mod recorder;
mod report;
mod scenarios;

use std::time::Duration;

use process_transport_api::ProcessSpawner;

pub use catalog::{
    Catalog, Child, HelperCatalog, ShellCatalog, ENV_NAME, EXTRA_FD_TEXT, READY, TALK_STDERR,
    TALK_STDOUT, TERMINAL_SIZE,
};
pub use recorder::{check_order, Event, Log, Reaction, Recorder, RecordingProducer};
pub use report::{Outcome, Report};

/// How long the suite waits for one event before calling the scenario hung. A guard against
/// hangs only: the suite waits on events, never on time.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The names of every scenario, in the order [`run_contract`] runs them.
pub fn scenario_names() -> Vec<&'static str> {
    scenarios::all().map(|(name, _)| *name).collect()
}

/// Runs every scenario against `spawner`, starting children as `catalog` says, one after the
/// other; returns the outcome of each. Needs a tokio runtime with time enabled.
pub async fn run_contract(spawner: &dyn ProcessSpawner, catalog: &dyn Catalog) -> Report {
    run_contract_without(spawner, catalog, &[]).await
}

/// As [`run_contract`], leaving out the scenarios named in `left_out` (a double documented
/// not to keep them, whose run of them would only wait out [`HANG_GUARD`]); the report has
/// no outcome for them.
///
/// # Panics
/// When `left_out` names no scenario of the suite (a misspelt name would leave nothing out).
pub async fn run_contract_without(
    spawner: &dyn ProcessSpawner,
    catalog: &dyn Catalog,
    left_out: &[&str],
) -> Report {
    let names = scenario_names();
    for name in left_out {
        assert!(
            names.contains(name),
            "run_contract_without: `{name}` is not a scenario of the contract"
        );
    }
    let ctx = scenarios::Ctx { spawner, catalog };
    let mut report = Report::default();
    for (name, scenario) in scenarios::all() {
        if left_out.contains(name) {
            continue;
        }
        let result = scenario(&ctx).await;
        report.outcomes.push(Outcome { name, result });
    }
    report
}
