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
//! The body runs on a current-thread tokio runtime the explorer owns, with the clock paused.
//! It may `tokio::spawn` tasks, use `JoinSet`, channels, `select!`, `tokio::time::timeout` and
//! the `Command` front door. Each time the runtime is idle (no task can go on without a new
//! event), the explorer releases one held event, as the schedule picks. Timers fire in
//! virtual time, and only when nothing is held: a timeout expires when the children have done
//! all they will do. A body that would hang (nothing held, no timer due within
//! [`Explore::time_limit`]) is reported, not hung; a panic in any task of the run fails it.
//!
//! The same schedule gives the same run, byte for byte: a failure is replayed three times and
//! its children's call logs compared. What the explorer cannot control makes runs differ: a
//! `select!` without `biased;` (tokio picks its first branch at random; built with
//! `--cfg tokio_unstable`, the explorer seeds that choice, and such a body repeats), the wall
//! clock (`std::time::Instant`, not tokio's),
//! `spawn_blocking` and other threads or runtimes, real processes. A failure whose replays
//! differ says so and names these.
//!
//! [`Explore::exhaustive`] tries every distinct order instead of random ones, up to a bound,
//! and says whether it tried them all.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use process_transport_fakes::{Activity, Explorer, Head, MemoryProcessReactor};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRng, TestRunner};

mod exhaustive;
mod run;

use exhaustive::Search;
use run::{quietly, Chooser, Outcome, Runner};

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
    /// Schedules run to their end: random ones, or in exhaustive mode distinct orders.
    pub schedules: u32,
    /// Exhaustive mode: runs cut short because the rest of their order was one already
    /// explored (partial-order reduction). 0 otherwise.
    pub equivalent: u32,
    /// Whether the schedules were random, every distinct order, or stopped at the bound.
    pub coverage: Coverage,
    /// How long they took.
    pub elapsed: Duration,
}

/// How much of the orders an exploration covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Random schedules ([`Explore::run`] without [`Explore::exhaustive`]).
    Sampled,
    /// Every distinct order of the held events.
    All,
    /// Exhaustive mode stopped at its bound ([`Explore::schedules`]) with orders left.
    Bounded,
}

impl fmt::Display for Explored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let elapsed = self.elapsed;
        match self.coverage {
            Coverage::Sampled => write!(
                f,
                "{} random schedules passed in {elapsed:?}",
                self.schedules
            ),
            Coverage::All => write!(
                f,
                "explored all {} distinct orders in {elapsed:?} ({} more runs cut short as \
                 equivalent)",
                self.schedules, self.equivalent
            ),
            Coverage::Bounded => write!(
                f,
                "stopped at the bound after {} distinct orders in {elapsed:?}, with orders \
                 left ({} runs cut short as equivalent)",
                self.schedules, self.equivalent
            ),
        }
    }
}

/// Runs a test body on many schedules. Deterministic: the same settings try the same
/// schedules, so a CI failure is the failure on every machine.
#[derive(Clone, Debug)]
pub struct Explore {
    schedules: u32,
    choices: usize,
    seed: u64,
    exhaustive: bool,
    reduce: bool,
    time_limit: Duration,
}

impl Default for Explore {
    fn default() -> Self {
        Explore {
            schedules: 1_000,
            choices: 64,
            seed: 0,
            exhaustive: false,
            reduce: true,
            time_limit: Duration::from_secs(3_600),
        }
    }
}

impl Explore {
    /// 1,000 random schedules of up to 64 choices each, from seed 0; an hour of paused clock
    /// per run.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many schedules to try; in exhaustive mode, the bound: at most this many distinct
    /// orders.
    pub fn schedules(mut self, schedules: u32) -> Self {
        self.schedules = schedules.max(1);
        self
    }

    /// How many choices a generated schedule holds at most; later choices take the natural
    /// order. More lets a long test vary its later events too. Exhaustive mode has no such
    /// limit.
    pub fn choices(mut self, choices: usize) -> Self {
        self.choices = choices;
        self
    }

    /// Another seed for the schedules generated (the same seed always tries the same ones).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Every distinct order of the held events instead of random ones, depth first, up to
    /// [`schedules`](Self::schedules) of them. Orders that differ only in where a release no
    /// protocol saw (a script's reaction, output nobody reads) falls among releases that leave
    /// its child alone are one order, run once (partial-order reduction); releases a protocol
    /// sees are always tried both ways. [`Explored`] says whether all were tried.
    ///
    /// ```
    /// use process_transport_explore::{Coverage, Explore};
    /// use process_transport_fakes::Script;
    /// use process_transport_api::{ProcessTransport, SpawnSpec};
    /// # struct P; impl process_transport_api::ProcessProtocol for P { fn make_connection(&mut self, _: std::sync::Arc<dyn ProcessTransport>) {} }
    ///
    /// let explored = Explore::new().exhaustive().schedules(10_000).run(|exploration| async move {
    ///     let reactor = exploration.reactor();
    ///     reactor.register(["hi"], Script::new().stdout("hi").exit(0));
    ///     let child = reactor.spawn(Box::new(P), SpawnSpec::new("hi")).unwrap();
    ///     child.transport().ended().await;
    /// });
    /// assert_eq!(explored.coverage, Coverage::All);
    /// println!("{explored}");
    /// ```
    pub fn exhaustive(mut self) -> Self {
        self.exhaustive = true;
        self
    }

    /// Whether exhaustive mode skips orders equivalent to one it explored (the default) or
    /// runs every order, equivalent or not: to check the reduction on a test of your own, or
    /// to count.
    pub fn reduce(mut self, reduce: bool) -> Self {
        self.reduce = reduce;
        self
    }

    /// How much of the runtime's paused clock may pass in one run before a body still
    /// waiting is reported as hung (default: an hour). Time passes only when nothing is
    /// held and no task can run, straight to the next timer, so this costs no real time.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
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
        if self.exhaustive {
            self.search(&body)
        } else {
            self.sample(&body)
        }
    }

    /// Random schedules from proptest, a failure shrunk by it.
    fn sample<B, F>(&self, body: &B) -> Result<Explored, Failure>
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
        let runs = std::cell::RefCell::new(Runner::new());
        let result = quietly(|| {
            runner.run(&strategy, |choices| {
                tried.set(tried.get() + 1);
                let ran =
                    runs.borrow_mut()
                        .run(body, Replay::new(&choices), self.time_limit, false);
                match ran.outcome {
                    Outcome::Failed(message) => {
                        if failed_at.get().is_none() {
                            failed_at.set(Some(tried.get()));
                        }
                        Err(TestCaseError::fail(message))
                    }
                    Outcome::Passed | Outcome::Cut => Ok(()),
                }
            })
        });
        match result {
            Ok(()) => Ok(Explored {
                schedules: self.schedules,
                equivalent: 0,
                coverage: Coverage::Sampled,
                elapsed: started.elapsed(),
            }),
            Err(TestError::Fail(_, choices)) => {
                // The shrunk schedule's own message, not the first one found; the schedule
                // as small as it can be written.
                let (_, options_of) = quietly(|| run_on(body, &choices, self.time_limit));
                let schedule = smallest(&choices, &options_of);
                Err(self.confirmed(body, schedule, failed_at.get().unwrap_or(1) - 1))
            }
            Err(TestError::Abort(why)) => Err(Failure {
                schedule: Schedule::default(),
                message: format!("the exploration stopped: {why}"),
                schedules_before: tried.get(),
            }),
        }
    }

    /// Every distinct order, depth first.
    fn search<B, F>(&self, body: &B) -> Result<Explored, Failure>
    where
        B: Fn(Exploration) -> F,
        F: Future<Output = ()>,
    {
        let started = Instant::now();
        let (mut schedules, mut equivalent) = (0u32, 0u32);
        let mut search = Some(Search::new(self.reduce));
        let mut runs = Runner::new();
        while let Some(next) = search {
            if schedules >= self.schedules {
                return Ok(Explored {
                    schedules,
                    equivalent,
                    coverage: Coverage::Bounded,
                    elapsed: started.elapsed(),
                });
            }
            let ran = quietly(|| runs.run(body, next, self.time_limit, false));
            let done = ran.chooser;
            if let Some(why) = &done.diverged {
                return Err(Failure {
                    schedule: Schedule(smallest(&done.choices, &done.options_of)),
                    message: format!(
                        "the same choices gave two different runs: {why}. {UNCONTROLLED}"
                    ),
                    schedules_before: schedules,
                });
            }
            match ran.outcome {
                Outcome::Passed => schedules += 1,
                Outcome::Cut => equivalent += 1,
                Outcome::Failed(_) => {
                    let schedule = smallest(&done.choices, &done.options_of);
                    return Err(self.confirmed(body, schedule, schedules));
                }
            }
            search = done.advance();
        }
        Ok(Explored {
            schedules,
            equivalent,
            coverage: Coverage::All,
            elapsed: started.elapsed(),
        })
    }

    /// The failure on `schedule`, replayed three times: its message, and whether the
    /// replays were the same run, byte for byte.
    fn confirmed<B, F>(&self, body: &B, schedule: Vec<u32>, schedules_before: u32) -> Failure
    where
        B: Fn(Exploration) -> F,
        F: Future<Output = ()>,
    {
        let runs: Vec<(Outcome, String)> = (0..3)
            .map(|_| {
                let ran = quietly(|| run::run(body, Replay::new(&schedule), self.time_limit, true));
                (ran.outcome, ran.transcript)
            })
            .collect();
        let same = runs.windows(2).all(|pair| pair[0] == pair[1]);
        let message = match (&runs[0].0, same) {
            (Outcome::Failed(message), true) => message.clone(),
            (Outcome::Failed(message), false) => {
                format!("{message}\n(but its three replays were not the same run: {UNCONTROLLED})")
            }
            (_, _) => format!("the failure did not repeat: {UNCONTROLLED}"),
        };
        Failure {
            schedule: Schedule(schedule),
            message,
            schedules_before,
        }
    }
}

/// What makes one schedule give different runs, for the messages that find it did.
const UNCONTROLLED: &str = "the test has a source of order the explorer does not control: a \
    `select!` without `biased;` (tokio picks its first branch at random, unless the build has \
    `--cfg tokio_unstable`, where the explorer seeds it), the wall clock \
    (std's Instant or SystemTime, not tokio's paused one), `spawn_blocking` or another thread \
    or runtime, or a real process";

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
    let limit = Explore::default().time_limit;
    if let Outcome::Failed(message) = run::run(&body, Replay::new(schedule), limit, false).outcome {
        panic!("on schedule {}: {message}", Schedule(schedule.to_vec()));
    }
}

/// Runs `body` once on `choices`; also returns how many options each choice the run made
/// had.
fn run_on<B, F>(body: &B, choices: &[u32], limit: Duration) -> (Outcome, Vec<usize>)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let ran = run::run(body, Replay::new(choices), limit, false);
    (ran.outcome, ran.chooser.options_of)
}

/// Plays a schedule: the `n`th choice is the `n`th number, modulo its options; past the end,
/// the natural order.
struct Replay {
    choices: Vec<u32>,
    options_of: Vec<usize>,
}

impl Replay {
    fn new(choices: &[u32]) -> Replay {
        Replay {
            choices: choices.to_vec(),
            options_of: Vec::new(),
        }
    }
}

impl Chooser for Replay {
    fn observes(&self) -> bool {
        false
    }

    fn step(&mut self, _: &[Head], _: &Activity) -> bool {
        true
    }

    fn choose(&mut self, options: usize) -> usize {
        let choice = self
            .choices
            .get(self.options_of.len())
            .copied()
            .unwrap_or(0) as usize
            % options;
        self.options_of.push(options);
        choice
    }

    fn finish(&mut self, _: &Activity) {}
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
