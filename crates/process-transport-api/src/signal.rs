//! Signals a transport can send to its child.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseSignalError;

/// A signal to send with [`ProcessTransport::signal_process`](crate::ProcessTransport::signal_process).
///
/// The named variants are the signals Twisted's `signalProcess` accepts by name; any other
/// signal is given by number. Parsing accepts the names (upper case, without the `SIG` prefix)
/// and decimal numbers; `Display` gives the same text back.
///
/// ```
/// use process_transport_api::Signal;
///
/// assert_eq!("TERM".parse::<Signal>().unwrap(), Signal::Term);
/// assert_eq!("10".parse::<Signal>().unwrap(), Signal::Number(10));
/// assert_eq!(Signal::Hup.to_string(), "HUP");
/// assert_eq!(Signal::Number(10).to_string(), "10");
/// assert!("TERMINATE".parse::<Signal>().is_err());
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

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, Signal::Number(n)) => write!(f, "{n}"),
            (None, _) => unreachable!("every named variant has a name"),
        }
    }
}

impl FromStr for Signal {
    type Err = ParseSignalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let signal = match text {
            "HUP" => Signal::Hup,
            "INT" => Signal::Int,
            "KILL" => Signal::Kill,
            "TERM" => Signal::Term,
            "STOP" => Signal::Stop,
            _ => match text.parse::<i32>() {
                Ok(n) if n > 0 => Signal::Number(n),
                _ => return Err(ParseSignalError(text.to_owned())),
            },
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
        let err = "SIGTERM".parse::<Signal>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"SIGTERM\" is not a signal name (HUP, INT, KILL, TERM, STOP) or a positive number"
        );
        assert!("-3".parse::<Signal>().is_err());
        assert!("0".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
    }
}
