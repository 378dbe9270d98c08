//! [`MatchRules`]: how a replay matches a spawn and its input against a recording.

use std::fmt;
use std::sync::Arc;

use crate::replay::Aspect;
use crate::volatile::Pattern;
use crate::PatternError;

/// How a [`ReplaySpawner`](crate::ReplaySpawner) matches a spawn and its input against a recording, besides the
/// command line: the rules of one cassette. The default is exact: stdin bytes compared, the
/// cwd compared where recorded, every argument compared.
#[derive(Clone, Default)]
pub struct MatchRules {
    pub(crate) lenient_stdin: bool,
    pub(crate) ignore_cwd: bool,
    pub(crate) spawn_details: bool,
    pub(crate) args: Option<ArgsRule>,
    /// Recorded signals a process ignores by default are not waited for: a shim, a process
    /// of its own, can miss one sent while it starts, before it can catch it.
    pub(crate) unwaited_ignored_signals: bool,
}

impl fmt::Debug for MatchRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchRules")
            .field("lenient_stdin", &self.lenient_stdin)
            .field("ignore_cwd", &self.ignore_cwd)
            .field("ignore_spawn_details", &self.spawn_details)
            .field("args", &self.args.as_ref().map(ArgsRule::describe))
            .finish()
    }
}

/// A test's predicate on the recorded and the asked arguments.
type ArgsPredicate = dyn Fn(&[String], &[String]) -> bool + Send + Sync;

/// How arguments are matched, when not word for word.
#[derive(Clone)]
pub(crate) enum ArgsRule {
    /// The recorded and the asked arguments (not the executable) are given to the predicate.
    Predicate(Arc<ArgsPredicate>),
    /// A recorded argument that is a value of the pattern matches any asked argument that is.
    Pattern(Arc<Pattern>),
}

impl ArgsRule {
    pub(crate) fn describe(&self) -> String {
        match self {
            ArgsRule::Predicate(_) => "arguments matched by the test's predicate".into(),
            ArgsRule::Pattern(pattern) => format!(
                "an argument matching `{}` matches any other that does",
                pattern.source()
            ),
        }
    }
}

impl MatchRules {
    /// Exact: the default.
    pub fn exact() -> Self {
        Self::default()
    }

    /// Stdin bytes are counted, not compared: output that answered N bytes comes after N
    /// bytes, whatever they are.
    pub fn lenient_stdin(mut self) -> Self {
        self.lenient_stdin = true;
        self
    }

    #[cfg(feature = "cli")]
    /// Recorded signals a process ignores by default (SIGCHLD, SIGURG, SIGWINCH, SIGCONT)
    /// are played past, not waited for: a shim, a process of its own, misses one sent while
    /// it starts, before it can catch it, as the kernel discards it.
    pub(crate) fn unwaited_ignored_signals(mut self) -> Self {
        self.unwaited_ignored_signals = true;
        self
    }

    /// The working directory is not compared, even where it was recorded.
    pub fn ignore_cwd(mut self) -> Self {
        self.ignore_cwd = true;
        self
    }

    /// Only the command line, the cwd and the kept env values and digests are compared, not
    /// the env names set, the fd map, the user, the terminal or the process group: for a
    /// process that cannot see how it was spawned (a shim on `PATH`, [`Shims`](crate::Shims)).
    pub fn ignore_spawn_details(mut self) -> Self {
        self.spawn_details = true;
        self
    }

    /// The arguments (after the executable) match when `predicate(recorded, asked)` says so,
    /// in place of word for word; the executable is still compared.
    pub fn args_with(
        mut self,
        predicate: impl Fn(&[String], &[String]) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.args = Some(ArgsRule::Predicate(Arc::new(predicate)));
        self
    }

    /// A recorded argument that, as a whole, matches `pattern` matches any asked argument in
    /// its place that does too (say `--seed=[0-9]+`); every other argument is compared.
    ///
    /// # Errors
    /// A [`PatternError`] when the pattern does not parse or matches the empty string.
    pub fn args_matching(mut self, pattern: &str) -> Result<Self, PatternError> {
        self.args = Some(ArgsRule::Pattern(Arc::new(Pattern::new(
            pattern,
            "(argument rule)",
        )?)));
        Ok(self)
    }

    /// The rule that refused a spawn in `aspect`, as a mismatch message names it.
    pub(crate) fn refusing(&self, aspect: &Aspect) -> &'static str {
        match aspect {
            Aspect::Cwd => {
                "rule: the cwd is compared where recorded (MatchRules::ignore_cwd turns it off)"
            }
            Aspect::Env => "rule: the names set, kept values and digests are compared",
            _ => "rule: compared exactly",
        }
    }
}
