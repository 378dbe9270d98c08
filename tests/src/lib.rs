//! Helpers shared by the cross-crate suites. The recording protocol and the order check come
//! from the contract crate, so the suites and the contract use one of each.

#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

use std::sync::Arc;

use process_transport_api::{ProcessEnd, ProcessProtocol, ProcessTransport};
pub use process_transport_contract::{
    check_order, Event, Log, Reaction, Recorder, RecordingProducer, HANG_GUARD,
};
pub use process_transport_fakes::assert_bytes_eq;

pub mod twins;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// docs/choosing.md's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/choosing.md")]
pub struct ChoosingDoctests;

/// Awaits `future`, panicking if it takes longer than [`HANG_GUARD`].
pub async fn guard<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the test hung: no event within the guard timeout")
}

/// Spawns `spec` with `protocol` on the real transport and waits for `process_ended`.
pub async fn run_real(
    protocol: Box<dyn ProcessProtocol>,
    spec: process_transport_api::SpawnSpec,
) -> (Arc<dyn ProcessTransport>, ProcessEnd) {
    use process_transport_api::ProcessSpawner;
    let spawner = process_transport_real::RealSpawner::new();
    let transport = spawner
        .spawn_process(protocol, spec)
        .await
        .expect("the spawn succeeds");
    let end = guard(transport.ended()).await;
    (transport, end)
}

/// The text of a caught panic's payload (`panic!` with a literal or a format), or an empty
/// string for any other payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_default()
}
