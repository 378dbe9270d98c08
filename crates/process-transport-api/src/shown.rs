//! What a protocol has been shown so far: the record that lets the model tell a change the
//! protocol knows of from one still queued.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{ChildFd, Delivery, FdSet};

/// Filled in by the [`Dispatcher`](crate::Dispatcher) as it delivers, read by the
/// [`ProcessModel`](crate::ProcessModel) as it checks a call.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    inner: Mutex<ShownInner>,
}

#[derive(Debug, Default)]
struct ShownInner {
    losses: FdSet,
    exited: bool,
}

impl Shown {
    fn lock(&self) -> MutexGuard<'_, ShownInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes `delivery` as shown; called just before it is made.
    pub(crate) fn note(&self, delivery: &Delivery) {
        match delivery {
            Delivery::ChildConnectionLost(fd) => {
                self.lock().losses.insert(*fd);
            }
            Delivery::ProcessExited(_) => self.lock().exited = true,
            _ => {}
        }
    }

    /// `true` once `child_connection_lost(fd)` was delivered (or is being delivered).
    pub(crate) fn loss(&self, fd: ChildFd) -> bool {
        self.lock().losses.contains(fd)
    }

    /// `true` once `process_exited` was delivered (or is being delivered).
    pub(crate) fn exit(&self) -> bool {
        self.lock().exited
    }
}
