//! Real OS child processes on tokio, behind the process-transport traits.
//!
//! [`RealSpawner`] starts a process from a [`SpawnSpec`](process_transport_api::SpawnSpec)
//! (executable, arguments, environment, working directory, uid/gid, and a child fd map with
//! any number of pipes in either direction and inherited parent fds) and returns a
//! [`RealProcessTransport`]. The protocol gets the same events, in the same order, with the
//! same errors as from the recording fakes: both follow the api crate's `ProcessModel`. Code
//! tested on `MemoryProcessReactor` runs unchanged here.
//!
//! ```
//! use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec};
//! use process_transport_real::RealSpawner;
//! use std::sync::{Arc, Mutex};
//!
//! struct Collect(Arc<Mutex<Vec<u8>>>);
//! impl ProcessProtocol for Collect {
//!     fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
//!         transport.write(b"hello through cat\n").unwrap();
//!         transport.close_stdin();
//!     }
//!     fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
//!         if fd == ChildFd::STDOUT {
//!             self.0.lock().unwrap().extend_from_slice(data);
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let out = Arc::new(Mutex::new(Vec::new()));
//! let spawner = RealSpawner::new();
//! let transport = spawner
//!     .spawn_process(Box::new(Collect(out.clone())), SpawnSpec::new("cat"))
//!     .await
//!     .unwrap();
//! assert_eq!(transport.ended().await, ProcessEnd::Done);
//! assert_eq!(*out.lock().unwrap(), b"hello through cat\n");
//! # });
//! ```
//!
//! The child starts with default signal dispositions and an empty signal mask, and sees only
//! the fds of its map, even where the parent opened fds without close-on-exec. Writes never
//! raise `SIGPIPE` in the parent (Rust programs ignore it); a child that exits without reading
//! gives `child_connection_lost(0)`.

#![doc(test(attr(deny(warnings))))]

mod buffers;
mod pump;
mod shared;
mod spawner;
mod sys;
mod transport;

pub use spawner::RealSpawner;
pub use transport::RealProcessTransport;
