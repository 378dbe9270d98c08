//! The errors of transports and spawners.

use std::io;

use thiserror::Error;

use crate::ChildFd;

/// Why a call on a transport failed.
///
/// ```
/// use process_transport_api::{ChildFd, TransportError};
///
/// let err = TransportError::UnknownChildFd(ChildFd(7));
/// assert_eq!(err.to_string(), "child fd 7 is not mapped as a pipe the parent writes");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// `register_producer` while a producer is registered.
    #[error("a producer is already registered; unregister it before registering another")]
    ProducerAlreadyRegistered,
    /// `unregister_producer` with no producer registered.
    #[error("no producer is registered, so there is none to unregister")]
    NoProducerRegistered,
    /// A write to a child fd that is not in the spawn's map as a pipe the parent writes.
    #[error("child fd {0} is not mapped as a pipe the parent writes")]
    UnknownChildFd(ChildFd),
    /// A write to a child fd after it was closed, by the parent or by the child.
    #[error("child fd {0} is closed; the write was not sent")]
    ChildFdClosed(ChildFd),
    /// A write to a (non-process) transport after `lose_connection` or `abort_connection`.
    #[error("the transport is closed; the write was not sent")]
    Closed,
    /// A signal to a process whose exit is already known.
    #[error("the process has already exited; no signal was sent")]
    ProcessExitedAlready,
    /// `signal_process` with a number that is not a signal of the platform
    /// ([`Signal::is_valid`](crate::Signal::is_valid)): nothing was sent.
    #[error("{0} is not a signal: signal numbers run from 1 to {max}; nothing was sent", max = crate::Signal::MAX_NUMBER)]
    InvalidSignal(crate::Signal),
    /// `signal_process` on Windows with a signal other than [`Signal::Kill`](crate::Signal::Kill)
    /// (which is `TerminateProcess`): Windows has no such signal, and nothing was sent.
    ///
    /// ```
    /// use process_transport_api::{Signal, TransportError};
    ///
    /// let err = TransportError::NoSuchSignalOnWindows(Signal::Term);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "Windows has no signal TERM: only Signal::Kill (TerminateProcess) reaches a Windows \
    ///      process; nothing was sent",
    /// );
    /// ```
    #[error("Windows has no signal {0}: only Signal::Kill (TerminateProcess) reaches a Windows process; nothing was sent")]
    NoSuchSignalOnWindows(crate::Signal),
    /// `resize_pty` on a transport whose process has no pseudo-terminal.
    #[error("the process has no terminal to resize: it was spawned without use_pty")]
    NoTerminal,
    /// The operating system refused the call.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Why a spawn failed. Every message names the executable.
///
/// ```
/// use process_transport_api::SpawnError;
///
/// let err = SpawnError::NotFound("no-such-tool".into());
/// assert_eq!(err.to_string(), "cannot spawn \"no-such-tool\": executable not found");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The executable does not exist, or no `PATH` entry holds it. Carries the executable.
    ///
    /// A spawner that serves recordings (a replay) refuses a spawn it holds no recording of
    /// with this variant too; it carries the command line in backticks and why nothing
    /// serves it, and reads as that sentence:
    ///
    /// ```
    /// use process_transport_api::SpawnError;
    ///
    /// let err = SpawnError::NotFound("`git status`: no recording in cassette c.json matches".into());
    /// assert_eq!(err.to_string(), "cannot spawn `git status`: no recording in cassette c.json matches");
    /// ```
    #[error("{}", not_found(.0))]
    NotFound(String),
    /// The executable exists but may not be run, or a uid/gid change was refused. Carries
    /// the executable.
    #[error("cannot spawn {0:?}: permission denied")]
    PermissionDenied(String),
    /// The spec cannot be carried out: a NUL byte in an argument, or an fd map that cannot
    /// be set up. The text names the executable and what is wrong.
    #[error("invalid spawn spec: {0}")]
    InvalidSpec(String),
    /// Any other failure of the operating system; the error's text names the executable.
    #[error("spawn failed: {0}")]
    Io(#[from] io::Error),
    /// A fake spawner knows the executable but no registered command matches this command
    /// line. Carries the command line and the closest registered command, if any.
    #[error("cannot spawn {command:?}: no registered command matches it{}", closest_hint(.closest))]
    Unregistered {
        /// The command line that was asked for.
        command: String,
        /// The registered command closest to it.
        closest: Option<String>,
    },
}

fn not_found(what: &str) -> String {
    if what.starts_with('`') {
        format!("cannot spawn {what}")
    } else {
        format!("cannot spawn {what:?}: executable not found")
    }
}

fn closest_hint(closest: &Option<String>) -> String {
    match closest {
        Some(closest) => format!("; the closest registered command is {closest:?}"),
        None => String::new(),
    }
}

/// A text that is not a [`Signal`](crate::Signal).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0:?} is not a signal name (such as TERM, SIGUSR1 or hup) or a positive decimal number")]
pub struct ParseSignalError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_read_as_sentences_naming_the_fd() {
        let texts = [
            TransportError::ProducerAlreadyRegistered,
            TransportError::NoProducerRegistered,
            TransportError::UnknownChildFd(ChildFd(7)),
            TransportError::ChildFdClosed(ChildFd(0)),
            TransportError::Closed,
            TransportError::ProcessExitedAlready,
            TransportError::from(io::Error::from(io::ErrorKind::BrokenPipe)),
        ]
        .map(|err| err.to_string());
        assert_eq!(
            texts,
            [
                "a producer is already registered; unregister it before registering another",
                "no producer is registered, so there is none to unregister",
                "child fd 7 is not mapped as a pipe the parent writes",
                "child fd 0 is closed; the write was not sent",
                "the transport is closed; the write was not sent",
                "the process has already exited; no signal was sent",
                "I/O error: broken pipe",
            ]
        );
    }

    #[test]
    fn spawn_errors_name_the_executable() {
        assert_eq!(
            SpawnError::NotFound("no-such-tool".into()).to_string(),
            r#"cannot spawn "no-such-tool": executable not found"#
        );
        assert_eq!(
            SpawnError::PermissionDenied("/etc/passwd".into()).to_string(),
            r#"cannot spawn "/etc/passwd": permission denied"#
        );
        assert_eq!(
            SpawnError::Unregistered {
                command: "git stauts".into(),
                closest: Some("git status".into()),
            }
            .to_string(),
            r#"cannot spawn "git stauts": no registered command matches it; the closest registered command is "git status""#
        );
    }
}
