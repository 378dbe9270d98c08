//! A fake's misuse made on a task whose panic nobody sees still fails the test: the reactor
//! raises it when it drops on the test's thread.

use std::sync::Arc;

use process_transport_api::{ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec};
use process_transport_fakes::{MemoryProcessReactor, Script};

struct Quiet;
impl ProcessProtocol for Quiet {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

/// A reactor whose `twice` exits two times: the second exit is a misuse.
fn reactor_with_a_misuse() -> MemoryProcessReactor {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["twice"],
        Script::new().start_with(|child| {
            child.exit(0);
            child.exit(0);
        }),
    );
    reactor
}

/// Spawns `twice` on a task and ignores how the task ended, as code under test may.
async fn spawn_and_ignore(reactor: &MemoryProcessReactor) {
    let spawner = reactor.clone();
    let _ = tokio::spawn(async move {
        let _ = spawner
            .spawn_process(Box::new(Quiet), SpawnSpec::new("twice"))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misuse_on_a_task_nobody_joined_is_raised_when_the_reactor_drops() {
    let reactor = reactor_with_a_misuse();
    spawn_and_ignore(&reactor).await;
    let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(reactor)))
        .expect_err("the misuse reaches the test's thread");
    let text = raised.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(
        text,
        "MemoryProcessReactor: a fake child failed where the test did not see it: \
         FakeChild::end misuse: the child already exited (exited with code 0)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misuse_the_test_takes_is_not_raised_again() {
    let reactor = reactor_with_a_misuse();
    spawn_and_ignore(&reactor).await;
    assert_eq!(
        reactor.take_failures(),
        ["FakeChild::end misuse: the child already exited (exited with code 0)"]
    );
    drop(reactor);
}
