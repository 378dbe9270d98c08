//! The real transport against plain baselines, measured in the same run:
//! - 1 GiB through `cat`: this transport (a pull producer writing 1 MiB chunks, a protocol
//!   counting stdout) against a plain `tokio::process` pump (`write_all` on stdin, a read
//!   loop on stdout);
//! - spawn to `process_ended` of `true` against `std::process::Command::status()`, with the
//!   default three pipes and with stdio inherited as `status()` does, on a 2-worker runtime
//!   and on a current-thread one (what `#[tokio::test]` runs), with tokio's own
//!   `Command::status` on the 2-worker runtime and `Command::output` with three pipes (the
//!   piped rows' own child), from the standard library and from tokio, for comparison;
//! - 32 and 256 `cat`s at once, 1 MiB through each, against the same plain pump per child; the
//!   chunk handed to the transport (`write_owned`), and lent (`write`, which copies what the
//!   pipe does not take at once) for comparison.
//!
//! `cargo bench -p process-transport-real --bench real`; results in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport,
    PushProducer, SpawnSpec,
};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 1 << 30;
const CHUNK: usize = 1 << 20;

/// Writes the next chunk each time the transport's buffer drains; closes stdin at the end and
/// frees its chunk then, as the baseline's writer task does when it finishes. With `owned`,
/// the last chunk is handed over (`write_owned`) rather than lent.
struct Feeder {
    transport: Mutex<Option<Arc<dyn ProcessTransport>>>,
    chunk: Mutex<Vec<u8>>,
    sent: AtomicUsize,
    total: usize,
    owned: bool,
}

impl PushProducer for Feeder {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {
        let guard = self.transport.lock().unwrap();
        let Some(transport) = guard.as_ref() else {
            return;
        };
        let mut chunk = self.chunk.lock().unwrap();
        let size = CHUNK.min(self.total);
        let sent = self.sent.fetch_add(size, Ordering::SeqCst);
        if self.owned && sent + size == self.total {
            transport.write_owned(std::mem::take(&mut *chunk)).unwrap();
        } else if sent < self.total {
            transport.write(&chunk).unwrap();
        } else {
            transport.close_stdin();
            *chunk = Vec::new();
        }
    }
    fn stop_producing(&self) {
        self.transport.lock().unwrap().take();
    }
}

struct Pump {
    received: Arc<AtomicUsize>,
    total: usize,
    owned: bool,
}

impl ProcessProtocol for Pump {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        let feeder = Arc::new(Feeder {
            transport: Mutex::new(Some(transport.clone())),
            chunk: Mutex::new(vec![b'x'; CHUNK.min(self.total)]),
            sent: AtomicUsize::new(0),
            total: self.total,
            owned: self.owned,
        });
        transport.register_producer(feeder, false).unwrap();
    }
    fn child_data_received(&mut self, _fd: ChildFd, data: &[u8]) {
        self.received.fetch_add(data.len(), Ordering::Relaxed);
    }
}

async fn through_transport(total: usize) {
    feed_cat(total, true).await
}

async fn through_transport_lent(total: usize) {
    feed_cat(total, false).await
}

async fn feed_cat(total: usize, owned: bool) {
    let received = Arc::new(AtomicUsize::new(0));
    let transport = RealSpawner::new()
        .spawn_process(
            Box::new(Pump {
                received: received.clone(),
                total,
                owned,
            }),
            SpawnSpec::new("cat"),
        )
        .await
        .unwrap();
    assert_eq!(transport.ended().await, ProcessEnd::Done);
    assert_eq!(received.load(Ordering::SeqCst), total);
}

/// `children` of `pump(total)` at once, each a task of its own.
async fn at_once<F>(children: usize, total: usize, pump: fn(usize) -> F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = (0..children).map(|_| tokio::spawn(pump(total))).collect();
    for task in tasks {
        task.await.unwrap();
    }
}

async fn through_tokio_process(total: usize) {
    let mut child = tokio::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; CHUNK.min(total)];
        for _ in 0..total / chunk.len() {
            stdin.write_all(&chunk).await.unwrap();
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0;
    loop {
        let n = stdout.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received += n;
    }
    writer.await.unwrap();
    assert!(child.wait().await.unwrap().success());
    assert_eq!(received, total);
}

struct Quiet;
impl ProcessProtocol for Quiet {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("1 GiB through cat");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("tokio::process pump (baseline)", |b| {
        b.iter(|| runtime.block_on(through_tokio_process(TOTAL)))
    });
    group.bench_function("RealProcessTransport", |b| {
        b.iter(|| runtime.block_on(through_transport(TOTAL)))
    });
    group.finish();

    for children in [32, 256] {
        let mut group = c.benchmark_group(format!("{children} cats at once, 1 MiB each"));
        group
            .sample_size(10)
            .throughput(Throughput::Bytes((children * CHUNK) as u64));
        group.bench_function("tokio::process pump (baseline)", |b| {
            b.iter(|| runtime.block_on(at_once(children, CHUNK, through_tokio_process)))
        });
        group.bench_function("RealProcessTransport", |b| {
            b.iter(|| runtime.block_on(at_once(children, CHUNK, through_transport)))
        });
        // The chunk lent (`write`): what the pipe does not take at once is copied.
        group.bench_function("RealProcessTransport, the chunk lent", |b| {
            b.iter(|| runtime.block_on(at_once(children, CHUNK, through_transport_lent)))
        });
        group.finish();
    }

    let mut group = c.benchmark_group("spawn true to its end");
    group.bench_function("Command::status (baseline)", |b| {
        b.iter(|| {
            assert!(std::process::Command::new("true")
                .status()
                .unwrap()
                .success())
        })
    });
    // The same child as the piped rows': three pipes, read to their end, the exit reaped.
    group.bench_function("Command::output, three pipes", |b| {
        b.iter(|| {
            let output = std::process::Command::new("true")
                .stdin(std::process::Stdio::piped())
                .output()
                .unwrap();
            assert!(output.status.success() && output.stdout.is_empty());
        })
    });
    // What an async caller of the standard library gets: the same child through tokio's own
    // process driver, on the same runtime as ours.
    group.bench_function("tokio::process::Command::status, 2 workers", |b| {
        b.iter(|| {
            runtime.block_on(async {
                assert!(tokio::process::Command::new("true")
                    .status()
                    .await
                    .unwrap()
                    .success())
            })
        })
    });
    // The piped rows' own child through tokio's process driver: three pipes, read to their
    // end, the exit reaped.
    group.bench_function(
        "tokio::process::Command::output, three pipes, 2 workers",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let output = tokio::process::Command::new("true")
                        .stdin(std::process::Stdio::piped())
                        .output()
                        .await
                        .unwrap();
                    assert!(output.status.success() && output.stdout.is_empty());
                })
            })
        },
    );
    // `#[tokio::test]`'s runtime: one thread that polls the tasks and the reactor itself.
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inherited = || {
        [0, 1, 2]
            .into_iter()
            .fold(SpawnSpec::new("true"), |spec, fd| {
                spec.child_fd(ChildFd(fd), ChildFdMapping::Inherit(fd as i32))
            })
    };
    for (runtime, on) in [(&runtime, "2 workers"), (&current_thread, "current thread")] {
        let spawn_to_end = |spec: SpawnSpec| {
            runtime.block_on(async {
                let transport = RealSpawner::new()
                    .spawn_process(Box::new(Quiet), spec)
                    .await
                    .unwrap();
                assert_eq!(transport.ended().await, ProcessEnd::Done);
            })
        };
        group.bench_function(format!("RealSpawner to process_ended, {on}"), |b| {
            b.iter(|| spawn_to_end(SpawnSpec::new("true")))
        });
        // The same child as the baseline's: fds 0, 1 and 2 inherited, no pipes.
        group.bench_function(
            format!("RealSpawner to process_ended, stdio inherited, {on}"),
            |b| b.iter(|| spawn_to_end(inherited())),
        );
    }
    group.finish();
}

criterion_group!(real, benches);
criterion_main!(real);
