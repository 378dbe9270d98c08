//! How a child process ended.

use std::fmt;

/// How a child process ended, as given to
/// [`ProcessProtocol::process_exited`](crate::ProcessProtocol::process_exited) and
/// [`process_ended`](crate::ProcessProtocol::process_ended).
///
/// `Done` is Twisted's `ProcessDone` (exit code 0, no signal); `Terminated` is its
/// `ProcessTerminated`, with the exit code for a non-zero exit or the signal that killed it.
///
/// ```
/// use process_transport_api::ProcessEnd;
///
/// let end = ProcessEnd::from_exit_code(3);
/// assert_eq!(end, ProcessEnd::Terminated { exit_code: Some(3), signal: None });
/// assert!(!end.success());
/// assert_eq!(end.exit_code(), Some(3));
/// assert_eq!(ProcessEnd::from_exit_code(0), ProcessEnd::Done);
/// assert_eq!(ProcessEnd::from_signal(9).signal(), Some(9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessEnd {
    /// The child exited with code 0.
    Done,
    /// The child exited with a non-zero code, or was killed by a signal.
    Terminated {
        /// The exit code, when the child exited by itself.
        exit_code: Option<i32>,
        /// The signal number, when a signal killed the child.
        signal: Option<i32>,
    },
}

impl ProcessEnd {
    /// The end of a child that exited with `code`: `Done` for 0, `Terminated` otherwise.
    pub fn from_exit_code(code: i32) -> Self {
        if code == 0 {
            ProcessEnd::Done
        } else {
            ProcessEnd::Terminated {
                exit_code: Some(code),
                signal: None,
            }
        }
    }

    /// The end of a child killed by signal number `signal`.
    pub fn from_signal(signal: i32) -> Self {
        ProcessEnd::Terminated {
            exit_code: None,
            signal: Some(signal),
        }
    }

    /// Decodes a raw POSIX wait status, as `waitpid` fills it in.
    ///
    /// A stopped or continued status is not an end; it decodes as the exit code it carries
    /// in its high byte, which callers avoid by only decoding statuses of ended children.
    ///
    /// ```
    /// use process_transport_api::ProcessEnd;
    ///
    /// assert_eq!(ProcessEnd::from_wait_status(0), ProcessEnd::Done);
    /// assert_eq!(ProcessEnd::from_wait_status(2 << 8).exit_code(), Some(2));
    /// assert_eq!(ProcessEnd::from_wait_status(15).signal(), Some(15));
    /// // Killed by SIGSEGV with a core dump (0x80 set).
    /// assert_eq!(ProcessEnd::from_wait_status(0x80 | 11).signal(), Some(11));
    /// ```
    pub fn from_wait_status(status: i32) -> Self {
        let term_signal = status & 0x7f;
        if term_signal == 0 {
            ProcessEnd::from_exit_code((status >> 8) & 0xff)
        } else {
            ProcessEnd::from_signal(term_signal)
        }
    }

    /// `true` for `Done`.
    pub fn success(&self) -> bool {
        matches!(self, ProcessEnd::Done)
    }

    /// The exit code: `Some(0)` for `Done`, `None` for a child killed by a signal.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ProcessEnd::Done => Some(0),
            ProcessEnd::Terminated { exit_code, .. } => *exit_code,
        }
    }

    /// The number of the signal that killed the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            ProcessEnd::Done => None,
            ProcessEnd::Terminated { signal, .. } => *signal,
        }
    }
}

impl fmt::Display for ProcessEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessEnd::Done => f.write_str("exited with code 0"),
            ProcessEnd::Terminated {
                signal: Some(signal),
                ..
            } => write!(f, "killed by signal {signal}"),
            ProcessEnd::Terminated {
                exit_code: Some(code),
                ..
            } => write!(f, "exited with code {code}"),
            ProcessEnd::Terminated { .. } => f.write_str("terminated"),
        }
    }
}
