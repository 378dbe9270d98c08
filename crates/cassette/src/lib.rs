//! Record what real processes did, once, and replay it in tests as a fake.
//!
//! [`RecordingSpawner`] wraps any spawner (usually a `RealSpawner`) and records everything
//! that crosses each transport; [`Cassette`] is the file (stable JSON, bytes as text where
//! they are UTF-8, base64 otherwise); [`ReplaySpawner`] serves spawns from it as fakes that
//! follow the same rule book as the real transport, delivering the child's output as it was
//! interleaved with the protocol's input.
//!
//! ```
//! use process_transport_cassette::{RecordingSpawner, ReplaySpawner};
//! use process_transport_command::Command;
//! use process_transport_real::RealSpawner;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Record once, on real processes.
//! let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
//! let real = Command::new("sh").args(["-c", "echo recorded; exit 3"]).spawner(Arc::new(recorder.clone())).output().await.unwrap();
//!
//! // Replay: no process starts, and the output is the same.
//! let replay = ReplaySpawner::new(recorder.cassette());
//! let replayed = Command::new("sh").args(["-c", "echo recorded; exit 3"]).spawner(Arc::new(replay)).output().await.unwrap();
//! assert_eq!(replayed, real);
//! assert_eq!(replayed.stdout, b"recorded\n");
//! # });
//! ```
//!
//! For real programs:
//!
//! - **Values that change between runs** (a temporary directory, a pid in a request): a
//!   pattern with a placeholder ([`Redactions::pattern`], [`SessionBuilder::pattern`]). The
//!   cassette stores the placeholder and the pattern ([`Cassette::placeholders`]); a replay
//!   binds the placeholder to the live value in its place and delivers the bound value in the
//!   output. [`Redactions::framed_by_content_length`] keeps `Content-Length` headers true.
//! - **Match rules** per cassette ([`MatchRules`]): exact by default; lenient stdin, the cwd
//!   ignored, arguments by a pattern or a predicate; env values or their digests
//!   ([`RecordingSpawner::keep_env_digests`]).
//! - **Is the fixture still true?** [`Verifier`] runs every recording again on real
//!   processes and reports a diff per spawn; a [`Session`] does so at `finish` under
//!   `PROCESS_CASSETTE=verify`, and `process-cassette verify FILE [--update]` from a shell.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod cassette;
mod framing;
mod play;
mod recorder;
mod redact;
mod replay;
mod rules;
mod session;
#[cfg(feature = "cli")]
mod shim;
mod shims;
mod verify;
mod volatile;

pub use cassette::{
    Bytes, Cassette, CassetteError, Event, FdKind, Recording, Refusal, SaveTarget, TerminalSize,
    FORMAT_VERSION,
};
pub use framing::Framing;
pub use recorder::RecordingSpawner;
pub use redact::Redactions;
pub use replay::ReplaySpawner;
pub use rules::MatchRules;
pub use session::{Mode, Session, SessionBuilder, MODE_VARIABLE};
#[cfg(feature = "cli")]
pub use shim::{run_shim, ShimEnd};
pub use shims::{Shims, ShimsBuilder, BINARY_VARIABLE, SHIM_VARIABLE};
pub use verify::{SpawnVerdict, Verification, Verifier};
pub use volatile::{PatternError, Placeholder};
