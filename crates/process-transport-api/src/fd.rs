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

/// A map from child fds to `T`, for the handful of fds one process has: one short list in fd
/// order, cheaper to build and to search than a tree (drivers keep one per process).
///
/// ```
/// use process_transport_api::implement::FdMap;
/// use process_transport_api::ChildFd;
///
/// let mut written: FdMap<Vec<u8>> = FdMap::new();
/// written.get_or_default(ChildFd(3)).extend_from_slice(b"job");
/// written.get_or_default(ChildFd::STDIN).extend_from_slice(b"hi");
/// assert_eq!(written.get(ChildFd(3)).map(Vec::as_slice), Some(&b"job"[..]));
/// assert_eq!(written.iter().map(|(fd, _)| fd).collect::<Vec<_>>(), [ChildFd(0), ChildFd(3)]);
/// assert!(written.get(ChildFd::STDOUT).is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct FdMap<T>(Vec<(ChildFd, T)>);

impl<T> Default for FdMap<T> {
    fn default() -> Self {
        FdMap(Vec::new())
    }
}

impl<T> FdMap<T> {
    /// An empty map; it allocates nothing until the first insertion.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `fd`.
    pub fn get(&self, fd: ChildFd) -> Option<&T> {
        self.0
            .iter()
            .find(|(at, _)| *at == fd)
            .map(|(_, value)| value)
    }

    /// The value for `fd`, to change.
    pub fn get_mut(&mut self, fd: ChildFd) -> Option<&mut T> {
        self.0
            .iter_mut()
            .find(|(at, _)| *at == fd)
            .map(|(_, value)| value)
    }

    /// Sets the value for `fd`, returning the one it replaces.
    pub fn insert(&mut self, fd: ChildFd, value: T) -> Option<T> {
        match self.0.binary_search_by_key(&fd, |(at, _)| *at) {
            Ok(index) => Some(std::mem::replace(&mut self.0[index].1, value)),
            Err(index) => {
                self.0.insert(index, (fd, value));
                None
            }
        }
    }

    /// The entries in fd order.
    pub fn iter(&self) -> impl Iterator<Item = (ChildFd, &T)> {
        self.0.iter().map(|(fd, value)| (*fd, value))
    }

    /// The values in fd order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, value)| value)
    }

    /// The number of fds in the map.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when no fd is in the map.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Default> FdMap<T> {
    /// The value for `fd`, inserting `T::default()` first if there is none.
    pub fn get_or_default(&mut self, fd: ChildFd) -> &mut T {
        let index = match self.0.binary_search_by_key(&fd, |(at, _)| *at) {
            Ok(index) => index,
            Err(index) => {
                self.0.insert(index, (fd, T::default()));
                index
            }
        };
        &mut self.0[index].1
    }
}

impl<T> FromIterator<(ChildFd, T)> for FdMap<T> {
    fn from_iter<I: IntoIterator<Item = (ChildFd, T)>>(entries: I) -> Self {
        let entries: Vec<(ChildFd, T)> = entries.into_iter().collect();
        // Entries from another map come in fd order, each fd once: kept as they are.
        if entries.is_sorted_by(|a, b| a.0 < b.0) {
            return FdMap(entries);
        }
        let mut map = FdMap::new();
        for (fd, value) in entries {
            map.insert(fd, value);
        }
        map
    }
}

impl<T: fmt::Debug> fmt::Debug for FdMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A set of child fds: fds below 64 are bits in a word, so a set of the usual fds allocates
/// nothing; higher ones are kept in a list.
///
/// ```
/// use process_transport_api::implement::FdSet;
/// use process_transport_api::ChildFd;
///
/// let mut closed = FdSet::new();
/// assert!(closed.insert(ChildFd::STDOUT));
/// assert!(!closed.insert(ChildFd::STDOUT));
/// assert!(closed.insert(ChildFd(100)));
/// assert!(closed.contains(ChildFd(100)) && !closed.contains(ChildFd::STDERR));
/// assert_eq!(closed.len(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FdSet {
    low: u64,
    high: Vec<ChildFd>,
}

impl FdSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bit of `fd` in a word of fds below 64, or `None` for a higher fd.
    pub(crate) fn bit(fd: ChildFd) -> Option<u64> {
        (fd.0 < u64::BITS).then(|| 1 << fd.0)
    }

    /// Adds `fd`; `true` when it was not in the set yet.
    pub fn insert(&mut self, fd: ChildFd) -> bool {
        match Self::bit(fd) {
            Some(bit) => {
                let new = self.low & bit == 0;
                self.low |= bit;
                new
            }
            None if self.high.contains(&fd) => false,
            None => {
                self.high.push(fd);
                true
            }
        }
    }

    /// `true` when `fd` is in the set.
    pub fn contains(&self, fd: ChildFd) -> bool {
        match Self::bit(fd) {
            Some(bit) => self.low & bit != 0,
            None => self.high.contains(&fd),
        }
    }

    /// The number of fds in the set.
    pub fn len(&self) -> usize {
        self.low.count_ones() as usize + self.high.len()
    }

    /// `true` when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fds in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = ChildFd> + '_ {
        let mut high = self.high.clone();
        high.sort_unstable();
        (0..u64::BITS)
            .filter(|&fd| self.low & (1 << fd) != 0)
            .map(ChildFd)
            .chain(high)
    }
}

impl fmt::Debug for FdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_keeps_fd_order_and_the_last_value_whatever_the_insertion_order() {
        let map: FdMap<&str> = [
            (ChildFd(5), "five"),
            (ChildFd(1), "one"),
            (ChildFd(5), "cinq"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [(ChildFd(1), &"one"), (ChildFd(5), &"cinq")]
        );
        assert_eq!(
            format!("{map:?}"),
            r#"{ChildFd(1): "one", ChildFd(5): "cinq"}"#
        );
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn a_set_holds_fds_on_both_sides_of_64_in_order() {
        let mut set = FdSet::new();
        for fd in [64, 2, 63, 1000, 0, 64] {
            set.insert(ChildFd(fd));
        }
        assert_eq!(
            set.iter().map(|fd| fd.0).collect::<Vec<_>>(),
            [0, 2, 63, 64, 1000]
        );
        assert!(set.contains(ChildFd(63)) && set.contains(ChildFd(64)));
        assert!(!set.contains(ChildFd(1)) && !set.contains(ChildFd(65)));
        assert_eq!(set.len(), 5);
    }
}
