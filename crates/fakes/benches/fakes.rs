//! The fakes' costs, each against a baseline in the same group:
//! - a 4 KiB `write` on a `MemoryProcessTransport` against `Vec::extend_from_slice` of the
//!   same 4 KiB (both start afresh every 1,024 writes, so memory stays bounded);
//! - one protocol test (spawn `sort`, write two lines, close stdin, read the answer, the end)
//!   on the fake reactor against the same test on real processes.
//!
//! `cargo bench -p process-transport-fakes --bench fakes`; results in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec, Transport,
};
use process_transport_fakes::{MemoryProcessReactor, MemoryProcessTransport, Script};

const PIECE: usize = 4096;
const ROUND: usize = 1024;

fn four_kib_writes(c: &mut Criterion) {
    let piece = vec![b'x'; PIECE];
    let mut group = c.benchmark_group("4 KiB write");
    group.throughput(Throughput::Bytes((PIECE * ROUND) as u64));
    group.bench_function("Vec::extend_from_slice (baseline)", |b| {
        b.iter_batched(
            Vec::new,
            |mut sink: Vec<u8>| {
                for _ in 0..ROUND {
                    sink.extend_from_slice(black_box(&piece));
                }
                sink
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("MemoryProcessTransport::write", |b| {
        b.iter_batched(
            MemoryProcessTransport::new,
            |transport| {
                for _ in 0..ROUND {
                    transport.write(black_box(&piece)).expect("stdin is open");
                }
                transport
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Sends two lines to `sort`, closes its stdin, keeps the answer and the end.
struct SortTwo {
    answer: Arc<Mutex<(Vec<u8>, Option<ProcessEnd>)>>,
}

impl ProcessProtocol for SortTwo {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        transport.write(b"b\na\n").expect("stdin is open");
        transport.close_stdin();
    }
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        self.answer
            .lock()
            .expect("answer")
            .0
            .extend_from_slice(data);
    }
    fn process_ended(&mut self, end: ProcessEnd) {
        self.answer.lock().expect("answer").1 = Some(end);
    }
}

/// The test: spawn `sort` on `spawner`, wait for its end, check the answer.
async fn sort_test(spawner: &dyn ProcessSpawner) {
    let answer = Arc::new(Mutex::new((Vec::new(), None)));
    let transport = spawner
        .spawn_process(
            Box::new(SortTwo {
                answer: answer.clone(),
            }),
            SpawnSpec::new("sort"),
        )
        .await
        .expect("sort starts");
    transport.ended().await;
    let answer = answer.lock().expect("answer");
    assert_eq!(
        (answer.0.as_slice(), answer.1),
        (&b"a\nb\n"[..], Some(ProcessEnd::Done))
    );
}

/// A scripted `sort`: reads stdin to its end, answers with the lines sorted.
fn sort_script() -> Script {
    let input = Arc::new(Mutex::new(Vec::new()));
    let at_end = input.clone();
    Script::new()
        .on_stdin(move |_, data| input.lock().expect("input").extend_from_slice(data))
        .on_stdin_eof(move |child| {
            let input = std::mem::take(&mut *at_end.lock().expect("input"));
            let mut lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
            lines.sort();
            child
                .write(ChildFd::STDOUT, lines.concat())
                .expect("stdout is open");
            child.exit(0);
        })
}

fn one_protocol_test(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("one protocol test (spawn sort, write, read, end)");
    group.bench_function("real processes (baseline)", |b| {
        let real = process_transport_real::RealSpawner::new();
        b.iter(|| rt.block_on(sort_test(&real)))
    });
    group.bench_function("MemoryProcessReactor, a fresh one per test", |b| {
        b.iter(|| {
            let reactor = MemoryProcessReactor::strict();
            reactor.register(["sort"], sort_script());
            futures_executor::block_on(sort_test(&reactor));
        })
    });
    group.finish();
}

criterion_group!(benches, four_kib_writes, one_protocol_test);
criterion_main!(benches);
