//! Write the code that drives child processes once; run it on real OS processes in
//! production, and in each test on a recording fake, a strict mock, a replayed cassette or an
//! explorer of event orders.
//!
//! One dependency line for the code, one dev-dependency line for its tests:
//!
//! ```toml
//! [dependencies]
//! process-transport = "0.1"
//!
//! [dev-dependencies]
//! process-transport = { version = "0.1", features = ["fakes", "mocks", "cassette", "explore"] }
//! ```
//!
//! The code is written as with `tokio::process` (change the `use` lines) and spawns real
//! processes unless a test puts another spawner in scope:
//!
//! ```
//! use process_transport::Command;
//!
//! /// The code under test.
//! async fn greeting() -> std::io::Result<String> {
//!     let out = Command::new("sh").args(["-c", "echo hello"]).output().await?;
//!     Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! assert_eq!(greeting().await?, "hello");
//! # Ok(()) }
//! ```
#![cfg_attr(
    feature = "fakes",
    doc = r#"
In a test, the same code on a scripted child, with no process started (feature `fakes`):

```
use std::sync::Arc;
use process_transport::fakes::{MemoryProcessReactor, Script};
use process_transport::{with_default, Command};

async fn greeting() -> std::io::Result<String> {
    let out = Command::new("sh").args(["-c", "echo hello"]).output().await?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

# #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
let reactor = MemoryProcessReactor::strict();
reactor.register(["sh", "-c", "echo hello"], Script::new().stdout("hi there\n").exit(0));
assert_eq!(with_default(Arc::new(reactor), greeting()).await?, "hi there");
# Ok(()) }
```
"#
)]
//!
//! # The parts, and their features
//!
//! | feature | module | what it is |
//! |---|---|---|
//! | `command` (default) | the crate root | the `tokio::process`-shaped front door: [`Command`], [`Child`], [`Stdio`], [`blocking`], and the spawner in scope ([`with_default`], [`set_default`]) |
//! | `real` (default) | `real` | real OS processes on tokio; the front door's default spawner |
//! | `fakes` | `fakes` | the recording fakes (`StringTransport`, `MemoryProcessReactor`) and scripted children (`Script`) |
//! | `mocks` | `mocks` | strict mockall doubles of every trait |
//! | `cassette` | `cassette` | record what real programs did, once, and replay it as a fake |
//! | `explore` | `explore` | run a test through every order of events a real child could produce |
//!
//! [`api`] is always there: the object-safe traits (`ProcessTransport`, `ProcessProtocol`,
//! `ProcessSpawner`, ...), the values they pass (`SpawnSpec`, `ProcessEnd`, `Signal`,
//! `ChildFd`) and their errors, for code written against the traits rather than `Command`;
//! `api::implement` holds what only the author of a transport of their own needs.
//!
//! Each part is also its own crate (`process-transport-api`, `-command`, `-real`, `-fakes`,
//! `-mocks`, `-cassette`, `-explore`), for those who want only one; the types are the same,
//! so the two ways mix. `docs/choosing.md` in the repository says which double suits which
//! test.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

/// The traits process code is written against, the values they pass and their errors
/// (the `process-transport-api` crate).
pub mod api {
    pub use process_transport_api::*;
}

#[cfg(feature = "command")]
pub use process_transport_command::*;

/// Real OS processes on tokio (the `process-transport-real` crate).
#[cfg(feature = "real")]
pub mod real {
    pub use process_transport_real::*;
}

/// The recording fakes and scripted children (the `process-transport-fakes` crate).
#[cfg(feature = "fakes")]
pub mod fakes {
    pub use process_transport_fakes::*;
}

/// Strict mockall doubles of every trait (the `process-transport-mocks` crate).
#[cfg(feature = "mocks")]
pub mod mocks {
    pub use process_transport_mocks::*;
}

/// Record what real programs did, once, and replay it as a fake (the
/// `process-transport-cassette` crate).
#[cfg(feature = "cassette")]
pub mod cassette {
    pub use process_transport_cassette::*;
}

/// Run a test through every order of events a real child could produce (the
/// `process-transport-explore` crate).
#[cfg(feature = "explore")]
pub mod explore {
    pub use process_transport_explore::*;
}
