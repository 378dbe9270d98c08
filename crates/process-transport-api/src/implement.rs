//! What only the author of a transport needs: the rule book every transport feeds, and the
//! machinery that delivers its events.
//!
//! Code that drives child processes never names anything here: it is written against the
//! crate root ([`ProcessTransport`](crate::ProcessTransport),
//! [`ProcessProtocol`](crate::ProcessProtocol), [`ProcessSpawner`](crate::ProcessSpawner) and
//! the values they pass). This module is for whoever writes a transport or a spawner of their
//! own, as the workspace's fakes, real transport and cassette replays are written:
//!
//! - [`ProcessModel`] is the state machine of the spec's section 4: which writes, closes and
//!   signals are allowed, when the producer is paused, when `process_ended` is due. A driver
//!   tells it what happened and asks it what a call may do; it answers with errors and the
//!   [`Delivery`]s the protocol and the producer must receive. Feeding the same model is what
//!   keeps a new transport from drifting from the others.
//! - [`Dispatcher`] delivers those deliveries one at a time, outside every lock, so that no
//!   callback is re-entered (a call from inside a callback queues its events until the
//!   callback returns). [`EventQueue`] and [`Claimed`] are the queue underneath it.
//! - [`FailureSink`] keeps what went wrong inside a callback (a panic, a misuse) for the test
//!   to see; [`DeliveryObserver`] and [`PanicHandler`] are the hooks a driver gives the
//!   dispatcher.
//! - [`FdMap`] and [`FdSet`] are small maps and sets keyed by child fd, cheap for the usual
//!   three.
//!
//! A transport of one's own proves itself against the others with the contract suite
//! (`process-transport-contract`): the same scenarios run on the fakes and on real processes.
//!
//! A driver closing stdin: the model says what the driver must do, and refuses what the
//! protocol may no longer ask.
//!
//! ```
//! use process_transport_api::implement::{CloseAction, PipeState, ProcessModel};
//! use process_transport_api::{ChildFd, SpawnSpec, TransportError};
//!
//! let mut model = ProcessModel::new(SpawnSpec::new("cat").get_child_fds(), Some(42));
//! let mut due = Vec::new();
//! let action = model.close_child_fd(ChildFd::STDIN, &mut due);
//! assert!(!matches!(action, CloseAction::Nothing));
//! assert_eq!(model.pipe_state(ChildFd::STDIN), Some(PipeState::Closing));
//! assert!(matches!(model.check_write(ChildFd::STDIN), Err(TransportError::ChildFdClosed(ChildFd(0)))));
//! //! ```

pub use crate::dispatch::{DeliveryObserver, Dispatcher, PanicHandler};
pub use crate::failures::FailureSink;
pub use crate::fd::{FdMap, FdSet};
pub use crate::model::{
    CloseAction, Delivery, PipeState, ProcessModel, ProducerCall, DEFAULT_HIGH_WATER,
};
pub use crate::queue::{Claimed, EventQueue};
