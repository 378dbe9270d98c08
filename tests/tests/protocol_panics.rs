//! A protocol whose callback panics: the child is killed, its pipes closed, the protocol
//! dropped, and `ended()` still resolves (with the panic raised there); the fakes also raise
//! the panic on the test's own call that delivered it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal, SpawnSpec,
};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;
use process_transport_tests::{guard, panic_message};

/// Writes a line to the child and panics on the first output it gets back.
struct PanicsOnData;

impl ProcessProtocol for PanicsOnData {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        transport.write(b"hello\n").unwrap();
    }
    fn child_data_received(&mut self, _fd: ChildFd, _data: &[u8]) {
        panic!("boom");
    }
}

const KILLED: ProcessEnd = ProcessEnd::Terminated {
    exit_code: None,
    signal: Some(9),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_child_is_killed_and_ended_reports_the_panic() {
    // `cat` would run until its stdin closes; the panic is all that ends it.
    let transport = RealSpawner::new()
        .spawn_process(Box::new(PanicsOnData), SpawnSpec::new("cat"))
        .await
        .unwrap();
    let waiting = tokio::spawn(async move { transport.ended().await });
    let err = guard(waiting).await.expect_err("ended() raises the panic");
    assert!(err.is_panic());
    assert_eq!(
        panic_message(&*err.into_panic()),
        "the process's protocol failed and its child was ended (killed by signal 9): \
         child_data_received panicked: boom"
    );
}

#[test]
fn a_fake_raises_the_panic_on_the_call_that_delivered_it_and_ends_the_child() {
    let reactor = MemoryProcessReactor::new();
    let child = reactor
        .spawn(Box::new(PanicsOnData), SpawnSpec::new("cat"))
        .unwrap();
    let raised = catch_unwind(AssertUnwindSafe(|| {
        child.write(ChildFd::STDOUT, "hello\n").unwrap();
    }))
    .expect_err("the panic reaches the test's call");
    assert_eq!(panic_message(&*raised), "boom");

    let transport = child.transport();
    assert_eq!(transport.ended_now(), Some(KILLED));
    assert_eq!(transport.pid(), None);
    assert!(
        catch_unwind(AssertUnwindSafe(
            || child.with_protocol(|_: &mut PanicsOnData| ())
        ))
        .is_err(),
        "the protocol was dropped"
    );
    let ended = catch_unwind(AssertUnwindSafe(|| {
        futures_executor::block_on(transport.ended())
    }))
    .expect_err("ended() raises the panic too");
    assert_eq!(
        panic_message(&*ended),
        "the process's protocol failed and its child was ended (killed by signal 9): \
         child_data_received panicked: boom"
    );
}

#[test]
fn a_scripted_fake_stops_its_script_after_the_panic() {
    let reactor = MemoryProcessReactor::new();
    reactor.register(["cat"], Script::cat());
    // The scripted cat echoes the line written in make_connection, inside the spawn.
    let raised = catch_unwind(AssertUnwindSafe(|| {
        reactor.spawn(Box::new(PanicsOnData), SpawnSpec::new("cat"))
    }))
    .expect_err("the echo's delivery panics inside the spawn");
    assert_eq!(panic_message(&*raised), "boom");
    let transport = reactor.last_child().transport();
    assert_eq!(transport.ended_now(), Some(KILLED));
    assert_eq!(
        transport
            .signal_process(Signal::Term)
            .map_err(|e| e.to_string()),
        Err("the process has already exited; no signal was sent".to_owned())
    );
}
