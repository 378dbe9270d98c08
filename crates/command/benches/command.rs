//! The `Command` front door against `tokio::process`, measured in the same run:
//! - `output()` and `status()` of `true`: this crate on real processes against
//!   `tokio::process::Command`;
//! - 32 and 256 `cat`s at once, 1 MiB each, the same tokio-style code on both (`write_all`,
//!   `read_to_end`, `wait`);
//! - 1 GiB through `cat` with `ChildStdin` / `ChildStdout` (`write_all` and a `read` loop,
//!   64 KiB buffers) against the same code on `tokio::process`;
//! - `output()` on a `MemoryProcessReactor` with a script (no process at all);
//! - `blocking`: `output()` of `true` and 1 GiB through `cat` (a writer thread and a `Read`
//!   loop) against `std::process`, and `output()` on the fake.
//!
//! `cargo bench -p process-transport-command --bench command`; results in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use process_transport_command::{Command, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const TOTAL: usize = 1 << 30;
const BUFFER: usize = 64 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Writes 1 GiB into `stdin` and reads `stdout` to its end, concurrently; returns the count.
async fn pump(mut stdin: impl AsyncWrite + Unpin, mut stdout: impl AsyncRead + Unpin) -> usize {
    let chunk = vec![b'x'; BUFFER];
    let write = async move {
        let mut sent = 0;
        while sent < TOTAL {
            stdin.write_all(&chunk).await.expect("write");
            sent += BUFFER;
        }
        stdin.shutdown().await.expect("shutdown");
    };
    let read = async move {
        let mut buffer = vec![0u8; BUFFER];
        let mut received = 0;
        loop {
            match stdout.read(&mut buffer).await.expect("read") {
                0 => return received,
                n => received += n,
            }
        }
    };
    tokio::join!(write, read).1
}

fn output_of_true(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("output of true");
    group.bench_function("tokio::process (baseline)", |b| {
        b.iter(|| {
            rt.block_on(async { tokio::process::Command::new("true").output().await.unwrap() })
        })
    });
    group.bench_function("Command on real processes", |b| {
        b.iter(|| rt.block_on(async { Command::new("true").output().await.unwrap() }))
    });
    // The baseline once more, measured after ours: the spread between the two baseline rows
    // is the noise floor a ratio in this group can be read to.
    group.bench_function("tokio::process (baseline, again)", |b| {
        b.iter(|| {
            rt.block_on(async { tokio::process::Command::new("true").output().await.unwrap() })
        })
    });
    group.finish();
}

fn status_of_true(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("status of true");
    group.bench_function("tokio::process (baseline)", |b| {
        b.iter(|| {
            rt.block_on(async { tokio::process::Command::new("true").status().await.unwrap() })
        })
    });
    group.bench_function("Command on real processes", |b| {
        b.iter(|| rt.block_on(async { Command::new("true").status().await.unwrap() }))
    });
    group.finish();
}

const MIB: usize = 1 << 20;

/// The tokio-style code both sides run for one child: write 1 MiB, close, read it all back
/// while writing, wait.
macro_rules! one_cat {
    ($command:expr, $stdio:path) => {{
        let mut child = $command
            .stdin(<$stdio>::piped())
            .stdout(<$stdio>::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let writer = tokio::spawn(async move {
            let data = vec![b'x'; MIB];
            stdin.write_all(&data).await.unwrap();
        });
        let mut back = Vec::new();
        stdout.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert!(child.wait().await.unwrap().success());
        back.len()
    }};
}

fn many_cats(c: &mut Criterion) {
    let rt = runtime();
    for children in [32usize, 256] {
        let mut group = c.benchmark_group(format!("{children} cats at once, 1 MiB each"));
        group
            .sample_size(10)
            .throughput(Throughput::Bytes((children * MIB) as u64));
        group.bench_function("tokio::process (baseline)", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let tasks: Vec<_> = (0..children)
                        .map(|_| {
                            tokio::spawn(async {
                                one_cat!(tokio::process::Command::new("cat"), std::process::Stdio)
                            })
                        })
                        .collect();
                    for task in tasks {
                        assert_eq!(task.await.unwrap(), MIB);
                    }
                })
            })
        });
        group.bench_function("Command on real processes", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let tasks: Vec<_> = (0..children)
                        .map(|_| tokio::spawn(async { one_cat!(Command::new("cat"), Stdio) }))
                        .collect();
                    for task in tasks {
                        assert_eq!(task.await.unwrap(), MIB);
                    }
                })
            })
        });
        group.finish();
    }
}

fn a_gib_through_cat(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("1 GiB through cat");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("tokio::process (baseline)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut child = tokio::process::Command::new("cat")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
                assert_eq!(pump(stdin, stdout).await, TOTAL);
                child.wait().await.unwrap();
            })
        })
    });
    group.bench_function("Command on real processes", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut child = Command::new("cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
                assert_eq!(pump(stdin, stdout).await, TOTAL);
                child.wait().await.unwrap();
            })
        })
    });
    group.finish();
}

/// `blocking` against `std::process`, on the calling thread (no runtime of the caller's).
fn blocking_against_std(c: &mut Criterion) {
    use process_transport_command::blocking;
    use std::io::{Read, Write};

    let mut group = c.benchmark_group("blocking output of true");
    group.bench_function("std::process (baseline)", |b| {
        b.iter(|| std::process::Command::new("true").output().unwrap())
    });
    group.bench_function("blocking::Command on real processes", |b| {
        b.iter(|| blocking::Command::new("true").output().unwrap())
    });
    group.finish();

    /// 1 GiB into `stdin` from a writer thread, read back with a `Read` loop.
    fn pump(mut stdin: impl Write + Send + 'static, mut stdout: impl Read) -> usize {
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'x'; BUFFER];
            let mut sent = 0;
            while sent < TOTAL {
                stdin.write_all(&chunk).expect("write");
                sent += BUFFER;
            }
        });
        let mut buffer = vec![0u8; BUFFER];
        let mut received = 0;
        loop {
            match stdout.read(&mut buffer).expect("read") {
                0 => break,
                n => received += n,
            }
        }
        writer.join().expect("the writer");
        received
    }
    let mut group = c.benchmark_group("blocking 1 GiB through cat");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("std::process (baseline)", |b| {
        b.iter(|| {
            let mut child = std::process::Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
            assert_eq!(pump(stdin, stdout), TOTAL);
            child.wait().unwrap();
        })
    });
    group.bench_function("blocking::Command on real processes", |b| {
        b.iter(|| {
            let mut child = blocking::Command::new("cat")
                .stdin(blocking::Stdio::piped())
                .stdout(blocking::Stdio::piped())
                .spawn()
                .unwrap();
            let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
            assert_eq!(pump(stdin, stdout), TOTAL);
            child.wait().unwrap();
        })
    });
    group.finish();

    let mut group = c.benchmark_group("blocking output on the fake reactor");
    group.bench_function(
        "blocking::Command::output with a script, fresh reactor",
        |b| {
            b.iter_batched(
                || {
                    let reactor = MemoryProcessReactor::strict();
                    reactor.register(["git", "status"], Script::new().stdout("clean\n").exit(0));
                    Arc::new(reactor)
                },
                |spawner| {
                    blocking::Command::new("git")
                        .arg("status")
                        .spawner(spawner.clone())
                        .output()
                        .unwrap();
                    spawner
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

fn output_on_the_fake(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let reactor = || {
        let reactor = MemoryProcessReactor::strict();
        reactor.register(["git", "status"], Script::new().stdout("clean\n").exit(0));
        Arc::new(reactor)
    };
    let output = |spawner: &Arc<MemoryProcessReactor>| {
        rt.block_on(async {
            Command::new("git")
                .arg("status")
                .spawner(spawner.clone())
                .output()
                .await
                .unwrap()
        })
    };
    let mut group = c.benchmark_group("output on the fake reactor");
    // The reactor records every child it plays: one reactor per call, made and dropped
    // outside the timing, measures the call itself.
    group.bench_function("Command::output with a script, fresh reactor", |b| {
        b.iter_batched(
            reactor,
            |spawner| {
                output(&spawner);
                spawner
            },
            BatchSize::SmallInput,
        )
    });
    // One reactor for every call: its record grows, as in a long test.
    let shared = reactor();
    group.bench_function("Command::output with a script, one reactor", |b| {
        b.iter(|| output(&shared))
    });
    group.finish();
}

criterion_group!(
    benches,
    output_of_true,
    status_of_true,
    many_cats,
    a_gib_through_cat,
    blocking_against_std,
    output_on_the_fake
);
criterion_main!(benches);
