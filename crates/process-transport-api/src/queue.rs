//! A queue that delivers events one at a time, never re-entered.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};

/// A FIFO of events with at most one deliverer at a time.
///
/// [`drain`](Self::drain) delivers queued events in order. When an event's handler causes
/// more events (a protocol calling its transport from inside a callback), they are pushed and
/// delivered by the running drain after the handler returns, never by a nested call. Another
/// thread that calls `drain` while one is running returns at once and leaves its events to the
/// running one. This is how every transport in the workspace keeps section 5's "no callback
/// is ever re-entered" without deadlocks.
///
/// [`hold`](Self::hold) lets code other than a handler (a test inspecting the protocol) take
/// the deliverer's place for a while: events caused meanwhile wait, and are delivered by the
/// next drain.
///
/// ```
/// use process_transport_api::implement::EventQueue;
/// use std::sync::Arc;
///
/// let queue = Arc::new(EventQueue::new());
/// let mut seen = Vec::new();
/// queue.push(1);
/// let inner = queue.clone();
/// queue.drain(|n| {
///     seen.push(n);
///     if n < 3 {
///         inner.push(n + 1);
///         inner.drain(|_| unreachable!("a nested drain returns at once"));
///     }
/// });
/// assert_eq!(seen, [1, 2, 3]);
/// ```
pub struct EventQueue<E> {
    inner: Mutex<Inner<E>>,
    /// Signalled each time the deliverer's place is given up.
    idle: Condvar,
}

struct Inner<E> {
    items: VecDeque<E>,
    /// The thread delivering (or holding the queue), if any.
    deliverer: Option<ThreadId>,
    /// Threads waiting in `hold` for the deliverer's place: only then is `idle` signalled
    /// (a signal is a system call, paid by every drain otherwise).
    waiting: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                deliverer: None,
                waiting: 0,
            }),
            idle: Condvar::new(),
        }
    }
}

impl<E> fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("EventQueue")
            .field("queued", &inner.items.len())
            .field("delivering", &inner.deliverer.is_some())
            .finish()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
        // A handler that panicked leaves the queue itself consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one event.
    pub fn push(&self, event: E) {
        self.lock().items.push_back(event);
    }

    /// Queues several events, in order.
    pub fn extend(&self, events: impl IntoIterator<Item = E>) {
        self.lock().items.extend(events);
    }

    /// The number of events waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// `true` when no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the queued events for which `keep` returns `false`.
    pub fn retain(&self, keep: impl FnMut(&E) -> bool) {
        self.lock().items.retain(keep);
    }

    /// Delivers every queued event to `deliver`, in order, unless a drain is already running
    /// (on this thread or another) or the queue is held, in which case that one delivers them.
    /// Returns `true` when this call was the deliverer.
    pub fn drain(&self, deliver: impl FnMut(E)) -> bool {
        let claimed = {
            let mut inner = self.lock();
            if inner.deliverer.is_some() {
                return false;
            }
            if inner.items.is_empty() {
                return true;
            }
            inner.deliverer = Some(thread::current().id());
            Claimed(Delivering(self))
        };
        claimed.deliver(deliver);
        true
    }

    /// Queues `events` and, in the same step, takes the deliverer's place when it is free and
    /// something is queued. The caller delivers with [`Claimed::deliver`] once it has let go
    /// of the lock it queued under; `None` when another drain (or a hold) delivers them, or
    /// nothing is queued. One lock instead of the two of `extend` then `drain`.
    ///
    /// ```
    /// use process_transport_api::implement::EventQueue;
    ///
    /// let queue = EventQueue::new();
    /// let mut seen = Vec::new();
    /// if let Some(claimed) = queue.extend_and_claim([1, 2]) {
    ///     claimed.deliver(|n| seen.push(n));
    /// }
    /// assert_eq!(seen, [1, 2]);
    /// assert!(queue.extend_and_claim([]).is_none(), "nothing queued, nothing to claim");
    /// ```
    pub fn extend_and_claim(&self, events: impl IntoIterator<Item = E>) -> Option<Claimed<'_, E>> {
        let mut inner = self.lock();
        for event in events {
            inner.items.push_back(event);
        }
        if inner.deliverer.is_some() || inner.items.is_empty() {
            return None;
        }
        inner.deliverer = Some(thread::current().id());
        Some(Claimed(Delivering(self)))
    }

    /// Runs `f` in the deliverer's place: waits until no other thread delivers, then keeps
    /// every drain away until `f` returns, so that events `f` causes are queued rather than
    /// delivered under it. The caller drains afterwards.
    ///
    /// Returns `None`, without running `f`, when called from inside a delivery on this
    /// thread: waiting for itself would never end.
    pub fn hold<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let me = thread::current().id();
        {
            let mut inner = self.lock();
            loop {
                match inner.deliverer {
                    None => break,
                    Some(thread) if thread == me => return None,
                    Some(_) => {
                        inner.waiting += 1;
                        inner = self
                            .idle
                            .wait(inner)
                            .unwrap_or_else(PoisonError::into_inner);
                        inner.waiting -= 1;
                    }
                }
            }
            inner.deliverer = Some(me);
        }
        let _guard = Delivering(self);
        Some(f())
    }

    /// Gives up the deliverer's place, waking the threads waiting for it.
    fn give_up(&self, inner: &mut Inner<E>) {
        inner.deliverer = None;
        if inner.waiting > 0 {
            self.idle.notify_all();
        }
    }
}

/// The deliverer's place in an [`EventQueue`], taken by
/// [`extend_and_claim`](EventQueue::extend_and_claim); dropped undelivered, it gives the
/// place up and leaves the events to the next drain.
#[must_use = "the events are delivered only by `deliver`"]
pub struct Claimed<'a, E>(Delivering<'a, E>);

impl<E> fmt::Debug for Claimed<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Claimed")
    }
}

impl<E> Claimed<'_, E> {
    /// Delivers every queued event to `deliver`, in order, including those queued while it
    /// runs (by `deliver` itself or another thread), then gives the place up.
    pub fn deliver(self, mut deliver: impl FnMut(E)) {
        let queue = self.0 .0;
        loop {
            let next = {
                let mut inner = queue.lock();
                let next = inner.items.pop_front();
                if next.is_none() {
                    queue.give_up(&mut inner);
                }
                next
            };
            match next {
                Some(event) => deliver(event),
                None => break,
            }
        }
        // Given up above, under the lock that found the queue empty.
        std::mem::forget(self);
    }
}

/// Gives up the deliverer's place when dropped (also when a handler panics), so that a later
/// drain can go on.
struct Delivering<'a, E>(&'a EventQueue<E>);

impl<E> Drop for Delivering<'_, E> {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        self.0.give_up(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    #[test]
    fn a_panicking_handler_leaves_the_rest_for_the_next_drain() {
        let queue = EventQueue::new();
        queue.extend([1, 2, 3]);
        let result = catch_unwind(AssertUnwindSafe(|| {
            queue.drain(|n| assert_ne!(n, 2, "boom"));
        }));
        assert!(result.is_err());
        let mut rest = Vec::new();
        assert!(queue.drain(|n| rest.push(n)));
        assert_eq!(rest, [3]);
    }

    #[test]
    fn events_pushed_while_held_wait_for_the_next_drain() {
        let queue = EventQueue::new();
        let held = queue.hold(|| {
            queue.push(1);
            assert!(!queue.drain(|_| panic!("a drain under a hold delivers nothing")));
            "done"
        });
        assert_eq!(held, Some("done"));
        let mut seen = Vec::new();
        assert!(queue.drain(|n| seen.push(n)));
        assert_eq!(seen, [1]);
    }

    #[test]
    fn a_hold_from_inside_a_delivery_is_refused_not_a_deadlock() {
        let queue = EventQueue::new();
        queue.push(1);
        let mut inner = None;
        queue.drain(|_| inner = Some(queue.hold(|| ())));
        assert_eq!(inner, Some(None));
    }

    #[test]
    fn a_hold_waits_for_another_threads_delivery_to_finish() {
        let queue = std::sync::Arc::new(EventQueue::new());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        queue.push(1);
        let deliverer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                queue.drain(|_| {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                });
            })
        };
        started_rx.recv().unwrap();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                queue.hold(|| order.lock().unwrap().push("held"));
            });
            order.lock().unwrap().push("delivering");
            finish_tx.send(()).unwrap();
        });
        deliverer.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["delivering", "held"]);
    }

    #[test]
    fn retain_drops_queued_events() {
        let queue = EventQueue::new();
        queue.extend([1, 2, 3, 4]);
        queue.retain(|n| n % 2 == 0);
        let mut seen = Vec::new();
        queue.drain(|n| seen.push(n));
        assert_eq!(seen, [2, 4]);
    }

    #[test]
    fn events_pushed_from_other_threads_are_all_delivered_once() {
        let queue = std::sync::Arc::new(EventQueue::new());
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let queue = queue.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        queue.push(t * 100 + i);
                        queue.drain(|n| seen.lock().unwrap().push(n));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, (0..400).collect::<Vec<_>>());
    }
}
