//! The runtime the explorer runs a body on: a panic in a spawned task fails the run, timers
//! fire in virtual time (a timeout, a retry with back-off), a `JoinSet`'s tasks finish in the
//! orders the children's events allow, and a `select!` without `biased;` is named as what
//! made one schedule give different runs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_transport_command::{Command, Stdio};
use process_transport_explore::{Exploration, Explore};
use process_transport_fakes::{FakeChild, Script};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[test]
fn a_panic_in_a_spawned_task_fails_the_run_though_nothing_joins_it() {
    let failure = Explore::new()
        .schedules(100)
        .try_run(|exploration: Exploration| async move {
            let reactor = exploration.reactor().clone();
            reactor.register(["status"], Script::new().stdout("degraded\n").exit(0));
            let mut child = Command::new("status")
                .stdout(Stdio::piped())
                .spawner(Arc::new(reactor))
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            // The watcher's handle is dropped: tokio alone would swallow its panic.
            drop(tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Some(line) = lines.next_line().await.unwrap() {
                    assert_eq!(line, "healthy", "the watcher saw a bad status");
                }
            }));
            child.wait().await.unwrap();
        })
        .expect_err("the task's panic fails the run");
    assert_eq!(failure.schedules_before, 0, "{failure}");
    assert!(
        failure.message.contains("the watcher saw a bad status"),
        "{failure}"
    );
    assert!(
        !failure.message.contains("not the same run"),
        "the failure repeats: {failure}"
    );
}

#[test]
fn a_timeout_fires_in_virtual_time_when_the_child_never_answers() {
    let explored = Explore::new()
        .schedules(300)
        .run(|exploration: Exploration| async move {
            let reactor = exploration.reactor().clone();
            // Reads its requests and never answers.
            reactor.register(
                ["stuck"],
                Script::new().on_stdin(|_: &FakeChild, _: &[u8]| {}),
            );
            let mut child = Command::new("stuck")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawner(Arc::new(reactor))
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            stdin.write_all(b"ping\n").await.unwrap();
            let started = Instant::now();
            let answer = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
            assert!(answer.is_err(), "no answer: {answer:?}");
            assert_eq!(started.elapsed(), Duration::from_secs(30));
            child.kill().await.unwrap();
        });
    assert_eq!(explored.schedules, 300);
}

#[test]
fn a_retry_with_back_off_sleeps_exactly_its_delays_in_every_schedule() {
    let explored = Explore::new()
        .schedules(300)
        .run(|exploration: Exploration| async move {
            let reactor = exploration.reactor().clone();
            // Fails twice, then succeeds.
            let attempts = Arc::new(AtomicUsize::new(0));
            let counted = attempts.clone();
            reactor.register(
                ["fetch"],
                Script::new().start_with(move |child: &FakeChild| {
                    if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                        child
                            .write(process_transport_api::ChildFd::STDERR, "busy\n")
                            .unwrap();
                        child.exit(75);
                    } else {
                        child
                            .write(process_transport_api::ChildFd::STDOUT, "data\n")
                            .unwrap();
                        child.exit(0);
                    }
                }),
            );
            let spawner = Arc::new(reactor);
            let started = Instant::now();
            let mut delay = Duration::from_secs(1);
            let output = loop {
                let output = Command::new("fetch")
                    .spawner(spawner.clone())
                    .output()
                    .await
                    .unwrap();
                if output.status.success() {
                    break output;
                }
                assert_eq!(output.stderr, b"busy\n");
                tokio::time::sleep(delay).await;
                delay *= 2;
            };
            assert_eq!(output.stdout, b"data\n");
            assert_eq!(attempts.load(Ordering::SeqCst), 3);
            assert_eq!(started.elapsed(), Duration::from_secs(1 + 2));
        });
    assert_eq!(explored.schedules, 300);
}

#[test]
fn a_join_sets_tasks_finish_in_every_order_the_children_allow() {
    let orders = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = orders.clone();
    Explore::new()
        .schedules(300)
        .run(move |exploration: Exploration| {
            let seen = seen.clone();
            async move {
                let reactor = exploration.reactor().clone();
                for name in ["a", "b", "c"] {
                    reactor.register([name], Script::new().stdout(name).exit(0));
                }
                let spawner = Arc::new(reactor);
                let mut tasks = JoinSet::new();
                for name in ["a", "b", "c"] {
                    let output = Command::new(name).spawner(spawner.clone()).output();
                    tasks.spawn(output);
                }
                let mut order = String::new();
                while let Some(done) = tasks.join_next().await {
                    let output = done.unwrap().unwrap();
                    order.push_str(std::str::from_utf8(&output.stdout).unwrap());
                }
                let mut sorted: Vec<char> = order.chars().collect();
                sorted.sort_unstable();
                assert_eq!(sorted, ['a', 'b', 'c']);
                seen.lock().unwrap().insert(order);
            }
        });
    let orders: Vec<String> = orders.lock().unwrap().iter().cloned().collect();
    assert_eq!(orders, ["abc", "acb", "bac", "bca", "cab", "cba"]);
}

/// Writes 64 letters to a child, each picked by a `select!` of two ready branches, then
/// fails: without `biased;`, tokio picks the branch at random.
async fn letters_by_select(exploration: Exploration) {
    let reactor = exploration.reactor().clone();
    reactor.register(["cat"], Script::cat());
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .spawner(Arc::new(reactor))
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..64 {
        let letter = tokio::select! {
            letter = std::future::ready(b'a') => letter,
            letter = std::future::ready(b'b') => letter,
        };
        stdin.write_all(&[letter]).await.unwrap();
    }
    panic!("the letters were written");
}

#[cfg(not(tokio_unstable))]
#[test]
fn a_select_without_biased_is_named_when_one_schedule_gives_different_runs() {
    let failure = Explore::new()
        .schedules(10)
        .try_run(letters_by_select)
        .expect_err("the body fails");
    assert!(
        failure.message.starts_with("the letters were written"),
        "{failure}"
    );
    assert!(
        failure
            .message
            .contains("(but its three replays were not the same run: the test has a source of order the explorer does not control: a `select!` without `biased;`"),
        "{failure}"
    );
}

/// Built with `--cfg tokio_unstable`, the explorer seeds tokio's rng: the same schedule gives
/// the same run even through a `select!` without `biased;`.
#[cfg(tokio_unstable)]
#[test]
fn a_select_without_biased_repeats_when_tokios_rng_is_seeded() {
    let failure = Explore::new()
        .schedules(10)
        .try_run(letters_by_select)
        .expect_err("the body fails");
    assert_eq!(failure.message, "the letters were written", "{failure}");
}
