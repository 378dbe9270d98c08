//! What the explorer's test files share.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use process_transport_explore::{replay, Exploration, Explore};

/// Runs `body` on `schedule`, as a failure printed it, and checks that it fails again.
pub(crate) fn assert_replays<B, F>(schedule: &[u32], body: &B)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let replayed = catch_unwind(AssertUnwindSafe(|| replay(schedule, body)));
    assert!(
        replayed.is_err(),
        "the printed schedule replays the failure"
    );
}

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
    assert_replays(&failure.schedule.0, &body);
    failure.message
}
