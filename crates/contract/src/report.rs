//! What a contract run found, scenario by scenario.

use std::fmt;

/// The outcome of one scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The scenario's name, a sentence in snake case.
    pub name: &'static str,
    /// `Ok`, or why it failed.
    pub result: Result<(), String>,
}

/// The outcome of every scenario of a contract run, in the suite's order. Printable: one line
/// per scenario, `ok` or `FAILED` with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every scenario's outcome.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// How many scenarios ran.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// `true` when no scenario ran.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// The scenarios that failed.
    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err()).collect()
    }

    /// `true` when every scenario passed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The names of the scenarios, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.outcomes.iter().map(|o| o.name).collect()
    }

    /// Panics with the whole report unless every scenario passed.
    pub fn assert_passed(&self) {
        assert!(self.passed(), "the contract failed:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for outcome in &self.outcomes {
            match &outcome.result {
                Ok(()) => writeln!(f, "ok      {}", outcome.name)?,
                Err(why) => writeln!(f, "FAILED  {}: {why}", outcome.name)?,
            }
        }
        let failed = self.failures().len();
        write!(
            f,
            "{} scenarios, {} passed, {failed} failed",
            self.len(),
            self.len() - failed
        )
    }
}
