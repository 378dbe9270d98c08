//! Delivering a process's events to its protocol, in order and never re-entered.

use std::any::Any;
use std::fmt;
use std::future::poll_fn;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use crate::shown::Shown;
use crate::{
    implement::{Delivery, EventQueue, ProducerCall},
    ProcessEnd, ProcessProtocol, PushProducer,
};

/// Something that sees every [`Delivery`] just before it is made, for call logs.
pub type DeliveryObserver = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// What a driver does when a protocol or producer callback panics: end the child (kill it,
/// close its pipes) so that `process_ended` still comes. Called once, outside the driver's
/// lock, from the thread that delivered.
pub type PanicHandler = Arc<dyn Fn() + Send + Sync>;

/// Owns a process's protocol and delivers [`Delivery`]s to it and to the registered producer,
/// one at a time, outside every lock but its own (see [`EventQueue`]).
///
/// Drivers queue deliveries with [`act`](Self::act), which runs a step of their state machine
/// under their own lock, queues what the step produced before the lock is released (so that
/// two threads cannot swap the order of events), then delivers.
///
/// ```
/// use process_transport_api::implement::{Delivery, Dispatcher};
/// use process_transport_api::{ChildFd, ProcessProtocol, ProcessTransport};
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
///
/// # When a callback panics
///
/// A panic in a protocol (or producer) callback is caught: the protocol is dropped and hears
/// nothing more, the driver's [`PanicHandler`] ends the child, and
/// [`ended`](Self::ended) panics with the callback's name and message once the end is in.
/// A dispatcher built [`raising_panics`](Self::raising_panics) (the fakes, which deliver on
/// the test's own thread) also raises the panic again on the thread that delivered, once the
/// events caused meanwhile are delivered.
pub struct Dispatcher {
    queue: EventQueue<Delivery>,
    protocol: Mutex<Option<Box<dyn ProcessProtocol>>>,
    end: Mutex<EndState>,
    observer: Option<DeliveryObserver>,
    shown: Arc<Shown>,
    on_panic: Mutex<Option<PanicHandler>>,
    panic: Mutex<PanicState>,
    /// Set once a callback panicked: until then a drain need not look at `panic`.
    any_panic: AtomicBool,
    release_at_end: bool,
    raise_panics: bool,
    recycle_data: Option<fn(Vec<u8>)>,
}

#[derive(Default)]
struct PanicState {
    /// What panicked and its message, for `ended`.
    message: Option<String>,
    /// The payload, until it is raised again on the delivering thread.
    payload: Option<Box<dyn Any + Send>>,
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

thread_local! {
    /// The buffer [`Dispatcher::act`] hands its steps, reused from step to step.
    static SPARE_OUT: std::cell::Cell<Vec<Delivery>> = const { std::cell::Cell::new(Vec::new()) };
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
            observer: None,
            shown: Arc::default(),
            on_panic: Mutex::new(None),
            panic: Mutex::new(PanicState::default()),
            any_panic: AtomicBool::new(false),
            release_at_end: false,
            raise_panics: false,
            recycle_data: None,
        }
    }

    /// A dispatcher that, after catching a callback's panic and ending the child, raises the
    /// panic again on the thread that delivered: for drivers that deliver on the caller's
    /// thread, so the panic reaches the test's call that caused it.
    pub fn raising_panics(protocol: Option<Box<dyn ProcessProtocol>>) -> Self {
        Dispatcher {
            raise_panics: true,
            ..Dispatcher::new(protocol)
        }
    }

    /// Sets what happens to the child when a callback panics (see [`PanicHandler`]).
    pub fn set_panic_handler(&self, handler: Option<PanicHandler>) {
        *lock(&self.on_panic) = handler;
    }

    /// What panicked, once a callback did: the callback's name and the panic's message.
    pub fn panicked(&self) -> Option<String> {
        lock(&self.panic).message.clone()
    }

    pub(crate) fn shown(&self) -> Arc<Shown> {
        self.shown.clone()
    }

    /// Drops the calls still queued for `producer`: once unregistered, a producer hears
    /// nothing more. Call it under the driver's lock, with the unregistration.
    pub fn forget_producer(&self, producer: &Arc<dyn PushProducer>) {
        self.queue.retain(|delivery| match delivery {
            Delivery::Producer(queued, _) => {
                !std::ptr::addr_eq(Arc::as_ptr(queued), Arc::as_ptr(producer))
            }
            _ => true,
        });
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

    /// Hands the bytes of each `child_data_received` to `recycle` once the protocol has seen
    /// them, instead of freeing them: for drivers that read into buffers they keep for reuse.
    ///
    /// ```
    /// use process_transport_api::implement::{Delivery, Dispatcher};
    /// use process_transport_api::ChildFd;
    /// use std::sync::Mutex;
    ///
    /// static BACK: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    /// let dispatcher = Dispatcher::new(None).recycling_data(|data| BACK.lock().unwrap().push(data));
    /// dispatcher.act(&Mutex::new(()), |_, out| out.push(Delivery::ChildData(ChildFd(1), b"hi".to_vec())));
    /// assert_eq!(*BACK.lock().unwrap(), [b"hi".to_vec()]);
    /// ```
    pub fn recycling_data(mut self, recycle: fn(Vec<u8>)) -> Self {
        self.recycle_data = Some(recycle);
        self
    }

    /// Lets `observer` see every delivery just before it is made.
    pub fn observed_by(mut self, observer: DeliveryObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs `step` on the driver's `state` under its lock, queues the deliveries it appended
    /// while the lock is still held, releases the lock and delivers. Returns what `step`
    /// returned.
    pub fn act<S, R>(
        &self,
        state: &Mutex<S>,
        step: impl FnOnce(&mut S, &mut Vec<Delivery>) -> R,
    ) -> R {
        // The buffer is the thread's own, kept between steps: a step that produces
        // deliveries allocates nothing for them. A step that acts again (on another
        // transport) takes a fresh one, as does a step run while the thread's locals are
        // destroyed (a runtime kept in one drops its tasks then).
        let mut out = SPARE_OUT
            .try_with(std::cell::Cell::take)
            .unwrap_or_default();
        let (result, claimed) = {
            let mut state = lock(state);
            let result = step(&mut state, &mut out);
            // A step that produced nothing leaves the queue alone: whatever is queued has a
            // deliverer (or the holder, who delivers after), as every push is followed by a
            // drain.
            let claimed = if out.is_empty() {
                None
            } else {
                self.queue.extend_and_claim(out.drain(..))
            };
            (result, claimed)
        };
        // Gone with the thread's locals: the buffer is freed instead.
        let _ = SPARE_OUT.try_with(|spare| spare.set(out));
        if let Some(claimed) = claimed {
            claimed.deliver(|delivery| self.deliver(delivery));
            self.raise_caught_panic();
        }
        result
    }

    /// Delivers what is queued, unless a delivery is already running.
    ///
    /// # Panics
    /// On a dispatcher [`raising_panics`](Self::raising_panics), with the panic of a callback
    /// this call delivered.
    pub fn deliver_queued(&self) {
        if self.queue.drain(|delivery| self.deliver(delivery)) {
            self.raise_caught_panic();
        }
    }

    /// After this thread delivered: raises again the panic a callback raised meanwhile, on a
    /// dispatcher [`raising_panics`](Self::raising_panics).
    fn raise_caught_panic(&self) {
        if !self.any_panic.load(Ordering::Acquire) {
            return;
        }
        let payload = lock(&self.panic).payload.take();
        if let (Some(payload), true) = (payload, self.raise_panics) {
            resume_unwind(payload);
        }
    }

    fn deliver(&self, delivery: Delivery) {
        if let Some(observer) = &self.observer {
            observer(&delivery);
        }
        self.shown.note(&delivery);
        let (callback, outcome) = match delivery {
            Delivery::Producer(producer, call) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| match call {
                    ProducerCall::Pause => producer.pause_producing(),
                    ProducerCall::Resume => producer.resume_producing(),
                    ProducerCall::Stop => producer.stop_producing(),
                }));
                let callback = match call {
                    ProducerCall::Pause => "pause_producing",
                    ProducerCall::Resume => "resume_producing",
                    ProducerCall::Stop => "stop_producing",
                };
                (callback, outcome)
            }
            Delivery::ProcessEnded(end) => {
                let outcome = self.call_protocol(|protocol| protocol.process_ended(end));
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
                ("process_ended", outcome)
            }
            Delivery::MakeConnection(transport) => (
                "make_connection",
                self.call_protocol(|protocol| protocol.make_connection(transport)),
            ),
            Delivery::ChildData(fd, data) => {
                let outcome =
                    self.call_protocol(|protocol| protocol.child_data_received(fd, &data));
                if let Some(recycle) = self.recycle_data {
                    recycle(data);
                }
                ("child_data_received", outcome)
            }
            Delivery::ChildConnectionLost(fd) => (
                "child_connection_lost",
                self.call_protocol(|protocol| protocol.child_connection_lost(fd)),
            ),
            Delivery::ProcessExited(end) => (
                "process_exited",
                self.call_protocol(|protocol| protocol.process_exited(end)),
            ),
        };
        if let Err(payload) = outcome {
            self.callback_panicked(callback, payload);
        }
    }

    fn call_protocol(
        &self,
        f: impl FnOnce(&mut dyn ProcessProtocol),
    ) -> Result<(), Box<dyn Any + Send>> {
        let mut protocol = lock(&self.protocol);
        match protocol.as_mut() {
            Some(protocol) => catch_unwind(AssertUnwindSafe(|| f(protocol.as_mut()))),
            None => Ok(()),
        }
    }

    /// The protocol is dropped (it may be in any state now), the driver ends the child, and
    /// the panic is kept for `ended` and, where asked, raised again after the drain.
    fn callback_panicked(&self, callback: &str, payload: Box<dyn Any + Send>) {
        let text = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-text payload".to_owned());
        {
            let mut panic = lock(&self.panic);
            if panic.message.is_none() {
                panic.message = Some(format!("{callback} panicked: {text}"));
            }
            if panic.payload.is_none() {
                panic.payload = Some(payload);
            }
        }
        self.any_panic.store(true, Ordering::Release);
        // A panic in `Drop` would abort; the protocol is dropped here, outside its lock.
        drop(self.take_protocol());
        let handler = lock(&self.on_panic).clone();
        if let Some(handler) = handler {
            handler();
        }
    }

    /// Runs `f` on the protocol, if there is one, between deliveries: it waits for a delivery
    /// running on another thread to finish, and events that `f` causes (a call on the
    /// transport that closes a pipe, say) are delivered after it returns, never under it.
    ///
    /// # Panics
    /// When called from inside one of this dispatcher's own deliveries (a protocol callback
    /// asking for its own protocol), which could only deadlock.
    pub fn with_protocol<R>(&self, f: impl FnOnce(&mut dyn ProcessProtocol) -> R) -> Option<R> {
        let result = self
            .queue
            .hold(|| {
                let mut protocol = lock(&self.protocol);
                protocol.as_mut().map(|protocol| f(protocol.as_mut()))
            })
            .unwrap_or_else(|| {
                panic!(
                    "with_protocol misuse: called from inside one of the protocol's own \
                     callbacks, where the protocol is already borrowed"
                )
            });
        self.deliver_queued();
        result
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
    ///
    /// # Panics
    /// Once the end is in, when a protocol or producer callback panicked: the message names
    /// the callback and repeats the panic's.
    pub async fn ended(&self) -> ProcessEnd {
        let end = poll_fn(|cx| {
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
        .await;
        if let Some(message) = self.panicked() {
            panic!("the process's protocol failed and its child was ended ({end}): {message}");
        }
        end
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
        let observed = Arc::new(Mutex::new(Vec::new()));
        let log = observed.clone();
        let dispatcher =
            Dispatcher::new(Some(protocol)).observed_by(Arc::new(move |delivery: &Delivery| {
                log.lock().unwrap().push(format!("{delivery:?}"));
            }));
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
