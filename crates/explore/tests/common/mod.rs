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

/// `body` fails within 1,000 random schedules; the failure prints the call that replays it,
/// its replays were the same run, and its schedule replays it. Returns the failure's message.
pub(crate) fn caught<B, F>(body: B) -> String
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let failure = Explore::new()
        .schedules(1_000)
        .try_run(&body)
        .expect_err("the explorer finds the bug");
    assert!(failure.schedules_before < 1_000);
    let text = failure.to_string();
    assert!(
        text.contains(&format!(
            "replay it with: process_transport_explore::replay(&{}, body)",
            failure.schedule
        )),
        "{text}"
    );
    assert!(
        !failure.message.contains("not the same run"),
        "three replays gave the same run: {failure}"
    );
    assert_replays(&failure.schedule.0, &body);
    failure.message
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
