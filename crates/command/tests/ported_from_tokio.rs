//! tokio's own process tests (`tokio/tests/process_*.rs` and `tests-integration`'s
//! `process_stdio.rs`), ported by changing the imports, run on real processes and, where a
//! scripted twin of the program means something, on the fakes. They behave the same on both.
//! Where a port differs from the original beyond its imports, a comment says why (a sleep that
//! stood for an event, a panic tokio gives where this crate returns an error).
//! `process_raw_handle.rs` is Windows only and not ported: see docs/tokio-parity.md.

#![cfg(unix)]

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use process_transport_command::{with_default, Child, Command, ExitStatus, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Scripted twins of the programs the snippets run.
fn twins() -> MemoryProcessReactor {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["sh", "-c", "exit 2"], Script::new().exit(2));
    reactor.register(["cat"], Script::cat());
    reactor.register(
        ["sh", "-c", "echo $0"],
        Script::new().stdout("test_string\n").exit(0),
    );
    // `sleep` reads nothing: what is written stays in the pipe until the kill.
    reactor.register(["sleep", "2"], Script::new().holds_stdin());
    for i in 0..10 {
        let line = format!("I am spawned process #{i}");
        reactor.register(
            ["echo", line.as_str()],
            Script::new().stdout(format!("{line}\n")).exit(0),
        );
    }
    reactor
}

/// Runs `test` with real processes as the default spawner, then with the twins.
async fn on_real_and_fake<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let guard = std::time::Duration::from_secs(60);
    for (name, spawner) in [
        ("real", Arc::new(RealSpawner::new()) as Arc<_>),
        ("fake", Arc::new(twins()) as Arc<_>),
    ] {
        tokio::time::timeout(guard, with_default(spawner, test()))
            .await
            .unwrap_or_else(|_| panic!("the {name} run did not finish within {guard:?}"));
    }
}

fn cat() -> Command {
    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd
}

#[tokio::test]
async fn simple() {
    on_real_and_fake(|| async {
        let mut cmd = Command::new("sh");
        cmd.arg("-c");
        let mut child = cmd.arg("exit 2").spawn().unwrap();

        let id = child.id().expect("missing id");
        assert!(id > 0);

        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(2));

        // test that the `.wait()` method is fused just like the stdlib
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(2));

        // Can't get id after process has exited
        assert_eq!(child.id(), None);
        drop(child.kill());
    })
    .await;
}

async fn feed_cat(mut cat: Child, n: usize) -> io::Result<ExitStatus> {
    let mut stdin = cat.stdin.take().unwrap();
    let stdout = cat.stdout.take().unwrap();

    // Produce n lines on the child's stdout.
    let write = async {
        for i in 0..n {
            let bytes = format!("line {i}\n").into_bytes();
            stdin.write_all(&bytes).await.unwrap();
        }
        drop(stdin);
    };

    let read = async {
        let mut reader = BufReader::new(stdout).lines();
        let mut num_lines = 0;
        loop {
            let data = reader
                .next_line()
                .await
                .unwrap_or_else(|_| Some(String::new()))
                .expect("failed to read line");
            let num_read = data.len();
            let done = num_lines >= n;
            match (done, num_read) {
                (false, 0) => panic!("broken pipe"),
                (true, n) if n != 0 => panic!("extraneous data"),
                _ => assert_eq!(format!("line {num_lines}"), data),
            };
            num_lines += 1;
            if num_lines >= n {
                break;
            }
        }
    };

    let ((), (), status) = tokio::join!(write, read, cat.wait());
    status
}

#[tokio::test]
async fn feed_a_lot() {
    on_real_and_fake(|| async {
        let child = cat().spawn().unwrap();
        let status = feed_cat(child, 10000).await.unwrap();
        assert_eq!(status.code(), Some(0));
    })
    .await;
}

#[tokio::test]
async fn wait_with_output_captures() {
    on_real_and_fake(|| async {
        let mut child = cat().spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let write_bytes = b"1234";
        let future = async {
            stdin.write_all(write_bytes).await?;
            drop(stdin);
            child.wait_with_output().await
        };
        let output = future.await.unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, write_bytes);
        assert_eq!(output.stderr.len(), 0);
    })
    .await;
}

#[tokio::test]
async fn status_closes_any_pipes() {
    on_real_and_fake(|| async {
        // If `status` did not close the pipes, cat would wait for stdin forever.
        cat().status().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn try_wait() {
    on_real_and_fake(|| async {
        let mut child = cat().spawn().unwrap();
        let id = child.id().expect("missing id");
        assert!(id > 0);
        assert_eq!(None, child.try_wait().unwrap());

        // Drop the child's stdio handles so it can terminate
        drop(child.stdin.take());
        drop(child.stderr.take());
        drop(child.stdout.take());

        child.wait().await.unwrap();

        // test that the `.try_wait()` method is fused just like the stdlib
        assert!(child.try_wait().unwrap().unwrap().success());

        // Can't get id after process has exited
        assert_eq!(child.id(), None);
    })
    .await;
}

#[tokio::test]
async fn kill_after_wait() {
    on_real_and_fake(|| async {
        let mut cmd = Command::new("sh");
        cmd.arg("-c");
        let mut child = cmd.arg("exit 2").spawn().unwrap();
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        // Once the wait returned, killing is fine and does nothing.
        child.start_kill().unwrap();
        child.kill().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn vectored_writes() {
    on_real_and_fake(|| async {
        let mut cat = cat().spawn().unwrap();
        let mut stdin = cat.stdin.take().unwrap();
        let are_writes_vectored = stdin.is_write_vectored();
        let mut stdout = cat.stdout.take().unwrap();

        let write = async {
            let parts: [&[u8]; 2] = [b"hello\n", b"world!\n"];
            let mut written = 0;
            let mut writes_completed = 0;
            std::future::poll_fn(|cx| loop {
                let total: usize = parts.iter().map(|p| p.len()).sum();
                if written == total {
                    return Poll::Ready(io::Result::Ok(()));
                }
                let first = written.min(parts[0].len());
                let slices = [
                    IoSlice::new(&parts[0][first..]),
                    IoSlice::new(&parts[1][written - first..]),
                ];
                let n = std::task::ready!(Pin::new(&mut stdin).poll_write_vectored(cx, &slices))?;
                writes_completed += 1;
                written += n;
            })
            .await?;
            drop(stdin);
            io::Result::Ok(writes_completed)
        };

        let read = async {
            let mut buffer = Vec::with_capacity(6 + 7);
            stdout.read_to_end(&mut buffer).await?;
            io::Result::Ok(buffer)
        };

        let (write, read, status) = tokio::join!(write, read, cat.wait());
        assert!(status.unwrap().success());
        let writes_completed = write.unwrap();
        assert_eq!(writes_completed == 1, are_writes_vectored);
        assert_eq!(&read.unwrap(), b"hello\nworld!\n");
    })
    .await;
}

/// tokio's `kill_on_drop`: a grandchild outlives the killed child and still writes into the
/// inherited stdout. Real processes only: a fake has no grandchildren. The original sleeps
/// two seconds before dropping; this port waits for the child's "ready" line instead, and
/// `exec`s its long sleep so that the killed process is the last holder of the pipe but the
/// grandchild.
#[tokio::test]
async fn kill_on_drop() {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "
       # Fork another child that won't get killed
       sh -c 'sleep 1; echo child ran' &
       echo ready

       # Await our death (exec: the killed process is the one holding the pipe)
       exec sleep 600
    ",
    ]);
    let mut child = cmd
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).await.unwrap();
    assert_eq!(&ready, b"ready\n");
    drop(child);

    let mut msg = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        out.read_to_string(&mut msg),
    )
    .await
    .expect("the grandchild closes stdout")
    .unwrap();
    assert_eq!("child ran\n", msg);
}

// process_arg0.rs
#[tokio::test]
async fn arg0() {
    on_real_and_fake(|| async {
        let mut cmd = Command::new("sh");
        cmd.arg0("test_string").arg("-c").arg("echo $0");

        let output = cmd.output().await.unwrap();
        assert_eq!(output.stdout, b"test_string\n");
    })
    .await;
}

// process_issue_2174.rs. The original sleeps a second "so that the child process's stdin's
// buffer fills"; here the kill comes once the writer has written, full pipe or not, and the
// writer must still end with an error rather than hang.
#[tokio::test]
async fn issue_2174() {
    on_real_and_fake(|| async {
        let mut child = Command::new("sleep")
            .arg("2")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let (wrote, written) = tokio::sync::oneshot::channel();

        let handle = tokio::spawn(async move {
            let data = [0u8; 8192];
            input.write_all(&data).await.unwrap();
            let _ = wrote.send(());
            loop {
                input.write_all(&data).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        });

        written.await.unwrap();
        // Kill the child process.
        child.kill().await.unwrap();

        assert!(handle.await.unwrap().is_err());
    })
    .await;
}

// process_issue_42.rs
#[tokio::test]
async fn issue_42() {
    on_real_and_fake(|| async {
        let join_handles = (0..10usize).map(|_| {
            tokio::task::spawn(async {
                let processes = (0..10usize).map(|i| {
                    let mut child = Command::new("echo")
                        .arg(format!("I am spawned process #{i}"))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .kill_on_drop(true)
                        .spawn()
                        .unwrap();

                    async move { child.wait().await }
                });

                for status in futures_join_all(processes).await {
                    assert!(status.unwrap().success());
                }
            })
        });

        for handle in futures_join_all(join_handles).await {
            handle.unwrap();
        }
    })
    .await;
}

/// `futures::future::join_all`, which the original uses: every future, polled together.
async fn futures_join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every future ended"))
        .collect()
}

// process_change_of_runtime.rs, on real processes and on a fake.
#[test]
fn process_spawned_and_wait_in_different_runtime() {
    for spawner in [
        Arc::new(RealSpawner::new()) as Arc<dyn process_transport_api::ProcessSpawner>,
        Arc::new(twins()) as Arc<_>,
    ] {
        let mut child = tokio::runtime::Runtime::new().unwrap().block_on(async {
            Command::new("sh")
                .args(["-c", "exit 2"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawner(spawner)
                .spawn()
                .unwrap()
        });
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            assert_eq!(child.wait().await.unwrap().code(), Some(2));
        });
    }
}

// process_change_of_runtime.rs: tokio panics ("there is no reactor running"); the real
// spawner returns an error that says what is missing.
#[test]
fn process_spawned_outside_runtime() {
    let err = Command::new("true")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawner(Arc::new(RealSpawner::new()))
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("runtime"), "{err}");
}

// process_issue_7144.rs (Linux; it returns early where `strace` is missing, as the original
// does). The original waits 100 ms before the SIGINT for strace to settle; the wait must end
// whenever the signal comes.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn issue_7144() {
    async fn has_strace() -> bool {
        Command::new("strace")
            .arg("-V")
            .spawner(Arc::new(RealSpawner::new()))
            .output()
            .await
            .is_ok()
    }

    async fn test_one() {
        if !has_strace().await {
            return;
        }

        // Quiet, unlike the original: a tracer left behind must not hold the harness's pipes.
        let mut t = Command::new("strace")
            .args("-o /dev/null -D sleep 5".split(' '))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawner(Arc::new(RealSpawner::new()))
            .spawn()
            .unwrap();
        traced_sleep(t.id().unwrap()).await;
        t.signal(process_transport_api::Signal::Int).unwrap();
        t.wait().await.unwrap();
    }

    /// Waits until the child is `sleep`, traced: what the original's 100 ms stood for. A
    /// tracer that cannot trace here (ptrace refused) leaves `sleep` untraced, which does too.
    async fn traced_sleep(pid: u32) {
        let guard = std::time::Instant::now();
        loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let traced = status
                .lines()
                .any(|line| line.starts_with("TracerPid:") && line.trim_end() != "TracerPid:\t0");
            if comm.trim_end() == "sleep" && traced || comm.is_empty() {
                return;
            }
            if comm.trim_end() == "sleep" && guard.elapsed() > std::time::Duration::from_secs(10) {
                return;
            }
            assert!(
                guard.elapsed() < std::time::Duration::from_secs(60),
                "strace did not start"
            );
            tokio::task::yield_now().await;
        }
    }

    let mut threads = vec![];
    for _ in 0..20 {
        threads.push(tokio::spawn(test_one()));
    }
    for thread in threads {
        thread.await.unwrap();
    }
}
