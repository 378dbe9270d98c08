//! Child file descriptor numbers.

use std::fmt;

/// A file descriptor number as the child process sees it.
///
/// `ChildFd(0)` is the child's standard input, `ChildFd(1)` its standard output and
/// `ChildFd(2)` its standard error; any other number is an extra pipe or an inherited fd
/// named in the [`SpawnSpec`](crate::SpawnSpec)'s fd map.
///
/// ```
/// use process_transport_api::ChildFd;
///
/// assert_eq!(ChildFd::STDERR, ChildFd(2));
/// assert!(ChildFd::STDIN < ChildFd::STDOUT);
/// assert_eq!(ChildFd(7).to_string(), "7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChildFd(pub u32);

impl ChildFd {
    /// The child's standard input, fd 0.
    pub const STDIN: ChildFd = ChildFd(0);
    /// The child's standard output, fd 1.
    pub const STDOUT: ChildFd = ChildFd(1);
    /// The child's standard error, fd 2.
    pub const STDERR: ChildFd = ChildFd(2);
}

impl fmt::Display for ChildFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for ChildFd {
    fn from(fd: u32) -> Self {
        ChildFd(fd)
    }
}
