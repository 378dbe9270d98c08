//! [`StatusExt`]: std's `ExitStatus` to and from the transports' [`ProcessEnd`].

use process_transport_api::ProcessEnd;

/// The [`ProcessEnd`] a `std::process::ExitStatus` stands for, and back: what `output()` and
/// `status()` return read as the transports report it. The conversions are the api crate's
/// `From` impls; this trait names them as methods.
///
/// ```
/// use process_transport_api::ProcessEnd;
/// use process_transport_command::{ExitStatus, StatusExt};
///
/// let status = ExitStatus::from_end(ProcessEnd::from_signal(9));
/// assert_eq!(status.end(), ProcessEnd::from_signal(9));
/// assert_eq!(status.to_string(), "signal: 9 (SIGKILL)");
/// ```
pub trait StatusExt: sealed::Sealed {
    /// How the child ended, as the transports report it.
    fn end(&self) -> ProcessEnd;

    /// The status a real child with this end would have; see the api crate's
    /// `From<ProcessEnd> for ExitStatus` for ends no wait status can hold.
    fn from_end(end: ProcessEnd) -> Self;
}

impl StatusExt for std::process::ExitStatus {
    fn end(&self) -> ProcessEnd {
        ProcessEnd::from(*self)
    }

    fn from_end(end: ProcessEnd) -> Self {
        std::process::ExitStatus::from(end)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::ExitStatus {}
}
