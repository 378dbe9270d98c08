//! Schedules per second for a small protocol (a child prints two lines and exits; the
//! protocol reassembles lines), against the same test run once on a plain fake reactor in the
//! same group. Each schedule runs on a runtime of its own, as every exploration does. The
//! exhaustive mode's cost per distinct order is measured on the same protocol with the lines
//! `a` and `b` (1,386 orders).
//!
//! `cargo bench -p process-transport-explore --bench explore`; results in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use process_transport_api::{ChildFd, ProcessProtocol, ProcessTransport, SpawnSpec};
use process_transport_explore::Explore;
use process_transport_fakes::{MemoryProcessReactor, Script};

const SCHEDULES: u32 = 1_000;

/// Reassembles stdout into lines.
struct Lines(Arc<Mutex<Vec<String>>>, Vec<u8>);

impl ProcessProtocol for Lines {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        self.1.extend_from_slice(data);
        while let Some(end) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            self.0.lock().expect("lines").push(line);
        }
    }
}

async fn two_lines(reactor: &MemoryProcessReactor) {
    lines(reactor, "alpha\nbeta\n", ["alpha", "beta"]).await
}

async fn lines(reactor: &MemoryProcessReactor, printed: &str, expected: [&str; 2]) {
    reactor.register(["ls"], Script::new().stdout(printed).exit(0));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let child = reactor
        .spawn(
            Box::new(Lines(lines.clone(), Vec::new())),
            SpawnSpec::new("ls"),
        )
        .expect("ls starts");
    child.transport().ended().await;
    assert_eq!(*lines.lock().expect("lines"), expected);
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

fn schedules(c: &mut Criterion) {
    let mut group = c.benchmark_group("a small protocol test, per schedule");
    group.throughput(Throughput::Elements(u64::from(SCHEDULES)));
    group.bench_function(
        "the test run once per schedule, plain fake (baseline)",
        |b| {
            b.iter(|| {
                for _ in 0..SCHEDULES {
                    block_on(two_lines(&MemoryProcessReactor::new()));
                }
            })
        },
    );
    group.bench_function("Explore, 1,000 schedules", |b| {
        b.iter(|| {
            Explore::new()
                .schedules(SCHEDULES)
                .run(|exploration| async move { two_lines(exploration.reactor()).await })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("exhaustive mode, per distinct order");
    group.throughput(Throughput::Elements(ORDERS));
    group.bench_function("Explore::exhaustive, every order of two short lines", |b| {
        b.iter(|| {
            let explored =
                Explore::new()
                    .exhaustive()
                    .schedules(10_000)
                    .run(|exploration| async move {
                        lines(exploration.reactor(), "a\nb\n", ["a", "b"]).await
                    });
            assert_eq!(u64::from(explored.schedules), ORDERS);
        })
    });
    group.finish();
}

/// The distinct orders of the exhaustive benchmark's test.
const ORDERS: u64 = 1_386;

criterion_group!(benches, schedules);
criterion_main!(benches);
