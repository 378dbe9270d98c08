//! The cost of one `write` on a mock against the same write on the recording fakes.
//!
//! Run with `cargo bench -p process-transport-mocks --bench write`; the ratios are written up
//! in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use process_transport_api::Transport;
use process_transport_fakes::{MemoryProcessTransport, StringTransport};
use process_transport_mocks::{bytes_eq, MockProcessTransport, MockTransport};

const PAYLOAD: &[u8] = b"0123456789abcdef";

fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("write 16 bytes");

    group.bench_function("StringTransport (baseline)", |b| {
        let transport = StringTransport::new();
        let mut written = 0u32;
        b.iter(|| {
            transport.write(black_box(PAYLOAD)).unwrap();
            written += 1;
            if written.is_multiple_of(64 * 1024) {
                transport.clear();
            }
        })
    });

    group.bench_function("MemoryProcessTransport", |b| {
        // A fresh transport every 64 Ki writes keeps the recorded bytes bounded, as the
        // baseline's clear() does.
        let mut transport = MemoryProcessTransport::new();
        let mut written = 0u32;
        b.iter(|| {
            transport.write(black_box(PAYLOAD)).unwrap();
            written += 1;
            if written.is_multiple_of(64 * 1024) {
                transport = MemoryProcessTransport::new();
            }
        })
    });

    group.bench_function("MockTransport, any payload", |b| {
        let mut transport = MockTransport::new();
        transport.expect_write().returning(|_| Ok(()));
        b.iter(|| transport.write(black_box(PAYLOAD)).unwrap())
    });

    group.bench_function("MockTransport, bytes_eq predicate", |b| {
        let mut transport = MockTransport::new();
        transport
            .expect_write()
            .with(bytes_eq(PAYLOAD))
            .returning(|_| Ok(()));
        b.iter(|| transport.write(black_box(PAYLOAD)).unwrap())
    });

    group.bench_function("MockProcessTransport, any payload", |b| {
        let mut transport = MockProcessTransport::new();
        transport.expect_write().returning(|_| Ok(()));
        b.iter(|| transport.write(black_box(PAYLOAD)).unwrap())
    });

    group.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
