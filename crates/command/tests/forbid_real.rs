//! With real processes forbidden, a command that finds no spawner fails naming itself, and
//! one that finds a spawner runs on it. In a binary of its own: the switch is process-wide.

use std::io;
use std::sync::Arc;

use process_transport_command::{
    blocking, forbid_real_processes, real_processes_forbidden, with_default, Command,
};
use process_transport_fakes::{MemoryProcessReactor, Script};

fn forbidden(err: &io::Error, command_line: &str) {
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot spawn `{command_line}`: real processes are forbidden"
        )) && text.contains("set_default, with_default or set_global_default"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_real_processes_forbidden_nothing_real_runs_and_fakes_still_do() {
    forbid_real_processes();
    assert!(real_processes_forbidden());

    let err = Command::new("sh")
        .args(["-c", "echo I am real"])
        .output()
        .await
        .expect_err("no spawner in scope");
    forbidden(&err, "sh -c 'echo I am real'");
    let err = blocking::Command::new("true")
        .status()
        .expect_err("no spawner in scope");
    forbidden(&err, "true");

    let reactor = MemoryProcessReactor::strict();
    reactor.register(["echo", "x"], Script::new().stdout("x\n").exit(0));
    let spawned_inside = with_default(Arc::new(reactor.clone()), async {
        // Taken where it was written: the spawner in scope at the call.
        let captured = tokio::spawn(Command::new("echo").arg("x").output());
        // Written inside a task: the task is outside the scope, and nothing real runs.
        let inside_a_task = tokio::spawn(async {
            Command::new("sh")
                .args(["-c", "echo I am real"])
                .output()
                .await
        });
        (captured.await, inside_a_task.await)
    })
    .await;
    let (captured, inside_a_task) = spawned_inside;
    assert_eq!(
        captured.expect("joined").expect("the fake ran").stdout,
        b"x\n"
    );
    forbidden(
        &inside_a_task
            .expect("joined")
            .expect_err("outside the scope"),
        "sh -c 'echo I am real'",
    );
    assert_eq!(reactor.spawns().len(), 1);
}

#[test]
fn a_runtime_default_reaches_tasks_and_blocking_threads_that_build_their_own_commands() {
    forbid_real_processes();
    let reactor = MemoryProcessReactor::strict();
    reactor.register_program("sh", Script::new().stdout("faked\n").exit(0));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime =
        process_transport_command::default_on_runtime(&mut builder, Arc::new(reactor.clone()))
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
    let outputs = runtime.block_on(async {
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..4 {
            jobs.spawn(async {
                Command::new("sh")
                    .args(["-c", "echo I am real"])
                    .output()
                    .await
            });
        }
        jobs.spawn_blocking(|| blocking::Command::new("sh").arg("-c").arg("true").output());
        let mut outputs = Vec::new();
        while let Some(joined) = jobs.join_next().await {
            outputs.push(joined.expect("joined").expect("runs on the fake").stdout);
        }
        outputs
    });
    assert_eq!(outputs, vec![b"faked\n".to_vec(); 5]);
    assert_eq!(reactor.spawns().len(), 5);
}
