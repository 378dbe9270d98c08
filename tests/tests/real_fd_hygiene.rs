//! Many spawns leave the parent's fd count unchanged and no zombie behind.
//!
//! One test in its own binary, so that no other test opens fds while it counts.

use std::sync::{Arc, Mutex};

use process_transport_api::{ChildFd, ProcessEnd, ProcessSpawner, ProcessTransport, SpawnSpec};
use process_transport_real::RealSpawner;
use process_transport_tests::{guard, Event, Recorder};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// `true` when `pid` is a zombie child of this process.
fn is_our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next().unwrap();
    let ppid: u32 = fields.next().unwrap().parse().unwrap();
    state == "Z" && ppid == std::process::id()
}

async fn spawn_one(spawner: &RealSpawner, spec: SpawnSpec) -> (u32, ProcessEnd) {
    spawn_closing(spawner, spec, &[ChildFd::STDIN]).await
}

/// Spawns `spec` and closes `fds` in `make_connection`, in order; returns the pid and the end.
/// A terminal child whose output, then input, the parent closes is hung up.
async fn spawn_closing(
    spawner: &RealSpawner,
    spec: SpawnSpec,
    fds: &'static [ChildFd],
) -> (u32, ProcessEnd) {
    // The pid is read inside `make_connection`, where it is always known: by the time the
    // spawn returns, a short-lived child may already have been reaped.
    let pid = Arc::new(Mutex::new(None));
    let seen = pid.clone();
    let (recorder, _log) = Recorder::reacting(move |event, transport| {
        if *event == Event::Connected {
            *seen.lock().unwrap() = transport.pid();
            for &fd in fds {
                transport.close_child_fd(fd);
            }
        }
    });
    let transport: Arc<dyn ProcessTransport> = spawner.spawn_process(recorder, spec).await.unwrap();
    let end = guard(transport.ended()).await;
    let pid = pid
        .lock()
        .unwrap()
        .expect("the pid is known in make_connection");
    (pid, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_leave_no_fd_and_no_zombie() {
    // Linux's paths, then the portable path, one after the other: the count is exact only
    // while nothing else spawns.
    spawns_leave_no_fd_and_no_zombie_on(RealSpawner::new()).await;
    spawns_leave_no_fd_and_no_zombie_on(RealSpawner::new().portable(true)).await;
}

async fn spawns_leave_no_fd_and_no_zombie_on(spawner: RealSpawner) {
    // Warm up tokio's own fds (the I/O driver, the pidfd reaper) before counting.
    spawn_one(&spawner, SpawnSpec::new("true")).await;
    let before = open_fds();

    let mut pids = Vec::new();
    for i in 0..200 {
        let spec = if i % 2 == 0 {
            SpawnSpec::new("true")
        } else {
            SpawnSpec::new("sh").args(["-c", "echo x; exit 1"])
        };
        let (pid, end) = spawn_one(&spawner, spec).await;
        assert_eq!(end.exit_code(), Some(if i % 2 == 0 { 0 } else { 1 }));
        pids.push(pid);
    }
    let concurrent: Vec<_> = (0..100)
        .map(|_| {
            let spawner = spawner.clone();
            tokio::spawn(async move { spawn_one(&spawner, SpawnSpec::new("cat")).await })
        })
        .collect();
    for task in concurrent {
        let (pid, end) = task.await.unwrap();
        assert_eq!(end, ProcessEnd::Done);
        pids.push(pid);
    }
    // Terminals: the master side closes with the child, after input ended, after a hang-up,
    // and after output was closed first.
    for i in 0..60 {
        let spec = match i % 3 {
            0 => SpawnSpec::new("cat").use_pty(true),
            1 => SpawnSpec::new("sh")
                .args(["-c", "echo x; exit 1"])
                .use_pty(true),
            _ => SpawnSpec::new("sleep").arg("600").use_pty(true),
        };
        let (pid, end) = if i % 3 == 2 {
            spawn_closing(&spawner, spec, &[ChildFd::STDOUT, ChildFd::STDIN]).await
        } else {
            spawn_one(&spawner, spec).await
        };
        let expected = [
            ProcessEnd::Done,
            ProcessEnd::from_exit_code(1),
            ProcessEnd::from_signal(1),
        ];
        assert_eq!(end, expected[i % 3]);
        pids.push(pid);
    }
    // Failed spawns leave nothing open either.
    for _ in 0..20 {
        let (recorder, _) = Recorder::new();
        assert!(spawner
            .spawn_process(recorder, SpawnSpec::new("no-such-program-3f9a"))
            .await
            .is_err());
    }

    assert_eq!(
        open_fds(),
        before,
        "the parent's open fd count changed ({spawner:?})"
    );
    let zombies: Vec<u32> = pids.into_iter().filter(|&pid| is_our_zombie(pid)).collect();
    assert_eq!(zombies, [], "children left unreaped ({spawner:?})");
}
