//! Tasks that start only when they have something to do.
//!
//! A pump's first poll finds nothing to do in almost every case (the child has written
//! nothing and not exited yet): spawned as a task at once, it would only make the runtime
//! wake a worker, which polls it and goes back to sleep. Polled here instead, on the
//! spawning thread, it registers for what it waits on, and becomes a task when that comes:
//! then the waking worker usually runs it itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};

use tokio::runtime::Handle;

/// A pump, boxed.
pub(crate) type Pump = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a pump is, between its first poll and its task.
enum Slot {
    /// Its first poll runs.
    Polling,
    /// Woken during its first poll: it becomes a task as soon as that poll returns.
    Woken,
    /// Waiting, not a task yet.
    Parked(Pump),
    /// A task of the runtime (or finished): later wakes of this waker do nothing, the task
    /// has its own.
    Spawned,
}

struct Deferred {
    slot: Mutex<Slot>,
    runtime: Handle,
}

impl Deferred {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for Deferred {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut slot = self.slot();
        match std::mem::replace(&mut *slot, Slot::Spawned) {
            Slot::Polling | Slot::Woken => *slot = Slot::Woken,
            Slot::Parked(pump) => {
                drop(slot);
                // A shut-down runtime drops the pump at once, which runs its guards.
                drop(self.runtime.spawn(pump));
            }
            Slot::Spawned => {}
        }
    }
}

/// Runs `pump` on the current runtime: polled once now, on this thread, and spawned as a task
/// the first time it is woken.
///
/// # Panics
/// Outside a tokio runtime (the spawner checks for one first).
pub(crate) fn spawn_when_woken(mut pump: Pump) {
    let deferred = Arc::new(Deferred {
        slot: Mutex::new(Slot::Polling),
        runtime: Handle::current(),
    });
    let waker = Waker::from(deferred.clone());
    if pump
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        *deferred.slot() = Slot::Spawned;
        return;
    }
    let mut slot = deferred.slot();
    match std::mem::replace(&mut *slot, Slot::Spawned) {
        Slot::Woken => {
            drop(slot);
            drop(deferred.runtime.spawn(pump));
        }
        _ => *slot = Slot::Parked(pump),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::spawn_when_woken;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pump_is_polled_at_once_and_finishes_once_woken() {
        let notify = Arc::new(Notify::new());
        let polls = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let (waiting, counted, finished) = (notify.clone(), polls.clone(), done.clone());
        spawn_when_woken(Box::pin(async move {
            counted.fetch_add(1, Ordering::SeqCst);
            waiting.notified().await;
            counted.fetch_add(1, Ordering::SeqCst);
            finished.notify_one();
        }));
        // The first poll ran on this thread, before the call returned.
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        let finished = done.notified();
        notify.notify_one();
        tokio::time::timeout(std::time::Duration::from_secs(60), finished)
            .await
            .expect("the woken pump runs to its end");
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_pump_woken_during_its_first_poll_still_runs() {
        let polls = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let (counted, finished) = (polls.clone(), done.clone());
        let ended = done.notified();
        spawn_when_woken(Box::pin(async move {
            // Yields once, waking itself from inside its first poll.
            tokio::task::yield_now().await;
            counted.fetch_add(1, Ordering::SeqCst);
            finished.notify_one();
        }));
        tokio::time::timeout(std::time::Duration::from_secs(60), ended)
            .await
            .expect("the pump runs on as a task");
        assert_eq!(polls.load(Ordering::SeqCst), 1);
    }
}
