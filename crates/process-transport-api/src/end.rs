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
    /// A stopped or continued status (low seven bits all set) is not an end and carries
    /// neither an exit code nor a terminating signal: it decodes as
    /// `Terminated { exit_code: None, signal: None }`, the value for an end that cannot be
    /// read. Callers decode only the statuses of ended children.
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
        match status & 0x7f {
            0 => ProcessEnd::from_exit_code((status >> 8) & 0xff),
            0x7f => ProcessEnd::Terminated {
                exit_code: None,
                signal: None,
            },
            signal => ProcessEnd::from_signal(signal),
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

/// The `std::process::ExitStatus` a real child with this end would have, as `tokio::process`
/// and `std::process` return it.
///
/// On unix the exit code is kept modulo 256, as the operating system keeps the code a child
/// passes to `exit` (a fake's `exit(300)` reads back as 44, as `sh -c 'exit 300'` does); a
/// signal of 1 to 126 is kept as is; an end with neither, or a signal no wait status can hold,
/// becomes a status with neither code nor signal. Off unix a signal end becomes exit code 1,
/// the code `TerminateProcess` gives a killed child.
///
/// ```
/// use process_transport_api::ProcessEnd;
/// use std::process::ExitStatus;
///
/// let status = ExitStatus::from(ProcessEnd::from_exit_code(3));
/// assert_eq!(status.code(), Some(3));
/// assert_eq!(ProcessEnd::from(status), ProcessEnd::from_exit_code(3));
/// # #[cfg(unix)] {
/// use std::os::unix::process::ExitStatusExt;
/// let killed = ExitStatus::from(ProcessEnd::from_signal(9));
/// assert_eq!((killed.code(), killed.signal()), (None, Some(9)));
/// assert_eq!(killed.to_string(), "signal: 9 (SIGKILL)");
/// # }
/// ```
impl From<ProcessEnd> for std::process::ExitStatus {
    fn from(end: ProcessEnd) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            let raw = match (end.exit_code(), end.signal()) {
                (_, Some(signal)) if (1..0x7f).contains(&signal) => signal,
                (Some(code), None) => (code & 0xff) << 8,
                _ => 0x7f,
            };
            std::process::ExitStatus::from_raw(raw)
        }
        #[cfg(windows)]
        {
            use std::os::windows::process::ExitStatusExt;
            // The code's bits as Windows holds them (`ExitProcess` takes a u32).
            std::process::ExitStatus::from_raw(end.exit_code().unwrap_or(1) as u32)
        }
    }
}

/// The end a `std::process::ExitStatus` stands for: its exit code, or the signal that killed
/// the child.
impl From<std::process::ExitStatus> for ProcessEnd {
    fn from(status: std::process::ExitStatus) -> Self {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        match (status.code(), signal) {
            (Some(code), _) => ProcessEnd::from_exit_code(code),
            (None, Some(signal)) => ProcessEnd::from_signal(signal),
            (None, None) => ProcessEnd::Terminated {
                exit_code: None,
                signal: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode_as_waitpid_reports_them() {
        let cases = [
            (0x0000, ProcessEnd::Done),
            (0x0100, ProcessEnd::from_exit_code(1)),
            (0xff00, ProcessEnd::from_exit_code(255)),
            (0x0009, ProcessEnd::from_signal(9)),
            (0x008b, ProcessEnd::from_signal(11)), // SIGSEGV with a core dump
            (
                0x137f, // stopped by SIGSTOP: not an end
                ProcessEnd::Terminated {
                    exit_code: None,
                    signal: None,
                },
            ),
            (
                0xffff, // continued: not an end
                ProcessEnd::Terminated {
                    exit_code: None,
                    signal: None,
                },
            ),
        ];
        for (status, end) in cases {
            assert_eq!(
                ProcessEnd::from_wait_status(status),
                end,
                "status {status:#06x}"
            );
        }
    }

    #[test]
    fn helpers_read_the_end_back() {
        let done = ProcessEnd::Done;
        let failed = ProcessEnd::from_exit_code(3);
        let killed = ProcessEnd::from_signal(15);
        assert_eq!(ProcessEnd::from_exit_code(0), done);
        assert_eq!(
            [done.success(), failed.success(), killed.success()],
            [true, false, false]
        );
        assert_eq!(
            [done.exit_code(), failed.exit_code(), killed.exit_code()],
            [Some(0), Some(3), None]
        );
        assert_eq!(
            [done.signal(), failed.signal(), killed.signal()],
            [None, None, Some(15)]
        );
    }

    #[test]
    fn ends_print_as_sentences() {
        let unknown = ProcessEnd::Terminated {
            exit_code: None,
            signal: None,
        };
        assert_eq!(ProcessEnd::Done.to_string(), "exited with code 0");
        assert_eq!(
            ProcessEnd::from_exit_code(2).to_string(),
            "exited with code 2"
        );
        assert_eq!(ProcessEnd::from_signal(9).to_string(), "killed by signal 9");
        assert_eq!(unknown.to_string(), "terminated");
    }
    #[cfg(unix)]
    #[test]
    fn std_statuses_round_trip_for_every_code_and_signal_a_wait_status_holds() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::ExitStatus;
        for code in 0..=255 {
            let end = ProcessEnd::from_exit_code(code);
            let status = ExitStatus::from(end);
            assert_eq!(status, ExitStatus::from_raw(code << 8));
            assert_eq!(ProcessEnd::from(status), end);
        }
        for signal in 1..0x7f {
            let end = ProcessEnd::from_signal(signal);
            let status = ExitStatus::from(end);
            assert_eq!(status, ExitStatus::from_raw(signal));
            assert_eq!(ProcessEnd::from(status), end);
        }
        // A core dump still reads as the signal.
        assert_eq!(
            ProcessEnd::from(ExitStatus::from_raw(0x80 | 11)),
            ProcessEnd::from_signal(11)
        );
    }

    #[cfg(unix)]
    #[test]
    fn ends_no_wait_status_holds_become_what_the_system_would_report() {
        use std::process::ExitStatus;
        let unknown = ProcessEnd::Terminated {
            exit_code: None,
            signal: None,
        };
        assert_eq!(
            ExitStatus::from(ProcessEnd::from_exit_code(300)).code(),
            Some(44)
        );
        assert_eq!(
            ExitStatus::from(ProcessEnd::from_exit_code(-1)).code(),
            Some(255)
        );
        for end in [
            unknown,
            ProcessEnd::from_signal(200),
            ProcessEnd::from_signal(0),
        ] {
            let status = ExitStatus::from(end);
            assert_eq!(ProcessEnd::from(status), unknown, "{end:?}");
            assert!(!status.success());
        }
    }
}
