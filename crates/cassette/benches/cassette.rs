//! Cassettes, measured against a baseline in the same run:
//! - recording overhead: 64 MiB through `cat` via a `RecordingSpawner`, with the cassette
//!   saved to disk, against the bare `RealSpawner`;
//! - the file size per recorded byte, for text and for binary data (printed once);
//! - replaying a 1,000-spawn cassette, against the same 1,000 spawns scripted by hand on a
//!   `MemoryProcessReactor`.
//!
//! `cargo bench -p process-transport-cassette --bench cassette`; results in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use process_transport_api::{ChildFd, ChildFdMapping, ProcessSpawner, SpawnSpec};
use process_transport_cassette::{Cassette, Event, Recording, RecordingSpawner, ReplaySpawner};
use process_transport_command::{Command, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 64 << 20;
const BUFFER: usize = 64 * 1024;
const SPAWNS: usize = 1000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cassette-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// 64 KiB of text (printable ASCII lines) or of binary data (every byte value, so never
/// UTF-8).
fn chunk(text: bool) -> Vec<u8> {
    (0..BUFFER)
        .map(|i| match (text, i % 64) {
            (true, 63) => b'\n',
            (true, n) => b'a' + (n % 26) as u8,
            (false, _) => (i.wrapping_mul(151) % 256) as u8,
        })
        .collect()
}

/// Pushes 64 MiB through `cat` on `spawner`, writing and reading 64 KiB at a time.
async fn through_cat(spawner: Arc<dyn ProcessSpawner>, data: &[u8]) -> usize {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(spawner)
        .spawn()
        .expect("cat starts");
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let write = async move {
        let mut sent = 0;
        while sent < TOTAL {
            stdin.write_all(data).await.expect("write");
            sent += data.len();
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
    let received = tokio::join!(write, read).1;
    child.wait().await.expect("cat ends");
    received
}

/// Records 64 MiB through `cat` and saves the cassette at `path`.
async fn record_through_cat(path: &Path, data: &[u8]) -> usize {
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
    let received = through_cat(Arc::new(recorder.clone()), data).await;
    recorder.save(path).expect("the cassette is saved");
    received
}

fn recording_overhead(c: &mut Criterion) {
    let rt = runtime();
    let path = scratch().join("cat.json");
    for text in [true, false] {
        let data = chunk(text);
        rt.block_on(record_through_cat(&path, &data));
        let size = std::fs::metadata(&path).expect("saved").len();
        // Both directions are recorded: 64 MiB written, 64 MiB of output.
        eprintln!(
            "file size per recorded byte, {}: {size} bytes for {} recorded = {:.3}",
            if text { "text" } else { "binary" },
            2 * TOTAL,
            size as f64 / (2 * TOTAL) as f64
        );
    }

    let data = chunk(true);
    let mut group = c.benchmark_group("64 MiB through cat");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("RealSpawner (baseline)", |b| {
        b.iter(|| rt.block_on(through_cat(Arc::new(RealSpawner::new()), &data)))
    });
    group.bench_function("RecordingSpawner, in memory", |b| {
        b.iter(|| {
            let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
            rt.block_on(through_cat(Arc::new(recorder.clone()), &data))
        })
    });
    group.bench_function("RecordingSpawner, saved to disk", |b| {
        b.iter(|| rt.block_on(record_through_cat(&path, &data)))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(scratch());
}

/// What `Command::output()` of `sh -c "echo N"` asks for.
fn echo_spec(n: usize) -> SpawnSpec {
    Command::new("sh")
        .args(["-c", &format!("echo {n}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .to_spec()
}

/// A cassette of `SPAWNS` spawns of `sh -c "echo N"`, as recording them gives.
fn thousand_spawns() -> Cassette {
    let spawns = (0..SPAWNS)
        .map(|n| {
            let spec = echo_spec(n).child_fd(ChildFd::STDIN, ChildFdMapping::Null);
            let mut recording = Recording::of(&spec);
            recording.events = vec![
                Event::Output {
                    fd: 1,
                    data: format!("{n}\n").as_bytes().into(),
                },
                Event::Lost { fd: 1 },
                Event::Lost { fd: 2 },
                Event::Exited {
                    code: Some(0),
                    signal: None,
                },
            ];
            recording
        })
        .collect();
    Cassette::new(spawns)
}

/// Runs the `SPAWNS` commands on `spawner`; returns the bytes of output.
async fn run_thousand(spawner: Arc<dyn ProcessSpawner>) -> usize {
    let mut total = 0;
    for n in 0..SPAWNS {
        let out = Command::new("sh")
            .args(["-c", &format!("echo {n}")])
            .spawner(spawner.clone())
            .output()
            .await
            .expect("served");
        total += out.stdout.len();
    }
    total
}

fn replaying_a_thousand_spawns(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cassette = thousand_spawns();
    let mut group = c.benchmark_group("1,000 spawns");
    group.throughput(Throughput::Elements(SPAWNS as u64));
    group.bench_function(
        "scripted by hand on a MemoryProcessReactor (baseline)",
        |b| {
            b.iter_batched(
                || {
                    let reactor = MemoryProcessReactor::strict();
                    for n in 0..SPAWNS {
                        let command = ["sh".to_owned(), "-c".to_owned(), format!("echo {n}")];
                        reactor.register(command, Script::new().stdout(format!("{n}\n")).exit(0));
                    }
                    reactor
                },
                |reactor| rt.block_on(run_thousand(Arc::new(reactor))),
                BatchSize::PerIteration,
            )
        },
    );
    group.bench_function("ReplaySpawner, cassette loaded included", |b| {
        b.iter_batched(
            || cassette.clone(),
            |cassette| rt.block_on(run_thousand(Arc::new(ReplaySpawner::new(cassette)))),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// One spawn of `true` by plain `std::process::Command`: the real program, against a shim
/// on `PATH` that replays its recording (a fresh session per spawn, made outside the timing).
fn a_spawn_through_a_shim(c: &mut Criterion) {
    use process_transport_cassette::Shims;
    let path = scratch().join("true.json");
    let recording = Shims::builder(&path)
        .binary(env!("CARGO_BIN_EXE_process-cassette"))
        .mode("record")
        .program("true")
        .open()
        .unwrap();
    let status = std::process::Command::new("true")
        .envs(recording.vars())
        .status()
        .unwrap();
    assert!(status.success());
    recording.finish().unwrap();

    let mut group = c.benchmark_group("a spawn of true");
    group.bench_function("std::process, the real program (baseline)", |b| {
        b.iter(|| std::process::Command::new("true").status().unwrap())
    });
    group.bench_function("std::process, through a replaying shim", |b| {
        b.iter_batched(
            || {
                Shims::builder(&path)
                    .binary(env!("CARGO_BIN_EXE_process-cassette"))
                    .mode("replay")
                    .open()
                    .unwrap()
            },
            |shims| {
                let status = std::process::Command::new("true")
                    .envs(shims.vars())
                    .status()
                    .unwrap();
                assert!(status.success());
                shims
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    recording_overhead,
    replaying_a_thousand_spawns,
    a_spawn_through_a_shim
);
criterion_main!(benches);
