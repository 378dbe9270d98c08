//! The fake pseudo-terminal: the line discipline a real terminal puts between the parent and
//! a child spawned with `use_pty`.

use process_transport_api::{implement::FdSet, ChildFd, PtySize};

/// The terminal's end-of-file character (`VEOF`, control-D), as a real terminal starts.
pub const VEOF: u8 = 0x04;
/// The terminal's erase character (`VERASE`, DEL), as a real terminal starts.
pub const VERASE: u8 = 0x7f;

/// What the line discipline of a fake terminal does, as `stty` would set it. A terminal
/// starts [`COOKED`](Self::COOKED), as a real one does.
///
/// ```
/// use process_transport_fakes::TerminalModes;
///
/// assert_eq!(TerminalModes::default(), TerminalModes::COOKED);
/// let no_echo = TerminalModes { echo: false, ..TerminalModes::COOKED }; // stty -echo
/// assert!(no_echo.canonical);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TerminalModes {
    /// Input is echoed back as output (`stty echo`).
    pub echo: bool,
    /// Input reaches the child a line at a time, `VERASE` erases a character and `VEOF` ends
    /// a line without a newline, or the input at the start of a line (`stty icanon`).
    pub canonical: bool,
    /// Output `\n` becomes `\r\n` (`stty onlcr`), and input `\r` becomes `\n` (`stty icrnl`).
    pub crlf: bool,
}

impl TerminalModes {
    /// A fresh terminal's modes: echo, canonical input, `\r\n` line ends.
    pub const COOKED: TerminalModes = TerminalModes {
        echo: true,
        canonical: true,
        crlf: true,
    };

    /// Bytes pass as they are, both ways, with no echo (`stty raw -echo -onlcr`): how a
    /// replayed recording, whose bytes already went through a real terminal, plays.
    pub const PASSTHROUGH: TerminalModes = TerminalModes {
        echo: false,
        canonical: false,
        crlf: false,
    };
}

impl Default for TerminalModes {
    fn default() -> Self {
        TerminalModes::COOKED
    }
}

/// The state of one fake terminal.
#[derive(Debug)]
pub(crate) struct Terminal {
    pub(crate) size: PtySize,
    pub(crate) modes: TerminalModes,
    /// Input typed but not yet a whole line (canonical mode).
    line: Vec<u8>,
    /// The child's fds 0, 1 and 2 it closed: the terminal hangs up once all three are.
    pub(crate) child_closed: FdSet,
    /// The parent closed its side: the child was sent `SIGHUP`.
    pub(crate) hung_up: bool,
}

/// What one write of the parent does: the bytes echoed back as output, and the bytes the
/// child can now read.
#[derive(Default)]
pub(crate) struct Typed {
    pub(crate) echo: Vec<u8>,
    pub(crate) input: Vec<u8>,
}

impl Terminal {
    pub(crate) fn new(size: PtySize) -> Self {
        Terminal {
            size,
            modes: TerminalModes::COOKED,
            line: Vec::new(),
            child_closed: FdSet::new(),
            hung_up: false,
        }
    }

    /// The parent types `data`.
    pub(crate) fn type_in(&mut self, data: &[u8]) -> Typed {
        let mut typed = Typed::default();
        for &byte in data {
            let byte = if self.modes.crlf && byte == b'\r' {
                b'\n'
            } else {
                byte
            };
            if !self.modes.canonical {
                typed.input.push(byte);
                self.echo(&mut typed.echo, byte);
                continue;
            }
            match byte {
                VEOF => typed.input.append(&mut self.line),
                VERASE => {
                    if self.line.pop().is_some() && self.modes.echo {
                        typed.echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                b'\n' => {
                    self.line.push(byte);
                    typed.input.append(&mut self.line);
                    self.echo(&mut typed.echo, byte);
                }
                _ => {
                    self.line.push(byte);
                    self.echo(&mut typed.echo, byte);
                }
            }
        }
        typed
    }

    /// The parent ends the input (the transport types `VEOF`, twice after an unfinished
    /// line): the unfinished line reaches the child, then end of file.
    pub(crate) fn end_input(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.line)
    }

    fn echo(&self, out: &mut Vec<u8>, byte: u8) {
        if self.modes.echo {
            self.output_byte(out, byte);
        }
    }

    /// What the terminal shows for output `data` of the child.
    pub(crate) fn output(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for &byte in data {
            self.output_byte(&mut out, byte);
        }
        out
    }

    fn output_byte(&self, out: &mut Vec<u8>, byte: u8) {
        if self.modes.crlf && byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
    }

    /// The child closes its fd `fd` (0, 1 or 2); `true` when that was the last one, and the
    /// terminal hangs up.
    pub(crate) fn child_close(&mut self, fd: ChildFd) -> bool {
        self.child_closed.insert(fd) && self.child_closed.len() == 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(terminal: &mut Terminal, data: &[u8]) -> (String, String) {
        let typed = terminal.type_in(data);
        (
            String::from_utf8(typed.echo).unwrap(),
            String::from_utf8(typed.input).unwrap(),
        )
    }

    #[test]
    fn a_cooked_terminal_echoes_and_hands_over_whole_lines() {
        let mut terminal = Terminal::new(PtySize::default());
        assert_eq!(typed(&mut terminal, b"ab"), ("ab".into(), "".into()));
        assert_eq!(
            typed(&mut terminal, b"c\x7fd\n"),
            ("c\x08 \x08d\r\n".into(), "abd\n".into())
        );
        assert_eq!(
            typed(&mut terminal, b"x\ry"),
            ("x\r\ny".into(), "x\n".into())
        );
        assert_eq!(typed(&mut terminal, b"\x04"), ("".into(), "y".into()));
        assert_eq!(typed(&mut terminal, b"tail"), ("tail".into(), "".into()));
        assert_eq!(terminal.end_input(), b"tail");
        assert_eq!(terminal.output(b"one\ntwo\n"), b"one\r\ntwo\r\n");
    }

    #[test]
    fn a_passthrough_terminal_changes_nothing() {
        let mut terminal = Terminal::new(PtySize::default());
        terminal.modes = TerminalModes::PASSTHROUGH;
        assert_eq!(
            typed(&mut terminal, b"a\r\n\x04\x7f"),
            ("".into(), "a\r\n\x04\x7f".into())
        );
        assert_eq!(terminal.output(b"x\n"), b"x\n");
    }

    #[test]
    fn the_terminal_hangs_up_when_the_child_closed_all_three_fds() {
        let mut terminal = Terminal::new(PtySize::default());
        assert!(!terminal.child_close(ChildFd::STDOUT));
        assert!(!terminal.child_close(ChildFd::STDOUT));
        assert!(!terminal.child_close(ChildFd::STDIN));
        assert!(terminal.child_close(ChildFd::STDERR));
    }
}
