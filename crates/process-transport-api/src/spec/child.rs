//! What a child is given besides its argv and environment: what each fd is connected to,
//! its terminal's size, a hook run before its exec.

use std::sync::{Arc, Mutex};

/// What one child fd is connected to.
///
/// ```
/// use process_transport_api::ChildFdMapping;
///
/// assert!(ChildFdMapping::ParentWrites.is_pipe());
/// assert!(!ChildFdMapping::Inherit(5).is_pipe());
/// assert!(!ChildFdMapping::Null.is_pipe());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildFdMapping {
    /// A pipe the child writes and the parent reads (Twisted's `"r"`).
    ParentReads,
    /// A pipe the parent writes and the child reads (Twisted's `"w"`).
    ParentWrites,
    /// The parent's own fd with this number, inherited by the child as is.
    Inherit(i32),
    /// The null device: reads see end of file at once, writes are accepted and discarded
    /// (`std::process::Stdio::null()`). The real transport opens `/dev/null` for it; the fakes
    /// give the child an fd that is empty to read and swallows what is written. Like an
    /// inherited fd, it is not a pipe: it has no events and the parent cannot write to it.
    Null,
}

impl ChildFdMapping {
    /// `true` for the two pipe kinds, whose ends the transport owns and reports.
    pub fn is_pipe(self) -> bool {
        matches!(
            self,
            ChildFdMapping::ParentReads | ChildFdMapping::ParentWrites
        )
    }
}

/// A hook run in the child between fork and exec, given to [`SpawnSpec::pre_exec`](super::SpawnSpec::pre_exec).
///
/// Clones share the one hook; two specs are equal when they hold the same hooks. A spawner
/// that runs no process (a fake, a replay) only records that the hook was set.
#[derive(Clone)]
pub struct PreExec(pub(super) Arc<Mutex<Hook>>);

pub(super) type Hook = Box<dyn FnMut() -> std::io::Result<()> + Send>;

impl PreExec {
    /// Runs the hook. Meant for the forked child before its exec, where the process is a
    /// single thread: the lock is never held there by anyone else, and is only tried, so a
    /// call from two threads at once fails instead of waiting.
    ///
    /// # Errors
    /// The hook's own error, or `WouldBlock` when another call is running it.
    pub fn run(&self) -> std::io::Result<()> {
        match self.0.try_lock() {
            Ok(mut hook) => hook(),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => (poisoned.into_inner())(),
            Err(std::sync::TryLockError::WouldBlock) => Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the pre_exec hook is running on another thread",
            )),
        }
    }
}

impl PartialEq for PreExec {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PreExec {}

impl std::fmt::Debug for PreExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreExec")
    }
}

/// The size of a pseudo-terminal, in character cells: what `stty size` prints as
/// `rows cols`, and what a child is told by `SIGWINCH` when it changes.
///
/// ```
/// use process_transport_api::PtySize;
///
/// assert_eq!(PtySize::default(), PtySize::new(24, 80));
/// assert_eq!(PtySize::new(40, 120).to_string(), "40x120");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PtySize {
    /// Lines.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl PtySize {
    /// A size of `rows` lines by `cols` columns.
    pub const fn new(rows: u16, cols: u16) -> Self {
        PtySize { rows, cols }
    }
}

/// 24 lines by 80 columns, the size of a classic terminal.
impl Default for PtySize {
    fn default() -> Self {
        PtySize::new(24, 80)
    }
}

impl std::fmt::Display for PtySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}
