//! What the explorer's test files share.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use process_transport_explore::{replay, Exploration, Explore};

/// Exhaustive mode finds `body`'s failure after `orders` passing orders, and its schedule
/// replays it.
pub(crate) fn found<B, F>(orders: u32, body: B) -> String
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let failure = Explore::new()
        .exhaustive()
        .schedules(100_000)
        .try_run(&body)
        .expect_err("exhaustive mode finds the bug");
    assert_eq!(failure.schedules_before, orders, "{failure}");
    let replayed = catch_unwind(AssertUnwindSafe(|| replay(&failure.schedule.0, &body)));
    assert!(replayed.is_err(), "the schedule replays the failure");
    failure.message
}
