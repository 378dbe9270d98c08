//! The child's environment, as a [`SpawnSpec`](super::SpawnSpec) builds it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// The child's environment: the parent's, with changes, or exactly a given map.
///
/// ```
/// use process_transport_api::SpawnSpec;
///
/// let spec = SpawnSpec::new("env").env("A", "1").env_remove("HOME");
/// assert!(spec.get_env().inherits());
/// let exact = SpawnSpec::new("env").env_clear().env("A", "1");
/// assert!(!exact.get_env().inherits());
/// assert_eq!(exact.get_env().vars().count(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Environment {
    pub(super) cleared: bool,
    pub(super) vars: BTreeMap<OsString, Option<OsString>>,
}

impl Environment {
    /// `true` when the child starts from the parent's environment (the default, as with
    /// `std::process::Command`).
    pub fn inherits(&self) -> bool {
        !self.cleared
    }

    /// The variables set (`Some`) or removed (`None`) on top of the starting environment.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, Option<&OsStr>)> {
        self.vars
            .iter()
            .map(|(key, value)| (key.as_os_str(), value.as_deref()))
    }

    /// The environment the child gets when the parent's is `parent`.
    ///
    /// ```
    /// use process_transport_api::SpawnSpec;
    ///
    /// let spec = SpawnSpec::new("env").env("B", "2").env_remove("A");
    /// let parent = [("A".into(), "1".into()), ("C".into(), "3".into())];
    /// let child = spec.get_env().resolve(parent);
    /// assert_eq!(child.len(), 2);
    /// assert_eq!(child[&std::ffi::OsString::from("B")], "2");
    /// ```
    pub fn resolve(
        &self,
        parent: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> BTreeMap<OsString, OsString> {
        let mut env: BTreeMap<OsString, OsString> = if self.cleared {
            BTreeMap::new()
        } else {
            parent.into_iter().collect()
        };
        for (key, value) in &self.vars {
            match value {
                Some(value) => env.insert(key.clone(), value.clone()),
                None => env.remove(key),
            };
        }
        env
    }
}
