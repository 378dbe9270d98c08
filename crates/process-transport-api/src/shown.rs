//! What a protocol has been shown so far: the record that lets the model tell a change the
//! protocol knows of from one still queued.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::{
    implement::{Delivery, FdSet},
    ChildFd,
};

/// Filled in by the [`Dispatcher`](crate::implement::Dispatcher) as it delivers, read by the
/// [`ProcessModel`](crate::implement::ProcessModel) as it checks a call. The usual fds (below 64) and the
/// exit are atomics, so that noting a delivery takes no lock.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    /// Bit `n`: the loss of fd `n` was shown.
    low_losses: AtomicU64,
    /// The shown losses of fds from 64 up.
    high_losses: Mutex<FdSet>,
    exited: AtomicBool,
}

impl Shown {
    /// Notes `delivery` as shown; called just before it is made.
    pub(crate) fn note(&self, delivery: &Delivery) {
        match delivery {
            Delivery::ChildConnectionLost(fd) => match FdSet::bit(*fd) {
                Some(bit) => {
                    self.low_losses.fetch_or(bit, Ordering::Release);
                }
                None => {
                    self.high_losses
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(*fd);
                }
            },
            Delivery::ProcessExited(_) => self.exited.store(true, Ordering::Release),
            _ => {}
        }
    }

    /// `true` once `child_connection_lost(fd)` was delivered (or is being delivered).
    pub(crate) fn loss(&self, fd: ChildFd) -> bool {
        match FdSet::bit(fd) {
            Some(bit) => self.low_losses.load(Ordering::Acquire) & bit != 0,
            None => self
                .high_losses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(fd),
        }
    }

    /// `true` once `process_exited` was delivered (or is being delivered).
    pub(crate) fn exit(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }
}
