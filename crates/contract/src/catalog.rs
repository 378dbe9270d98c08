//! The children the contract needs, and the catalog that says how to start each.

use process_transport_api::{ChildFd, ChildFdMapping, SpawnSpec};

/// What `Child::Talk` writes on stdout.
pub const TALK_STDOUT: &str = "out\n";
/// What `Child::Talk` writes on stderr.
pub const TALK_STDERR: &str = "err\n";
/// What `Child::ExtraFd` writes on fd 3.
pub const EXTRA_FD_TEXT: &str = "extra\n";
/// What `Child::IgnoreTerm` and `Child::WaitForSignal` write on stdout once ready.
pub const READY: &str = "ready\n";

/// A child the contract starts. A [`Catalog`] says how to start each on a given spawner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Child {
    /// Copies stdin to stdout as it arrives; exits 0 at end of file (`cat`).
    Echo,
    /// Exits at once with this code.
    Exit(i32),
    /// Writes [`TALK_STDOUT`] on stdout and [`TALK_STDERR`] on stderr, then exits 0.
    Talk,
    /// Kills itself with `TERM`.
    DieBySignal,
    /// Writes [`READY`] once `TERM` is ignored, then copies stdin to stdout like
    /// [`Echo`](Child::Echo); `TERM` does nothing to it.
    IgnoreTerm,
    /// Writes [`EXTRA_FD_TEXT`] on fd 3 (a pipe the parent reads), then exits 0.
    ExtraFd,
    /// Writes [`READY`], then waits, reading nothing, until a signal ends it.
    WaitForSignal,
    /// A program that does not exist.
    Missing,
}

impl Child {
    /// Every child the suite starts, for a catalog that must prepare each (the fakes'
    /// scripted twins).
    pub const ALL: [Child; 9] = [
        Child::Echo,
        Child::Exit(0),
        Child::Exit(3),
        Child::Talk,
        Child::DieBySignal,
        Child::IgnoreTerm,
        Child::ExtraFd,
        Child::WaitForSignal,
        Child::Missing,
    ];
}

/// How to start each [`Child`] on the spawner under test.
pub trait Catalog: Send + Sync {
    /// The spec that starts `child`.
    fn spec(&self, child: Child) -> SpawnSpec;
}

/// The catalog for real processes, with programs every Linux machine has (`sh`, `cat`,
/// `sleep`). The fakes' scripted twins register scripts for these same command lines.
///
/// ```
/// use process_transport_contract::{Catalog, Child, ShellCatalog};
///
/// assert_eq!(ShellCatalog.spec(Child::Echo).command_line(), "cat");
/// assert_eq!(ShellCatalog.spec(Child::Exit(3)).command_line(), "sh -c 'exit 3'");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ShellCatalog;

impl Catalog for ShellCatalog {
    fn spec(&self, child: Child) -> SpawnSpec {
        let sh = |script: &str| SpawnSpec::new("sh").args(["-c", script]);
        match child {
            Child::Echo => SpawnSpec::new("cat"),
            Child::Exit(code) => sh(&format!("exit {code}")),
            Child::Talk => sh("printf 'out\\n'; printf 'err\\n' >&2"),
            Child::DieBySignal => sh("kill -TERM $$"),
            Child::IgnoreTerm => sh("trap '' TERM; printf 'ready\\n'; exec cat"),
            Child::ExtraFd => {
                sh("printf 'extra\\n' >&3").child_fd(ChildFd(3), ChildFdMapping::ParentReads)
            }
            Child::WaitForSignal => sh("printf 'ready\\n'; exec sleep 600"),
            Child::Missing => SpawnSpec::new("no-such-program-for-the-contract"),
        }
    }
}
