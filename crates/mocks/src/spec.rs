//! A predicate on a [`SpawnSpec`], for `MockProcessSpawner::expect_spawn_process`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use predicates::reflection::PredicateReflection;
use predicates::Predicate;
use process_transport_api::SpawnSpec;

/// Starts a [`SpecPredicate`] that matches every spec; each method adds a requirement.
///
/// ```
/// use process_transport_api::SpawnSpec;
/// use process_transport_mocks::spawn_spec;
/// use predicates::Predicate;
///
/// let spec = SpawnSpec::new("sort").args(["-r", "-n"]).env("LC_ALL", "C").cwd("/tmp");
/// assert!(spawn_spec().executable("sort").args(["-r", "-n"]).eval(&spec));
/// assert!(spawn_spec().env("LC_ALL", "C").cwd("/tmp").eval(&spec));
/// assert!(!spawn_spec().args(["-r"]).eval(&spec));
/// assert_eq!(
///     spawn_spec().executable("sort").args(["-r"]).to_string(),
///     "a spawn spec with executable \"sort\", args [\"-r\"]",
/// );
/// ```
pub fn spawn_spec() -> SpecPredicate {
    SpecPredicate::default()
}

/// A predicate on a [`SpawnSpec`]: executable, arguments, environment variables, working
/// directory, each checked only when given. Built by [`spawn_spec`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SpecPredicate {
    executable: Option<OsString>,
    args: Option<Vec<OsString>>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<Option<PathBuf>>,
    env_cleared: Option<bool>,
}

impl SpecPredicate {
    /// Requires this executable, exactly as given to `SpawnSpec::new`.
    pub fn executable(mut self, executable: impl AsRef<OsStr>) -> Self {
        self.executable = Some(executable.as_ref().to_owned());
        self
    }

    /// Requires exactly these arguments (argv\[0\] excluded), in order.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args = Some(
            args.into_iter()
                .map(|arg| arg.as_ref().to_owned())
                .collect(),
        );
        self
    }

    /// Requires no arguments at all.
    pub fn no_args(mut self) -> Self {
        self.args = Some(Vec::new());
        self
    }

    /// Requires the spec to set variable `key` to `value`.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Requires the spec to remove variable `key`.
    pub fn env_removed(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Requires the environment to start empty (`true`) or inherited (`false`).
    pub fn env_cleared(mut self, cleared: bool) -> Self {
        self.env_cleared = Some(cleared);
        self
    }

    /// Requires this working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(Some(dir.into()));
        self
    }

    /// Requires no working directory to be set (the parent's is used).
    pub fn no_cwd(mut self) -> Self {
        self.cwd = Some(None);
        self
    }
}

impl Predicate<SpawnSpec> for SpecPredicate {
    fn eval(&self, spec: &SpawnSpec) -> bool {
        let executable = self
            .executable
            .as_ref()
            .is_none_or(|exe| spec.get_executable() == exe);
        let args = self
            .args
            .as_ref()
            .is_none_or(|args| spec.get_args() == args);
        let env = self.env.iter().all(|(key, value)| {
            spec.get_env()
                .vars()
                .any(|(k, v)| k == key && v == value.as_deref())
        });
        let cwd = self
            .cwd
            .as_ref()
            .is_none_or(|cwd| spec.get_cwd() == cwd.as_deref());
        let cleared = self
            .env_cleared
            .is_none_or(|cleared| spec.get_env().inherits() != cleared);
        executable && args && env && cwd && cleared
    }
}

impl PredicateReflection for SpecPredicate {}

impl fmt::Display for SpecPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(exe) = &self.executable {
            parts.push(format!("executable {exe:?}"));
        }
        if let Some(args) = &self.args {
            parts.push(format!("args {args:?}"));
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => parts.push(format!("env {key:?}={value:?}")),
                None => parts.push(format!("env {key:?} removed")),
            }
        }
        if let Some(cleared) = self.env_cleared {
            parts.push(
                if cleared {
                    "an empty environment"
                } else {
                    "an inherited environment"
                }
                .into(),
            );
        }
        match &self.cwd {
            Some(Some(cwd)) => parts.push(format!("cwd {cwd:?}")),
            Some(None) => parts.push("no cwd".into()),
            None => {}
        }
        if parts.is_empty() {
            f.write_str("any spawn spec")
        } else {
            write!(f, "a spawn spec with {}", parts.join(", "))
        }
    }
}

impl fmt::Debug for SpecPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
