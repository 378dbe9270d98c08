//! A queue that delivers events one at a time, never re-entered.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A FIFO of events with at most one deliverer at a time.
///
/// [`drain`](Self::drain) delivers queued events in order. When an event's handler causes
/// more events (a protocol calling its transport from inside a callback), they are pushed and
/// delivered by the running drain after the handler returns, never by a nested call. Another
/// thread that calls `drain` while one is running returns at once and leaves its events to the
/// running one. This is how every transport in the workspace keeps section 5's "no callback
/// is ever re-entered" without deadlocks.
///
/// ```
/// use process_transport_api::EventQueue;
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
}

struct Inner<E> {
    items: VecDeque<E>,
    delivering: bool,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                delivering: false,
            }),
        }
    }
}

impl<E> fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("EventQueue")
            .field("queued", &inner.items.len())
            .field("delivering", &inner.delivering)
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

    /// Delivers every queued event to `deliver`, in order, unless a drain is already running
    /// (on this thread or another), in which case that one delivers them.
    pub fn drain(&self, mut deliver: impl FnMut(E)) {
        {
            let mut inner = self.lock();
            if inner.delivering {
                return;
            }
            inner.delivering = true;
        }
        let guard = Delivering(self);
        loop {
            let next = {
                let mut inner = self.lock();
                let next = inner.items.pop_front();
                if next.is_none() {
                    inner.delivering = false;
                }
                next
            };
            match next {
                Some(event) => deliver(event),
                None => break,
            }
        }
        std::mem::forget(guard);
    }
}

/// Clears the delivering flag if a handler panics, so that a later drain can go on.
struct Delivering<'a, E>(&'a EventQueue<E>);

impl<E> Drop for Delivering<'_, E> {
    fn drop(&mut self) {
        self.0.lock().delivering = false;
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
        queue.drain(|n| rest.push(n));
        assert_eq!(rest, [3]);
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
