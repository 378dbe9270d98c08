//! How a command ended, in the shape of `std::process`: [`ExitStatus`] and [`Output`].

use std::fmt;
#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;

use process_transport_api::ProcessEnd;

/// How a child ended: `std::process::ExitStatus`'s methods over a [`ProcessEnd`].
///
/// `Display` prints what std prints for the same end (`exit status: 3`,
/// `signal: 9 (SIGKILL)`), so log lines and error messages of ported code do not change.
///
/// ```
/// use process_transport_api::ProcessEnd;
/// use process_transport_command::ExitStatus;
///
/// let status = ExitStatus::from(ProcessEnd::from_exit_code(3));
/// assert!(!status.success());
/// assert_eq!(status.code(), Some(3));
/// assert_eq!(status.to_string(), "exit status: 3");
///
/// let killed = ExitStatus::from(ProcessEnd::from_signal(9));
/// assert_eq!((killed.code(), killed.signal()), (None, Some(9)));
/// assert_eq!(killed.to_string(), "signal: 9 (SIGKILL)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitStatus(ProcessEnd);

impl ExitStatus {
    /// `true` when the child exited with code 0.
    pub fn success(&self) -> bool {
        self.0.success()
    }

    /// The exit code, when the child exited by itself; `None` when a signal ended it.
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            ProcessEnd::Done => Some(0),
            ProcessEnd::Terminated { exit_code, .. } => exit_code,
        }
    }

    /// The number of the signal that ended the child, if one did (std's
    /// `ExitStatusExt::signal`).
    pub fn signal(&self) -> Option<i32> {
        self.0.signal()
    }

    /// The end as the transports report it.
    pub fn end(&self) -> ProcessEnd {
        self.0
    }

    /// The raw wait status std would hold, when the end fits one: an exit code of 0 to 255,
    /// or a signal of 1 to 126.
    #[cfg(unix)]
    fn raw(&self) -> Option<i32> {
        match (self.code(), self.signal()) {
            (Some(code), None) if (0..=255).contains(&code) => Some(code << 8),
            (None, Some(signal)) if (1..0x7f).contains(&signal) => Some(signal),
            _ => None,
        }
    }
}

impl From<ProcessEnd> for ExitStatus {
    fn from(end: ProcessEnd) -> Self {
        ExitStatus(end)
    }
}

impl From<ExitStatus> for ProcessEnd {
    fn from(status: ExitStatus) -> Self {
        status.0
    }
}

#[cfg(unix)]
impl From<ExitStatus> for std::process::ExitStatus {
    /// The std status with the same code or signal. An end no wait status can hold (an exit
    /// code above 255 from a fake, or an end with neither code nor signal) becomes the
    /// status of exit code 255 and of signal 127 respectively.
    fn from(status: ExitStatus) -> Self {
        let raw = status.raw().unwrap_or(match status.code() {
            Some(_) => 255 << 8,
            None => 0x7f,
        });
        std::process::ExitStatus::from_raw(raw)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(unix)]
        if let Some(raw) = self.raw() {
            return fmt::Display::fmt(&std::process::ExitStatus::from_raw(raw), f);
        }
        match (self.code(), self.signal()) {
            (Some(code), _) => write!(f, "exit status: {code}"),
            (None, Some(signal)) => write!(f, "signal: {signal}"),
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// What [`Command::output`](crate::Command::output) collects: how the child ended and all it
/// wrote on stdout and stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How the child ended.
    pub status: ExitStatus,
    /// Every byte the child wrote on stdout (empty when stdout was not piped).
    pub stdout: Vec<u8>,
    /// Every byte the child wrote on stderr (empty when stderr was not piped).
    pub stderr: Vec<u8>,
}

#[cfg(unix)]
impl From<Output> for std::process::Output {
    fn from(output: Output) -> Self {
        std::process::Output {
            status: output.status.into(),
            stdout: output.stdout,
            stderr: output.stderr,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn display_matches_std_for_every_exit_code_and_signal_std_can_hold() {
        for code in 0..=255 {
            let ours = ExitStatus::from(ProcessEnd::from_exit_code(code));
            let std = std::process::ExitStatus::from_raw(code << 8);
            assert_eq!(ours.to_string(), std.to_string());
            assert_eq!((ours.code(), ours.success()), (std.code(), std.success()));
        }
        for signal in 1..0x7f {
            let ours = ExitStatus::from(ProcessEnd::from_signal(signal));
            let std = std::process::ExitStatus::from_raw(signal);
            assert_eq!(ours.to_string(), std.to_string());
            assert_eq!(ours.signal(), std.signal());
        }
    }

    #[test]
    fn ends_no_wait_status_holds_still_read_plainly() {
        let big = ExitStatus::from(ProcessEnd::from_exit_code(300));
        assert_eq!(big.to_string(), "exit status: 300");
        assert_eq!(std::process::ExitStatus::from(big).code(), Some(255));
        let unknown = ExitStatus::from(ProcessEnd::Terminated {
            exit_code: None,
            signal: None,
        });
        assert_eq!(unknown.to_string(), "unknown exit status");
        assert!(!unknown.success());
    }
}
