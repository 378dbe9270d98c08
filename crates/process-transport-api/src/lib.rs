//! The contract of process transports: object-safe traits, value types, errors, and the one
//! shared model of how a process transport behaves.
//!
//! Code that drives a child process is written against [`ProcessSpawner`],
//! [`ProcessTransport`] and [`ProcessProtocol`]. A test then picks a recording fake
//! (`process-transport-fakes`), a strict mock (`process-transport-mocks`) or real processes
//! (`process-transport-real`); production uses the real one. This crate has no runtime and
//! does no I/O.
//!
//! A protocol that collects a child's output and reports how it ended:
//!
//! ```
//! use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport, SpawnSpec};
//! use std::sync::Arc;
//!
//! #[derive(Default)]
//! struct Collect {
//!     out: Vec<u8>,
//!     end: Option<ProcessEnd>,
//! }
//!
//! impl ProcessProtocol for Collect {
//!     fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
//!         transport.write(b"hello\n").expect("stdin is open");
//!         transport.close_stdin();
//!     }
//!     fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
//!         if fd == ChildFd::STDOUT {
//!             self.out.extend_from_slice(data);
//!         }
//!     }
//!     fn process_ended(&mut self, reason: ProcessEnd) {
//!         self.end = Some(reason);
//!     }
//! }
//!
//! // What to run; any spawner (fake, mock, real) takes the same spec and protocol.
//! let spec = SpawnSpec::new("cat").arg("-u");
//! assert_eq!(spec.command_line(), "cat -u");
//! let protocol: Box<dyn ProcessProtocol> = Box::new(Collect::default());
//! # drop(protocol);
//! ```
//!
//! # Order of events
//!
//! 1. `make_connection` once, first, during `spawn_process`.
//! 2. `child_data_received(fd, data)` for pipes the parent reads; one fd's chunks, joined, are
//!    exactly what the child wrote there.
//! 3. `child_connection_lost(fd)` once per pipe, after that pipe's last data.
//! 4. `process_exited` once, when the exit is known, in any order with the losses.
//! 5. `process_ended` once and last; [`ProcessTransport::ended`] resolves after it.
//!
//! No callback is re-entered: a call on the transport from inside a callback that causes an
//! event queues it until the callback returns.
//!
//! # For implementers
//!
//! Everything above is what code that drives processes writes against. The machinery a
//! transport is built from (the rule book every transport feeds, [`ProcessModel`], and the
//! [`Dispatcher`] that delivers its events without re-entering a callback) is in
//! [`implement`], for those who write a transport or a spawner of their own.
//!
//! [`ProcessModel`]: implement::ProcessModel
//! [`Dispatcher`]: implement::Dispatcher

// `deny`, not `forbid`: `SpawnSpec::pre_exec` is an `unsafe fn`, as std's, and allows it.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod address;
mod dispatch;
mod end;
mod error;
mod failures;
mod fd;
mod forward;
pub mod implement;
mod model;
mod queue;
mod shown;
mod signal;
mod spec;
mod state;
mod traits;

pub use address::Address;
pub use end::ProcessEnd;
pub use error::{ParseSignalError, SpawnError, TransportError};
pub use fd::ChildFd;
pub use signal::{DefaultAction, Signal};
pub use spec::{ChildFdMapping, Environment, PreExec, PtySize, SpawnSpec};
pub use state::{CloseReason, ProducerState};
pub use traits::{
    ProcessProtocol, ProcessSpawner, ProcessTransport, Protocol, PushProducer, Transport,
};
