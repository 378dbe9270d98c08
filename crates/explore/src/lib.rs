//! Run a test of process-handling code through every order of events a real child could
//! produce, and when one order breaks it, get that order back as a short schedule to paste
//! into the test.
//!
//! A real child shows one order per run, chosen by the scheduler: a line split across two
//! reads, `process_exited` before the last output, stderr before stdout. Here the test body
//! runs on fake children ([`MemoryProcessReactor`]) whose every event is held by an
//! [`Explorer`] and released in an order a schedule chooses, always one section 5 allows.
//! [`Explore`] runs the body on many schedules (proptest underneath, so a failure shrinks to a
//! small schedule) and, on failure, panics with the schedule and the call that replays it.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use process_transport_api::{ChildFd, ProcessProtocol, ProcessTransport, SpawnSpec};
//! use process_transport_explore::Explore;
//! use process_transport_fakes::Script;
//!
//! /// Collects stdout and splits it into lines only once it is complete: right in any order.
//! #[derive(Default)]
//! struct Lines(Arc<Mutex<Vec<u8>>>);
//!
//! impl ProcessProtocol for Lines {
//!     fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
//!     fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
//!         self.0.lock().unwrap().extend_from_slice(data);
//!     }
//! }
//!
//! Explore::new().schedules(200).run(|exploration| async move {
//!     let reactor = exploration.reactor();
//!     reactor.register(["ls"], Script::new().stdout("a\nb\n").exit(0));
//!     let seen = Arc::new(Mutex::new(Vec::new()));
//!     let child = reactor.spawn(Box::new(Lines(seen.clone())), SpawnSpec::new("ls")).unwrap();
//!     child.transport().ended().await;
//!     assert_eq!(*seen.lock().unwrap(), b"a\nb\n");
//! });
//! ```
//!
//! The body is an `async` block run on a single thread by the explorer itself: between two
//! polls it releases one held event, so the protocol sees the children's events only while
//! the body awaits (`ended()`, a `Command`'s pipes and `wait`). Everything the body awaits
//! must be caused by the fake children; a body that waits for anything else (a timer, a real
//! process) is reported as waiting for something no child will do.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Once;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use process_transport_fakes::{Explorer, MemoryProcessReactor};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRng, TestRunner};

/// The choices of one run: the `n`th number picks the `n`th choice the explorer makes (taken
/// modulo the number of options), and a choice past the end is 0, the natural order. The same
/// schedule gives the same run, byte for byte. Printed as `[3, 0, 17]`, which pastes into
/// [`replay`]; a failure's schedule is written as small as it can be (each number below its
/// options, no trailing zeros).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule(pub Vec<u32>);

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// What a test body gets: a reactor whose children the explorer holds, and the explorer.
#[derive(Clone, Debug)]
pub struct Exploration {
    reactor: MemoryProcessReactor,
    explorer: Explorer,
}

impl Exploration {
    /// A fresh strict reactor for this run; every child it spawns is explored. Register
    /// scripts on it, or hand it to code under test as its `ProcessSpawner`; a command with no
    /// script is not found, naming the closest registered one.
    pub fn reactor(&self) -> &MemoryProcessReactor {
        &self.reactor
    }

    /// The explorer of this run: give it to another reactor (a cassette's
    /// `ReplaySpawner::explored_by`) to explore its children too.
    pub fn explorer(&self) -> &Explorer {
        &self.explorer
    }
}

/// A failed exploration: the smallest schedule found that breaks the test, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The schedule that breaks the test, shrunk.
    pub schedule: Schedule,
    /// The test's panic message on that schedule.
    pub message: String,
    /// How many schedules ran before the first failure was found.
    pub schedules_before: u32,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the test fails on schedule {schedule} (found after {tried} passing schedules, \
             then shrunk): {message}\nreplay it with: \
             process_transport_explore::replay(&{schedule}, body)",
            schedule = self.schedule,
            tried = self.schedules_before,
            message = self.message,
        )
    }
}

impl std::error::Error for Failure {}

/// What a passing exploration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Explored {
    /// Schedules run.
    pub schedules: u32,
    /// How long they took.
    pub elapsed: Duration,
}

/// Runs a test body on many schedules. Deterministic: the same settings try the same
/// schedules, so a CI failure is the failure on every machine.
#[derive(Clone, Debug)]
pub struct Explore {
    schedules: u32,
    choices: usize,
    seed: u64,
}

impl Default for Explore {
    fn default() -> Self {
        Explore {
            schedules: 1_000,
            choices: 64,
            seed: 0,
        }
    }
}

impl Explore {
    /// 1,000 schedules of up to 64 choices each, from seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many schedules to try.
    pub fn schedules(mut self, schedules: u32) -> Self {
        self.schedules = schedules.max(1);
        self
    }

    /// How many choices a generated schedule holds at most; later choices take the natural
    /// order. More lets a long test vary its later events too.
    pub fn choices(mut self, choices: usize) -> Self {
        self.choices = choices;
        self
    }

    /// Another seed for the schedules generated (the same seed always tries the same ones).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Runs `body` on every schedule; panics with the [`Failure`] (its schedule and how to
    /// replay it) when one breaks it.
    pub fn run<B, F>(&self, body: B) -> Explored
    where
        B: Fn(Exploration) -> F,
        F: Future<Output = ()>,
    {
        match self.try_run(body) {
            Ok(explored) => explored,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Runs `body` on every schedule; the [`Failure`] when one breaks it.
    pub fn try_run<B, F>(&self, body: B) -> Result<Explored, Failure>
    where
        B: Fn(Exploration) -> F,
        F: Future<Output = ()>,
    {
        let config = Config {
            cases: self.schedules,
            failure_persistence: None,
            max_shrink_iters: 20_000,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        let rng = TestRng::from_seed(config.rng_algorithm, &seed);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let strategy = proptest::collection::vec(proptest::num::u32::ANY, 0..=self.choices);
        let started = Instant::now();
        let tried = Cell::new(0u32);
        let failed_at = Cell::new(None);
        let result = quietly(|| {
            runner.run(&strategy, |choices| {
                tried.set(tried.get() + 1);
                run_once(&body, &choices).map_err(|message| {
                    if failed_at.get().is_none() {
                        failed_at.set(Some(tried.get()));
                    }
                    TestCaseError::fail(message)
                })
            })
        });
        match result {
            Ok(()) => Ok(Explored {
                schedules: self.schedules,
                elapsed: started.elapsed(),
            }),
            Err(TestError::Fail(_, choices)) => {
                // The shrunk schedule's own message, not the first one found; the schedule
                // as small as it can be written.
                let (outcome, options_of) = quietly(|| run_counting(&body, &choices));
                let message = outcome
                    .err()
                    .unwrap_or_else(|| "the failure did not repeat".into());
                Err(Failure {
                    schedule: Schedule(smallest(&choices, &options_of)),
                    message,
                    schedules_before: failed_at.get().unwrap_or(0).saturating_sub(1),
                })
            }
            Err(TestError::Abort(why)) => Err(Failure {
                schedule: Schedule::default(),
                message: format!("the exploration stopped: {why}"),
                schedules_before: tried.get(),
            }),
        }
    }
}

/// Runs `body` on every schedule of [`Explore::new`]; see [`Explore::run`].
pub fn explore<B, F>(body: B) -> Explored
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    Explore::new().run(body)
}

/// Runs `body` once, on `schedule` (as a failure printed it); its panic, if any, is the
/// test's.
pub fn replay<B, F>(schedule: &[u32], body: B)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    if let Err(message) = run_once(&body, schedule) {
        panic!("on schedule {}: {message}", Schedule(schedule.to_vec()));
    }
}

/// Runs `body` once on `choices`: polls it, and between two polls releases one held event.
fn run_once<B, F>(body: &B, choices: &[u32]) -> Result<(), String>
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    run_counting(body, choices).0
}

/// Runs `body` once on `choices`, as [`run_once`]; also returns how many options each choice
/// the run made had.
fn run_counting<B, F>(body: &B, choices: &[u32]) -> (Result<(), String>, Vec<usize>)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let explorer = Explorer::new();
    let reactor = MemoryProcessReactor::strict();
    reactor.explored_by(&explorer);
    let exploration = Exploration {
        reactor,
        explorer: explorer.clone(),
    };
    let mut options_of = Vec::new();
    let mut choose = |options: usize| {
        let choice = choices.get(options_of.len()).copied().unwrap_or(0) as usize % options;
        options_of.push(options);
        choice
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut future = pin!(body(exploration));
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(()) = future.as_mut().poll(&mut cx) {
                return Ok(());
            }
            if !explorer.step(&mut choose) {
                return Err(
                    "the test waits for something no child will do: it would hang \
                            here (every held event was released)"
                        .to_owned(),
                );
            }
        }
    }));
    let outcome = outcome.unwrap_or_else(|panic| Err(panic_message(&*panic)));
    (outcome, options_of)
}

/// The same choices as `choices` made on a run that had `options_of` options at each choice,
/// written as small as they can be: each number taken modulo its options, and the choices
/// past the run's last, or trailing zeros, dropped. It plays exactly the same run.
fn smallest(choices: &[u32], options_of: &[usize]) -> Vec<u32> {
    let mut smallest: Vec<u32> = choices
        .iter()
        .zip(options_of)
        .map(|(&choice, &options)| (choice as usize % options) as u32)
        .collect();
    while smallest.last() == Some(&0) {
        smallest.pop();
    }
    smallest
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_else(|| "a panic with no message".to_owned())
}

thread_local! {
    /// Set while this thread explores: its panics are the exploration's findings, reported
    /// once at the end, not printed one by one.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's panics unprinted (other threads print theirs as before).
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    /// Puts the flag back however `f` ends.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            QUIET.with(|quiet| quiet.set(self.0));
        }
    }
    let _restore = Restore(QUIET.with(|quiet| quiet.replace(true)));
    f()
}

#[cfg(test)]
mod tests {
    use super::smallest;

    #[test]
    fn a_schedule_is_written_with_each_choice_below_its_options_and_no_trailing_zeros() {
        assert_eq!(
            smallest(&[7, 3127883267, 9, 4, 8], &[3, 5, 2, 4]),
            [1, 2, 1]
        );
        assert_eq!(smallest(&[4, 6], &[2, 3]), Vec::<u32>::new());
        assert_eq!(smallest(&[], &[2, 3]), Vec::<u32>::new());
    }
}
