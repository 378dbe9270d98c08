//! Explores a protocol that reads a child's output only until `process_exited`: the
//! explorer finds the order that loses the last output, prints the schedule and replays it,
//! then explores the fixed protocol through 10,000 orders.
//!
//! `cargo run -p process-transport-explore --example explore`

use std::sync::{Arc, Mutex};

use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport, SpawnSpec};
use process_transport_explore::{replay, Exploration, Explore};
use process_transport_fakes::Script;

/// Keeps stdout; `until_exit` stops at `process_exited` (the bug), else at `process_ended`.
struct Report {
    stdout: Arc<Mutex<Vec<u8>>>,
    until_exit: bool,
    exited: bool,
}

impl ProcessProtocol for Report {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        if !(self.until_exit && self.exited) {
            self.stdout.lock().expect("stdout").extend_from_slice(data);
        }
    }
    fn process_exited(&mut self, _: ProcessEnd) {
        self.exited = true;
    }
}

async fn body(exploration: Exploration, until_exit: bool) {
    let reactor = exploration.reactor();
    reactor.register(["report"], Script::new().stdout("3 files\n").exit(0));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let protocol = Report {
        stdout: stdout.clone(),
        until_exit,
        exited: false,
    };
    let child = reactor
        .spawn(Box::new(protocol), SpawnSpec::new("report"))
        .expect("report starts");
    child.transport().ended().await;
    let stdout = String::from_utf8_lossy(&stdout.lock().expect("stdout")).into_owned();
    assert_eq!(stdout, "3 files\n", "the report lost output");
}

fn main() {
    println!("exploring a protocol that reads stdout only until process_exited:");
    let failure = Explore::new()
        .schedules(1_000)
        .try_run(|e| body(e, true))
        .expect_err("the explorer finds the lost output");
    println!("{failure}\n");
    // The replay's panic is the expected outcome here: not printed.
    std::panic::set_hook(Box::new(|_| {}));
    let replayed = std::panic::catch_unwind(|| replay(&failure.schedule.0, |e| body(e, true)));
    drop(std::panic::take_hook());
    println!(
        "replaying schedule {}: {}\n",
        failure.schedule,
        if replayed.is_err() {
            "fails again"
        } else {
            "passes (unexpected)"
        }
    );
    println!("exploring the fixed protocol (reads until process_ended):");
    let explored = Explore::new().schedules(10_000).run(|e| body(e, false));
    println!(
        "{} schedules passed in {:.0?} ({:.0} schedules a second)",
        explored.schedules,
        explored.elapsed,
        f64::from(explored.schedules) / explored.elapsed.as_secs_f64()
    );
}
