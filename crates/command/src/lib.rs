//! A `tokio::process`-shaped front door over any process-transport spawner.
//!
//! Code written with `tokio::process::Command` (builder, `output`, `status`, `spawn`, a
//! [`Child`] with `AsyncWrite` stdin and `AsyncRead` stdout and stderr, `wait`, `kill`) is
//! written the same way against [`Command`], and runs on whichever
//! [`ProcessSpawner`](process_transport_api::ProcessSpawner) is in scope: real processes in
//! production, a scripted fake, a strict mock or a replayed cassette in tests. The code under
//! test does not change; the test picks the spawner with [`Command::spawner`],
//! [`set_default`] or [`with_default`].
//!
//! ```
//! use process_transport_command::{with_default, Command};
//! use process_transport_fakes::{MemoryProcessReactor, Script};
//! use std::sync::Arc;
//!
//! /// The code under test: it knows nothing of fakes.
//! async fn branch() -> std::io::Result<String> {
//!     let out = Command::new("git").args(["branch", "--show-current"]).output().await?;
//!     Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! // The test: a scripted git.
//! let reactor = MemoryProcessReactor::strict();
//! reactor.register(["git", "branch", "--show-current"], Script::new().stdout("main\n").exit(0));
//! assert_eq!(with_default(Arc::new(reactor), branch()).await?, "main");
//!
//! // Production: real processes, the default when no spawner is in scope.
//! let out = Command::new("sh").args(["-c", "echo real"]).output().await?;
//! assert_eq!(out.stdout, b"real\n");
//! # Ok(()) }
//! ```
//!
//! # What follows tokio, and what is added
//!
//! - Change the `use` lines for `Command`, `Child` and `Stdio` (tokio code takes `Stdio` from
//!   `std::process`; take it from here), and tokio code compiles and behaves the same:
//!   docs/tokio-parity.md lists every item of `tokio::process` as same, different or missing.
//! - Defaults as tokio's: `spawn` and `status` inherit stdio; `output` inherits stdin and
//!   pipes stdout and stderr. `output` and `status` return std's own [`Output`] and
//!   [`ExitStatus`]. Errors are `std::io::Error` with the spawn's
//!   `SpawnError` inside (`err.get_ref()` downcasts to it) and the kinds `NotFound`,
//!   `PermissionDenied` and `InvalidInput`.
//! - [`Stdio`] from a `File`, an `OwnedFd`, `io::stdout()`/`io::stderr()`, and (with
//!   `try_into`) another child's pipes, for redirections and pipelines, the same on every
//!   spawner: a real child gets the fd, and on a double the command copies the bytes.
//! - Back-pressure both ways: a reader that falls [`READ_BUFFER_LIMIT`] bytes behind pauses
//!   the transport; a write waits while the transport's stdin buffer is over its high-water
//!   mark.
//! - Beyond tokio: [`Child::signal`] for any signal, [`Child::transport`] for the transport
//!   underneath, [`Command::to_spec`] for the spec a spawn uses, [`Command::pty`] and
//!   [`Command::child_fd`] with [`Child::take_output`], and [`blocking::Command`] for
//!   synchronous code.

// `deny`, not `forbid`: `Command::pre_exec` is an `unsafe fn`, as tokio's, and allows it.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub mod blocking;
mod child;
mod command;
mod default;
mod pipes;
mod status;
mod stdio;

pub use child::Child;
pub use command::Command;
pub use default::{
    default_on_runtime, forbid_real_processes, real_processes_forbidden, set_default,
    set_global_default, with_default, DefaultGuard, GlobalDefaultAlreadySet, WithDefault,
    FORBID_REAL_VARIABLE,
};
pub use pipes::{ChildOutput, ChildStderr, ChildStdin, ChildStdout, READ_BUFFER_LIMIT};
pub use status::StatusExt;
/// The types `output()` and `status()` return are std's own, as with `tokio::process`;
/// `ProcessEnd` converts to and from [`ExitStatus`] with `From`, or with [`StatusExt`].
pub use std::process::{ExitStatus, Output};
pub use stdio::Stdio;
