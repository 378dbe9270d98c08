//! Delivering a process's events to its protocol, in order and never re-entered.

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use crate::{Delivery, EventQueue, ProcessEnd, ProcessProtocol, ProducerCall};

/// Something that sees every [`Delivery`] just before it is made, for call logs.
pub type DeliveryObserver = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Owns a process's protocol and delivers [`Delivery`]s to it and to the registered producer,
/// one at a time, outside every lock but its own (see [`EventQueue`]).
///
/// Drivers queue deliveries with [`act`](Self::act), which runs a step of their state machine
/// under their own lock, queues what the step produced before the lock is released (so that
/// two threads cannot swap the order of events), then delivers.
///
/// ```
/// use process_transport_api::{ChildFd, Delivery, Dispatcher, ProcessProtocol, ProcessTransport};
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Default)]
/// struct Seen(Vec<String>);
/// impl ProcessProtocol for Seen {
///     fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
///     fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
///         self.0.push(format!("{fd}: {}", String::from_utf8_lossy(data)));
///     }
/// }
///
/// let dispatcher = Dispatcher::new(Some(Box::new(Seen::default())));
/// let state = Mutex::new(());
/// dispatcher.act(&state, |_, out| out.push(Delivery::ChildData(ChildFd(1), b"hi".to_vec())));
/// let seen = dispatcher.with_protocol(|p| (p as &mut dyn std::any::Any).downcast_mut::<Seen>().unwrap().0.clone());
/// assert_eq!(seen, Some(vec!["1: hi".to_string()]));
/// ```
pub struct Dispatcher {
    queue: EventQueue<Delivery>,
    protocol: Mutex<Option<Box<dyn ProcessProtocol>>>,
    end: Mutex<EndState>,
    observer: Mutex<Option<DeliveryObserver>>,
    release_at_end: bool,
}

#[derive(Default)]
struct EndState {
    end: Option<ProcessEnd>,
    waiters: Vec<Waker>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("queue", &self.queue)
            .field("ended", &self.ended_now())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Dispatcher {
    /// A dispatcher for `protocol`; with `None`, protocol events are dropped (a transport used
    /// on its own) while producer calls and `ended` still work.
    pub fn new(protocol: Option<Box<dyn ProcessProtocol>>) -> Self {
        Dispatcher {
            queue: EventQueue::new(),
            protocol: Mutex::new(protocol),
            end: Mutex::new(EndState::default()),
            observer: Mutex::new(None),
            release_at_end: false,
        }
    }

    /// A dispatcher that drops `protocol` right after delivering `process_ended`, before
    /// `ended` resolves: for drivers that never hand the protocol back. A protocol usually
    /// keeps the transport it was given, and the transport owns the dispatcher; dropping the
    /// protocol at the end breaks that cycle, so a finished process frees its memory.
    pub fn releasing_at_end(protocol: Box<dyn ProcessProtocol>) -> Self {
        Dispatcher {
            release_at_end: true,
            ..Dispatcher::new(Some(protocol))
        }
    }

    /// Sets the observer that sees every delivery before it is made.
    pub fn set_observer(&self, observer: Option<DeliveryObserver>) {
        *lock(&self.observer) = observer;
    }

    /// Runs `step` on the driver's `state` under its lock, queues the deliveries it appended
    /// while the lock is still held, releases the lock and delivers. Returns what `step`
    /// returned.
    pub fn act<S, R>(
        &self,
        state: &Mutex<S>,
        step: impl FnOnce(&mut S, &mut Vec<Delivery>) -> R,
    ) -> R {
        let mut out = Vec::new();
        let result = {
            let mut state = lock(state);
            let result = step(&mut state, &mut out);
            self.queue.extend(out);
            result
        };
        self.deliver_queued();
        result
    }

    /// Delivers what is queued, unless a delivery is already running.
    pub fn deliver_queued(&self) {
        self.queue.drain(|delivery| self.deliver(delivery));
    }

    fn deliver(&self, delivery: Delivery) {
        let observer = lock(&self.observer).clone();
        if let Some(observer) = observer {
            observer(&delivery);
        }
        match delivery {
            Delivery::Producer(producer, call) => match call {
                ProducerCall::Pause => producer.pause_producing(),
                ProducerCall::Resume => producer.resume_producing(),
                ProducerCall::Stop => producer.stop_producing(),
            },
            Delivery::ProcessEnded(end) => {
                self.with_protocol(|protocol| protocol.process_ended(end));
                if self.release_at_end {
                    // Dropped outside the lock: the protocol's `Drop` may call the transport.
                    drop(self.take_protocol());
                }
                let waiters = {
                    let mut state = lock(&self.end);
                    state.end = Some(end);
                    std::mem::take(&mut state.waiters)
                };
                waiters.into_iter().for_each(Waker::wake);
            }
            Delivery::MakeConnection(transport) => {
                self.with_protocol(|protocol| protocol.make_connection(transport));
            }
            Delivery::ChildData(fd, data) => {
                self.with_protocol(|protocol| protocol.child_data_received(fd, &data));
            }
            Delivery::ChildConnectionLost(fd) => {
                self.with_protocol(|protocol| protocol.child_connection_lost(fd));
            }
            Delivery::ProcessExited(end) => {
                self.with_protocol(|protocol| protocol.process_exited(end));
            }
        }
    }

    /// Runs `f` on the protocol, if there is one. Calling it from inside one of the protocol's
    /// own callbacks deadlocks; tests call it between events.
    pub fn with_protocol<R>(&self, f: impl FnOnce(&mut dyn ProcessProtocol) -> R) -> Option<R> {
        let mut protocol = lock(&self.protocol);
        protocol.as_mut().map(|protocol| f(protocol.as_mut()))
    }

    /// Takes the protocol out; later events are dropped.
    pub fn take_protocol(&self) -> Option<Box<dyn ProcessProtocol>> {
        lock(&self.protocol).take()
    }

    /// The end reason, once `process_ended` was delivered.
    pub fn ended_now(&self) -> Option<ProcessEnd> {
        lock(&self.end).end
    }

    /// Resolves with the end reason once `process_ended` was delivered. Needs no runtime.
    pub async fn ended(&self) -> ProcessEnd {
        poll_fn(|cx| {
            let mut state = lock(&self.end);
            match state.end {
                Some(end) => Poll::Ready(end),
                None => {
                    if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        state.waiters.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::{ChildFd, ProcessTransport};

    /// Notes every callback in a shared list and flags its own drop.
    struct Noting {
        seen: Arc<Mutex<Vec<String>>>,
        dropped: Arc<AtomicBool>,
    }

    impl ProcessProtocol for Noting {
        fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
        fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
            self.seen
                .lock()
                .unwrap()
                .push(format!("data {fd} {data:?}"));
        }
        fn process_exited(&mut self, end: ProcessEnd) {
            self.seen.lock().unwrap().push(format!("exited {end}"));
        }
        fn process_ended(&mut self, end: ProcessEnd) {
            self.seen.lock().unwrap().push(format!("ended {end}"));
        }
    }

    impl Drop for Noting {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    fn noting() -> (Box<Noting>, Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicBool::new(false));
        let protocol = Noting {
            seen: seen.clone(),
            dropped: dropped.clone(),
        };
        (Box::new(protocol), seen, dropped)
    }

    fn end_of(dispatcher: &Dispatcher) {
        let state = Mutex::new(());
        dispatcher.act(&state, |_, out| {
            out.push(Delivery::ChildData(ChildFd::STDOUT, b"x".to_vec()));
            out.push(Delivery::ProcessExited(ProcessEnd::Done));
            out.push(Delivery::ProcessEnded(ProcessEnd::Done));
        });
    }

    #[test]
    fn deliveries_reach_the_observer_then_the_protocol_in_order() {
        let (protocol, seen, _) = noting();
        let dispatcher = Dispatcher::new(Some(protocol));
        let observed = Arc::new(Mutex::new(Vec::new()));
        let log = observed.clone();
        dispatcher.set_observer(Some(Arc::new(move |delivery: &Delivery| {
            log.lock().unwrap().push(format!("{delivery:?}"));
        })));
        end_of(&dispatcher);
        assert_eq!(
            *observed.lock().unwrap(),
            [
                "ChildData(ChildFd(1), \"x\")",
                "ProcessExited(Done)",
                "ProcessEnded(Done)"
            ]
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "data 1 [120]",
                "exited exited with code 0",
                "ended exited with code 0"
            ]
        );
        assert_eq!(dispatcher.ended_now(), Some(ProcessEnd::Done));
        assert_eq!(
            futures_executor::block_on(dispatcher.ended()),
            ProcessEnd::Done
        );
    }

    #[test]
    fn a_plain_dispatcher_keeps_its_protocol_after_the_end() {
        let (protocol, _, dropped) = noting();
        let dispatcher = Dispatcher::new(Some(protocol));
        end_of(&dispatcher);
        assert!(!dropped.load(Ordering::SeqCst));
        assert!(dispatcher.take_protocol().is_some());
    }

    #[test]
    fn a_releasing_dispatcher_drops_its_protocol_at_the_end() {
        let (protocol, seen, dropped) = noting();
        let dispatcher = Dispatcher::releasing_at_end(protocol);
        let state = Mutex::new(());
        dispatcher.act(&state, |_, out| {
            out.push(Delivery::ProcessExited(ProcessEnd::Done));
        });
        assert!(!dropped.load(Ordering::SeqCst), "dropped before the end");
        dispatcher.act(&state, |_, out| {
            out.push(Delivery::ProcessEnded(ProcessEnd::Done));
        });
        assert!(dropped.load(Ordering::SeqCst), "kept after the end");
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert!(dispatcher.take_protocol().is_none());
        assert_eq!(dispatcher.ended_now(), Some(ProcessEnd::Done));
    }
}
