//! Recording fakes of the process-transport traits: Twisted's `StringTransport`,
//! `StringTransportWithDisconnection`, `MemoryProcessTransport` and `MemoryProcessReactor`,
//! carried into Rust and made to follow the same rules as the real transport.
//!
//! A fake records; the test inspects afterwards. Everything runs on the caller's thread: a
//! step the test takes (the child writes, exits) has delivered its events before it returns.
//!
//! Beyond Twisted: a command can be played by a [`Script`] registered on the reactor (output,
//! reactions to stdin and to signals, an exit), output can be delivered in chunks down to one
//! byte ([`MemoryProcessTransport::set_chunk_size`]), a child can be a slow reader
//! ([`Script::holds_stdin`], [`FakeChild::read_at_most`]) so that a producer sees
//! back-pressure, and every transport keeps one ordered [`CallLog`] of calls and events.
//! [`assert_bytes_eq!`] compares recorded bytes and prints a failure as byte-string literals.
//!
//! ```
//! use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport, Signal, SpawnSpec};
//! use process_transport_fakes::MemoryProcessReactor;
//! use std::sync::Arc;
//!
//! /// Asks the child to stop when it prints "ready".
//! #[derive(Default)]
//! struct StopWhenReady {
//!     transport: Option<Arc<dyn ProcessTransport>>,
//!     end: Option<ProcessEnd>,
//! }
//!
//! impl ProcessProtocol for StopWhenReady {
//!     fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
//!         self.transport = Some(transport);
//!     }
//!     fn child_data_received(&mut self, _fd: ChildFd, data: &[u8]) {
//!         if data == b"ready\n" {
//!             self.transport.as_ref().unwrap().signal_process(Signal::Term).unwrap();
//!         }
//!     }
//!     fn process_ended(&mut self, end: ProcessEnd) {
//!         self.end = Some(end);
//!     }
//! }
//!
//! let reactor = MemoryProcessReactor::new();
//! let child = reactor.spawn(Box::new(StopWhenReady::default()), SpawnSpec::new("server")).unwrap();
//! child.write(ChildFd::STDOUT, "ready\n").unwrap();
//! assert_eq!(child.transport().signals(), [Signal::Term]);
//! child.kill(Signal::Term);
//! let end = child.with_protocol(|p: &mut StopWhenReady| p.end);
//! assert_eq!(end, Some(ProcessEnd::from_signal(15)));
//! ```

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod argv;
#[doc(hidden)]
pub mod assert;
mod call_log;
mod child;
mod disconnection;
mod downcast;
mod explore;
mod explored;
mod fake_state;
mod memory_process;
mod reactor;
mod refusal;
mod registration;
mod script;
mod scripted;
mod string_transport;
mod terminal;

pub use call_log::{CallLog, DeliveredEvent, Logged, TransportCall};
pub use child::FakeChild;
pub use disconnection::StringTransportWithDisconnection;
pub use explore::{Activity, Explorer, Head, HeldKind};
pub use memory_process::{MemoryProcessTransport, DEFAULT_PID};
pub use reactor::MemoryProcessReactor;
pub use refusal::{RefusedSpawn, SpawnFailure};
pub use registration::Registration;
pub use script::{Script, SignalAction, SignalReaction};
pub use string_transport::{StringTransport, StringTransportBuilder, DEFAULT_HOST, DEFAULT_PEER};
pub use terminal::{TerminalModes, VEOF, VERASE};
