//! One run of a test body: on a current-thread tokio runtime of its own with the clock
//! paused, where one held event is released each time the runtime is idle.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use process_transport_fakes::{Activity, Explorer, Head, MemoryProcessReactor};

use crate::Exploration;

/// What picks the events of one run, step by step.
pub(crate) trait Chooser: Send + 'static {
    /// Whether [`step`](Self::step) and [`finish`](Self::finish) want to see the heads and
    /// the activity; a chooser that only plays numbers spares the run their cost.
    fn observes(&self) -> bool {
        true
    }

    /// A step begins: it will choose among `heads`; `activity` is what the children have
    /// shown and been asked so far. `false` ends the run here (it repeats one already made).
    fn step(&mut self, heads: &[Head], activity: &Activity) -> bool;

    /// A number below `options` for the step's next choice.
    fn choose(&mut self, options: usize) -> usize;

    /// The run is over; `activity` is the children's at its end.
    fn finish(&mut self, activity: &Activity);
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The body returned and nothing panicked.
    Passed,
    /// The body, or a task on its runtime, panicked; or it would hang. The message says.
    Failed(String),
    /// The chooser ended it: the rest repeats a run already made.
    Cut,
}

/// A run's outcome and its transcript (every child's call log).
pub(crate) struct Ran<C> {
    pub(crate) outcome: Outcome,
    pub(crate) chooser: C,
    pub(crate) transcript: String,
}

/// Runs `body` once, `chooser` picking the events; see [`Runner::run`].
pub(crate) fn run<B, F, C>(body: &B, chooser: C, limit: Duration, transcribe: bool) -> Ran<C>
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
    C: Chooser,
{
    Runner::new().run(body, chooser, limit, transcribe)
}

/// Runs a body again and again, on one runtime while a run leaves it as it found it (no task
/// alive, the clock where it was, no panic), on a fresh one otherwise.
pub(crate) struct Runner<C> {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared<C>>,
}

impl<C: Chooser> Runner<C> {
    pub(crate) fn new() -> Self {
        install_hook();
        Runner {
            runtime: None,
            shared: Arc::new(Shared {
                chooser: Mutex::new(None),
                explorer: Mutex::new(None),
                flag: Arc::new(Flag {
                    woken: AtomicBool::new(true),
                    outer: Mutex::new(None),
                }),
                cut: AtomicBool::new(false),
                broke: AtomicBool::new(false),
            }),
        }
    }

    fn runtime(&self) -> tokio::runtime::Runtime {
        let shared = self.shared.clone();
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder
            .enable_time()
            .start_paused(true)
            .on_thread_park(move || shared.idle());
        // Where the build allows it, `select!`'s random branch order starts from one seed in
        // every run (and a runtime is never reused, so that it starts there).
        #[cfg(tokio_unstable)]
        builder.rng_seed(tokio::runtime::RngSeed::from_bytes(
            b"process-transport-explore",
        ));
        builder
            .build()
            .expect("a current-thread runtime with a paused clock builds")
    }

    /// Runs `body` once, `chooser` picking the events. `limit`: how much of the paused clock
    /// may pass before a body still waiting is reported as hung. `transcribe`: whether to
    /// keep the transcript (it costs a formatting of every log).
    pub(crate) fn run<B, F>(
        &mut self,
        body: &B,
        chooser: C,
        limit: Duration,
        transcribe: bool,
    ) -> Ran<C>
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
        let shared = &self.shared;
        *lock(&shared.chooser) = Some(chooser);
        *lock(&shared.explorer) = Some(explorer.clone());
        // Woken to begin with: the body's first poll.
        shared.flag.woken.store(true, Ordering::SeqCst);
        shared.cut.store(false, Ordering::SeqCst);
        shared.broke.store(false, Ordering::SeqCst);
        let runtime = self.runtime.take().unwrap_or_else(|| self.runtime());
        let _recording = Recording::start();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async {
                let started = tokio::time::Instant::now();
                let watched = Watched {
                    body: std::pin::pin!(body(exploration)),
                    limit: std::pin::pin!(tokio::time::sleep(limit)),
                    shared,
                };
                let outcome = watched.await;
                (outcome, tokio::time::Instant::now() == started)
            })
        }));
        // The run is what happened until the body returned or panicked. Then the runtime
        // drops its tasks in an order of tokio's (by global task ids), closing what they held.
        let transcript = if transcribe {
            explorer.transcript()
        } else {
            String::new()
        };
        *lock(&shared.explorer) = None;
        let outcome = match (first_panic(), outcome) {
            (Some(message), _) => Outcome::Failed(message),
            (None, Err(payload)) => Outcome::Failed(panic_message(&*payload)),
            (None, Ok((outcome, clock_kept))) => {
                let seeded = cfg!(tokio_unstable);
                if clock_kept && !seeded && runtime.metrics().num_alive_tasks() == 0 {
                    self.runtime = Some(runtime);
                }
                outcome
            }
        };
        // A runtime not kept is dropped here (its tasks with it), after its waker: held by the
        // idle callback's state, that would keep the runtime (and the callback) alive.
        if self.runtime.is_none() {
            *lock(&shared.flag.outer) = None;
        }
        let outcome = match outcome {
            Outcome::Failed(message) if message == HUNG => Outcome::Failed(format!(
                "the test waits for something no child will do: it would hang here (every held \
                 event was released, and no timer of the body was due within {limit:?} of the \
                 runtime's paused clock; Explore::time_limit sets that time)"
            )),
            other => other,
        };
        let mut chooser = lock(&shared.chooser)
            .take()
            .expect("the chooser is taken out once, after the run");
        if chooser.observes() {
            chooser.finish(&explorer.activity());
        }
        Ran {
            outcome,
            chooser,
            transcript,
        }
    }
}

impl<C> Drop for Runner<C> {
    fn drop(&mut self) {
        *lock(&self.shared.flag.outer) = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the runtime's idle callback and the body's wrapper share.
struct Shared<C> {
    /// The run's chooser and explorer; `None` between runs.
    chooser: Mutex<Option<C>>,
    explorer: Mutex<Option<Explorer>>,
    flag: Arc<Flag>,
    /// Set when the chooser ended the run.
    cut: AtomicBool,
    /// Set when a released event panicked (in a protocol, or a fake's misuse check): the
    /// panic is recorded, and the run ends with it.
    broke: AtomicBool,
}

impl<C: Chooser> Shared<C> {
    /// Called by the runtime each time no task can run: unless the body itself is about to
    /// be polled, release one held event (nothing held: the clock may move on to a timer).
    fn idle(&self) {
        if self.flag.woken.load(Ordering::SeqCst)
            || self.cut.load(Ordering::SeqCst)
            || self.broke.load(Ordering::SeqCst)
        {
            return;
        }
        let Some(explorer) = lock(&self.explorer).clone() else {
            return;
        };
        if explorer.pending() == 0 {
            return;
        }
        let mut chooser = self.chooser.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(chooser) = chooser.as_mut() else {
            return;
        };
        if chooser.observes() && !chooser.step(&explorer.heads(), &explorer.activity()) {
            self.cut.store(true, Ordering::SeqCst);
            self.flag.wake_outer();
            return;
        }
        // Not unwound through the runtime: the run ends at the body's next poll instead.
        let released = catch_unwind(AssertUnwindSafe(|| {
            explorer.step(&mut |options| chooser.choose(options))
        }));
        if released.is_err() {
            self.broke.store(true, Ordering::SeqCst);
        }
        // The runtime must look again before it parks: a release that woke nothing would
        // otherwise let the paused clock jump to the next timer with events still held.
        self.flag.wake_outer();
    }
}

/// The body's waker: tells the idle callback that the body is about to be polled, and wakes
/// the runtime's `block_on`.
struct Flag {
    woken: AtomicBool,
    outer: Mutex<Option<Waker>>,
}

impl Flag {
    fn wake_outer(&self) {
        let outer = self.outer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = outer.as_ref() {
            waker.wake_by_ref();
        }
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.wake_outer();
    }
}

/// Stands for the message of a run that hit its time limit, until it is written out.
const HUNG: &str = "\u{0}hung";

/// The body, polled with a [`Flag`] for its waker, against the time limit.
struct Watched<'a, B, C> {
    body: Pin<&'a mut B>,
    limit: Pin<&'a mut tokio::time::Sleep>,
    shared: &'a Shared<C>,
}

impl<B: Future<Output = ()>, C> Future for Watched<'_, B, C> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if self.shared.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Outcome::Cut);
        }
        if self.shared.broke.load(Ordering::SeqCst) {
            // The message is the recorded panic's.
            return Poll::Ready(Outcome::Failed("a released event panicked".to_owned()));
        }
        let flag = self.shared.flag.clone();
        {
            let mut outer = flag.outer.lock().unwrap_or_else(PoisonError::into_inner);
            if !outer
                .as_ref()
                .is_some_and(|known| known.will_wake(cx.waker()))
            {
                *outer = Some(cx.waker().clone());
            }
        }
        // Polled after a release that did not wake the body: only the limit is looked at.
        if flag.woken.swap(false, Ordering::SeqCst) {
            let waker = Waker::from(flag);
            if self
                .body
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(Outcome::Passed);
            }
        }
        match self.limit.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Outcome::Failed(HUNG.to_owned())),
            Poll::Pending => Poll::Pending,
        }
    }
}

thread_local! {
    /// Set while this thread explores: its panics are the exploration's findings, reported
    /// once at the end, not printed one by one.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The panics of the run in progress on this thread (the body's and its tasks'), first
    /// first; `None` when no run is.
    static PANICS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Collects this thread's panics while it lives.
struct Recording;

impl Recording {
    fn start() -> Recording {
        PANICS.with(|panics| *panics.borrow_mut() = Some(Vec::new()));
        Recording
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        PANICS.with(|panics| *panics.borrow_mut() = None);
    }
}

/// The first panic of the run in progress: a task's panic counts, though tokio caught it.
fn first_panic() -> Option<String> {
    PANICS.with(|panics| {
        panics
            .borrow()
            .as_ref()
            .and_then(|seen| seen.first().cloned())
    })
}

/// The hook that records a run's panics and keeps them unprinted where asked.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|panics| {
                if let Ok(mut panics) = panics.try_borrow_mut() {
                    if let Some(seen) = panics.as_mut() {
                        seen.push(panic_message(info.payload()));
                    }
                }
            });
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` with this thread's panics unprinted (other threads print theirs as before).
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> R {
    install_hook();
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
