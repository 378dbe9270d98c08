//! Signals a transport can send to its child.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseSignalError;

/// A signal to send with [`ProcessTransport::signal_process`](crate::ProcessTransport::signal_process).
///
/// The named variants are the signals Twisted's `signalProcess` accepts by name; any other
/// signal is given by number.
///
/// Parsing accepts every standard signal name (`TERM`, `USR1`, `WINCH`, ...), with or without
/// the `SIG` prefix and in any case, and positive decimal numbers written plainly (no sign, no
/// leading zero). The five named variants parse to themselves; any other name parses to
/// `Number` with the running platform's number. `Display` gives one canonical form: the
/// upper-case name without `SIG` for the named variants, the decimal number for `Number`, so
/// that `Display` then `parse` gives the same signal back.
///
/// ```
/// use process_transport_api::Signal;
///
/// assert_eq!("TERM".parse::<Signal>().unwrap(), Signal::Term);
/// assert_eq!("sigterm".parse::<Signal>().unwrap(), Signal::Term);
/// assert_eq!("10".parse::<Signal>().unwrap(), Signal::Number(10));
/// # #[cfg(target_os = "linux")]
/// assert_eq!("SIGUSR1".parse::<Signal>().unwrap(), Signal::Number(10));
/// assert_eq!(Signal::Hup.to_string(), "HUP");
/// assert_eq!(Signal::Number(10).to_string(), "10");
/// assert!("TERMINATE".parse::<Signal>().is_err());
/// assert!("+9".parse::<Signal>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGHUP, hang-up.
    Hup,
    /// SIGINT, interrupt (Ctrl-C).
    Int,
    /// SIGKILL, kill; cannot be caught or ignored.
    Kill,
    /// SIGTERM, polite termination request.
    Term,
    /// SIGSTOP, stop; cannot be caught or ignored.
    Stop,
    /// Any signal by its number on the running platform.
    Number(i32),
}

impl Signal {
    /// The signal's number as Linux numbers it (`Stop` is 19 there).
    ///
    /// ```
    /// use process_transport_api::Signal;
    ///
    /// assert_eq!(Signal::Term.linux_number(), 15);
    /// assert_eq!(Signal::Number(34).linux_number(), 34);
    /// ```
    pub fn linux_number(self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Kill => 9,
            Signal::Term => 15,
            Signal::Stop => 19,
            Signal::Number(n) => n,
        }
    }

    /// The highest signal number of the running platform: 64 on Linux (`SIGRTMAX`), 128 on
    /// FreeBSD, 31 on the other unix systems. A valid signal is numbered 1 to this.
    pub const MAX_NUMBER: i32 = if cfg!(any(target_os = "linux", target_os = "android")) {
        64
    } else if cfg!(target_os = "freebsd") {
        128
    } else {
        31
    };

    /// The signal's number on the running platform (`Stop` is 19 on Linux, 17 on macOS).
    pub fn number(self) -> i32 {
        match self {
            Signal::Stop if cfg!(not(any(target_os = "linux", target_os = "android"))) => 17,
            signal => signal.linux_number(),
        }
    }

    /// Whether every driver sends it: its number is 1 to [`MAX_NUMBER`](Self::MAX_NUMBER).
    /// `Number(0)` (a probe, not a signal), negative numbers and numbers past the platform's
    /// last are refused with `TransportError::InvalidSignal` by the fakes, replays and the
    /// real transport alike.
    ///
    /// ```
    /// use process_transport_api::Signal;
    ///
    /// assert!(Signal::Term.is_valid() && Signal::Number(Signal::MAX_NUMBER).is_valid());
    /// assert!(!Signal::Number(0).is_valid() && !Signal::Number(-1).is_valid());
    /// assert!(!Signal::Number(Signal::MAX_NUMBER + 1).is_valid());
    /// ```
    pub fn is_valid(self) -> bool {
        (1..=Self::MAX_NUMBER).contains(&self.number())
    }

    /// What the signal does to a child that neither handles, blocks nor ignores it (and so
    /// what a fake child with no reaction to it does).
    ///
    /// ```
    /// use process_transport_api::{DefaultAction, Signal};
    ///
    /// assert_eq!(Signal::Term.default_action(), DefaultAction::Terminate);
    /// assert_eq!("WINCH".parse::<Signal>().unwrap().default_action(), DefaultAction::Ignore);
    /// assert_eq!(Signal::Stop.default_action(), DefaultAction::Stop);
    /// ```
    pub fn default_action(self) -> DefaultAction {
        let number = self.number();
        let named = |name: &str| {
            OTHER_SIGNALS
                .iter()
                .any(|&(known, n)| known == name && n == number)
        };
        if number == Signal::Stop.number() || ["TSTP", "TTIN", "TTOU"].into_iter().any(named) {
            DefaultAction::Stop
        } else if named("CONT") {
            DefaultAction::Continue
        } else if ["CHLD", "URG", "WINCH", "INFO"].into_iter().any(named) {
            DefaultAction::Ignore
        } else {
            DefaultAction::Terminate
        }
    }

    fn name(self) -> Option<&'static str> {
        match self {
            Signal::Hup => Some("HUP"),
            Signal::Int => Some("INT"),
            Signal::Kill => Some("KILL"),
            Signal::Term => Some("TERM"),
            Signal::Stop => Some("STOP"),
            Signal::Number(_) => None,
        }
    }
}

/// What a signal does to a process that has no handler for it ([`Signal::default_action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DefaultAction {
    /// The process ends by the signal (with or without a core dump).
    Terminate,
    /// Nothing happens: `CHLD`, `URG`, `WINCH` (and `INFO` where it exists).
    Ignore,
    /// The process stops until `CONT`: `STOP`, `TSTP`, `TTIN`, `TTOU`.
    Stop,
    /// A stopped process continues; a running one carries on: `CONT`.
    Continue,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, Signal::Number(n)) => write!(f, "{n}"),
            (None, _) => unreachable!("every named variant has a name"),
        }
    }
}

/// The standard signals other than the five named variants, with the running platform's
/// numbers.
#[cfg(target_os = "linux")]
const OTHER_SIGNALS: &[(&str, i32)] = &[
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The standard signals other than the five named variants, with the running platform's
/// numbers (the BSD family's, macOS included).
#[cfg(not(target_os = "linux"))]
const OTHER_SIGNALS: &[(&str, i32)] = &[
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("EMT", 7),
    ("FPE", 8),
    ("BUS", 10),
    ("SEGV", 11),
    ("SYS", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("URG", 16),
    ("TSTP", 18),
    ("CONT", 19),
    ("CHLD", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("IO", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("INFO", 29),
    ("USR1", 30),
    ("USR2", 31),
];

impl FromStr for Signal {
    type Err = ParseSignalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || ParseSignalError(text.to_owned());
        if text.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            // Only the canonical spelling, so that every accepted number round-trips.
            return match text.parse::<i32>() {
                Ok(n) if n > 0 && n.to_string() == text => Ok(Signal::Number(n)),
                _ => Err(refuse()),
            };
        }
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let signal = match name {
            "HUP" => Signal::Hup,
            "INT" => Signal::Int,
            "KILL" => Signal::Kill,
            "TERM" => Signal::Term,
            "STOP" => Signal::Stop,
            _ => OTHER_SIGNALS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|&(_, number)| Signal::Number(number))
                .ok_or_else(refuse)?,
        };
        Ok(signal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["HUP", "INT", "KILL", "TERM", "STOP", "1", "64"] {
            assert_eq!(name.parse::<Signal>().unwrap().to_string(), name);
        }
    }

    #[test]
    fn bad_text_names_itself_in_the_error() {
        let err = "SIGTERMINATE".parse::<Signal>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"SIGTERMINATE\" is not a signal name (such as TERM, SIGUSR1 or hup) or a \
             positive decimal number"
        );
        for text in [
            "-3", "0", "", "+9", "09", " 9", "9 ", "SIG", "sig+9", "TERM ",
        ] {
            assert!(text.parse::<Signal>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn every_standard_name_parses_with_or_without_sig_in_any_case() {
        for (text, signal) in [
            ("SIGTERM", Signal::Term),
            ("term", Signal::Term),
            ("SigHup", Signal::Hup),
            ("sigkill", Signal::Kill),
            ("Int", Signal::Int),
            ("SIGSTOP", Signal::Stop),
        ] {
            assert_eq!(text.parse::<Signal>(), Ok(signal), "{text}");
        }
        for &(name, number) in OTHER_SIGNALS {
            for text in [name.to_owned(), format!("SIG{name}"), name.to_lowercase()] {
                assert_eq!(text.parse::<Signal>(), Ok(Signal::Number(number)), "{text}");
            }
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn other_names_take_the_linux_numbers() {
        assert_eq!("USR1".parse::<Signal>(), Ok(Signal::Number(10)));
        assert_eq!("sigwinch".parse::<Signal>(), Ok(Signal::Number(28)));
        assert_eq!("PIPE".parse::<Signal>(), Ok(Signal::Number(13)));
    }

    #[test]
    fn display_then_parse_gives_the_same_signal() {
        let mut signals = vec![
            Signal::Hup,
            Signal::Int,
            Signal::Kill,
            Signal::Term,
            Signal::Stop,
        ];
        signals.extend((1..=64).map(Signal::Number));
        for signal in signals {
            assert_eq!(signal.to_string().parse::<Signal>(), Ok(signal));
        }
    }
}
