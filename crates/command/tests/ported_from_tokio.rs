//! Snippets of tokio's own process tests (`process_smoke.rs`, `process_stdio.rs`,
//! `process_kill_on_drop.rs`, `process_kill_after_wait.rs`), ported by changing the import, run on real processes and on
//! the fakes' scripted twins of the same programs. They behave the same on both.

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

        // The fake's child has exited by the time spawn returns; a real one may have too.
        if let Some(id) = child.id() {
            assert!(id > 0);
        }

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
