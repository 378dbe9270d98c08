//! A strict mock's unmet expectation fails the test even when the mock's last handle drops
//! inside a task the runtime cancels at its shutdown, where the panic would only be printed.

use std::sync::Arc;

use process_transport_api::{ProcessTransport, Signal};
use process_transport_command::{Command, Stdio};
use process_transport_mocks::{MockProcessSpawner, MockProcessTransport};

#[test]
fn an_unmet_expectation_dropped_in_a_cancelled_task_fails_at_the_tests_handle() {
    let mut transport = MockProcessTransport::new();
    transport.expect_pid().return_const(Some(4242));
    transport.expect_write_to_child().returning(|_, _| Ok(()));
    transport.expect_close_child_fd().return_const(());
    transport.expect_close_stdin().return_const(());
    transport.expect_close_stdout().return_const(());
    transport.expect_close_stderr().return_const(());
    transport.expect_pause_producing().return_const(());
    transport.expect_resume_producing().return_const(());
    // The code under test never sends it: the test must fail.
    transport
        .expect_signal_process()
        .withf(|signal| *signal == Signal::Term)
        .times(1)
        .returning(|_| Ok(()));
    let transport: Arc<dyn ProcessTransport> = Arc::new(transport);
    let (responder, connected) = process_transport_mocks::connect_with(transport);
    let mut spawner = MockProcessSpawner::new();
    spawner.expect_spawn_process().times(1).returning(responder);
    let spawner = Arc::new(spawner);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (started, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut child = Command::new("server")
                .stdin(Stdio::piped())
                .spawner(spawner)
                .spawn()
                .expect("the mock spawns");
            let _ = started.send(());
            // Holds the child until the runtime shuts down and cancels the task.
            std::future::pending::<()>().await;
            drop(child.stdin.take());
        });
        ready.await.expect("the task started");
    });
    drop(runtime);

    let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(connected)))
        .expect_err("the unmet expectation reaches the test's thread");
    let text = raised.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("MockProcessTransport::signal_process") && text.contains("Expectation"),
        "{text}"
    );
}
