//! A soak run, on demand: 10,000 spawns of mixed children on the real transport, with the
//! process's open fds, zombie children and resident memory measured before and after.
//!
//! `cargo test --release -p process-transport-tests --test soak -- --ignored --nocapture`
//! (`SOAK_SPAWNS=N` for another count). Ignored by default: it takes tens of seconds.

use std::sync::Arc;
use std::time::Instant;

use process_transport_api::{ProcessEnd, ProcessSpawner, Signal, SpawnSpec};
use process_transport_real::RealSpawner;
use process_transport_tests::{guard, Event, Recorder};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Children of this process that are zombies.
fn zombies() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .count()
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// One spawn of the `i`-th kind: echo, exit codes, output on both pipes, a signal.
async fn one(spawner: &RealSpawner, i: usize) {
    let (spec, expected) = match i % 5 {
        0 => (SpawnSpec::new("cat"), ProcessEnd::Done),
        1 => (SpawnSpec::new("true"), ProcessEnd::Done),
        2 => (SpawnSpec::new("false"), ProcessEnd::from_exit_code(1)),
        3 => (
            SpawnSpec::new("sh").args(["-c", "echo out; echo err >&2"]),
            ProcessEnd::Done,
        ),
        _ => (
            SpawnSpec::new("sleep").arg("600"),
            ProcessEnd::from_signal(9),
        ),
    };
    let kind = i % 5;
    let (recorder, _log) = Recorder::reacting(move |event, transport| {
        if *event == Event::Connected {
            match kind {
                0 => {
                    transport.write(b"soak\n").unwrap();
                    transport.close_stdin();
                }
                4 => transport.signal_process(Signal::Kill).unwrap(),
                _ => {}
            }
        }
    });
    let transport = spawner.spawn_process(recorder, spec).await.unwrap();
    assert_eq!(guard(transport.ended()).await, expected, "spawn {i}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak run, on demand"]
async fn ten_thousand_mixed_spawns_leave_no_fd_zombie_or_growing_memory() {
    let spawns: usize = std::env::var("SOAK_SPAWNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let spawner = Arc::new(RealSpawner::new());
    // Warm up, so that the runtime's and the allocator's own growth is not counted.
    for i in 0..200 {
        one(&spawner, i).await;
    }
    let (fds, zombies_before, rss) = (open_fds(), zombies(), rss_kib());
    let start = Instant::now();
    let mut batch = Vec::new();
    for i in 0..spawns {
        let spawner = spawner.clone();
        batch.push(tokio::spawn(async move { one(&spawner, i).await }));
        if batch.len() == 16 {
            for task in batch.drain(..) {
                task.await.unwrap();
            }
        }
    }
    for task in batch {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();
    let (fds_after, zombies_after, rss_after) = (open_fds(), zombies(), rss_kib());
    println!(
        "soak: {spawns} spawns in {:.1} s ({:.0} per second); open fds {fds} -> {fds_after}; \
         zombies {zombies_before} -> {zombies_after}; RSS {rss} KiB -> {rss_after} KiB",
        elapsed.as_secs_f64(),
        spawns as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(fds_after, fds, "open fds");
    assert_eq!(zombies_after, 0, "zombies");
    // Flat memory: a leak of even 1 KiB per spawn would show as 10 MiB.
    assert!(
        rss_after < rss + 4096,
        "RSS grew from {rss} KiB to {rss_after} KiB"
    );
}
