//! [`FailureSink`]: what a test double found wrong off the test's thread, kept to be raised
//! on it.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::{self, ThreadId};

/// The failures a test double found wherever it was called (a mismatch, an unmet
/// expectation, a misuse), kept for the thread that made the double: the test's. A panic on
/// a task the test never joins, or in a drop during a runtime's shutdown, is only printed;
/// a double that keeps it here raises it again where the test will see it (an assertion, a
/// `finish`, or its own drop on the test's thread). For implementers of doubles; a test
/// never needs it.
///
/// ```
/// use process_transport_api::implement::FailureSink;
///
/// let sink = FailureSink::new();
/// std::thread::scope(|scope| {
///     scope.spawn(|| sink.keep("stdin differs at offset 3"));
/// });
/// let raised = std::panic::catch_unwind(|| sink.raise_on_home_thread("ReplaySpawner"));
/// assert!(raised.is_err(), "raised on the thread that made it");
/// assert!(sink.to_raise().is_empty(), "and only once");
/// ```
#[derive(Debug)]
pub struct FailureSink {
    messages: Mutex<Vec<String>>,
    raised: AtomicBool,
    home: ThreadId,
}

impl Default for FailureSink {
    fn default() -> Self {
        Self::new()
    }
}

impl FailureSink {
    /// An empty sink whose home is the current thread.
    pub fn new() -> Self {
        FailureSink {
            messages: Mutex::default(),
            raised: AtomicBool::new(false),
            home: thread::current().id(),
        }
    }

    /// Keeps `message`.
    pub fn keep(&self, message: impl Into<String>) {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.into());
    }

    /// Keeps the message of a caught panic.
    pub fn keep_panic(&self, panic: &(dyn Any + Send)) {
        self.keep(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_else(|| "a test double panicked".to_owned()),
        );
    }

    /// Whether the current thread is the one that made the sink.
    pub fn on_home_thread(&self) -> bool {
        thread::current().id() == self.home
    }

    /// Every message kept, acknowledged: none is raised after this.
    pub fn take(&self) -> Vec<String> {
        self.raised.store(true, Ordering::SeqCst);
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The messages not raised yet, now marked raised; empty when none were kept or they
    /// were raised (or taken) before.
    pub fn to_raise(&self) -> Vec<String> {
        if self.raised.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        if messages.is_empty() || self.raised.swap(true, Ordering::SeqCst) {
            return Vec::new();
        }
        messages.clone()
    }

    /// Panics with the messages not raised yet, naming `double`, when called on the home
    /// thread while it is not already panicking: for a double's `Drop`.
    ///
    /// # Panics
    /// As described.
    pub fn raise_on_home_thread(&self, double: &str) {
        if thread::panicking() || !self.on_home_thread() {
            return;
        }
        let failures = self.to_raise();
        assert!(
            failures.is_empty(),
            "{double} failed where the test did not see it: {}",
            failures.join("; ")
        );
    }
}
