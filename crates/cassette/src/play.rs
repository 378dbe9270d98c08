//! The replayed child: one recording played as a fake child, its input checked against what
//! was recorded, its output and exit released as the input gets there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use process_transport_api::{implement::FailureSink, ChildFd, DefaultAction, Signal};
use process_transport_fakes::{FakeChild, Script, SignalAction, TerminalModes};

use crate::recorder::lock;
use crate::volatile::{render, Bindings, Extent, Segment, Volatiles};
use crate::{Event, FdKind, Recording};

/// Where a replayed child is in its recording.
#[derive(Default)]
struct Progress {
    cursor: usize,
    /// Per input fd: bytes the protocol wrote that the recording has not accounted for yet.
    input: BTreeMap<u32, Vec<u8>>,
    /// Per input fd: how many bytes the recording accounted for, the offset of `input`.
    matched: BTreeMap<u32, usize>,
    /// Input fds closed (by the protocol) or lost (the child closed them): a recorded close
    /// of one by the protocol has nothing left to wait for, as closing a lost pipe does
    /// nothing the child could see.
    inputs_closed: BTreeSet<u32>,
    /// Input fds the protocol closed: no more bytes can come on them.
    closed_by_protocol: BTreeSet<u32>,
    /// Signals the protocol sent.
    signals: usize,
    /// Recorded signals played past.
    signals_played: usize,
    /// A mismatch was reported: the child plays nothing more (a second panic while the first
    /// unwinds, from a drop that closes stdin, would abort the test).
    failed: bool,
    /// Where in the current recorded write that holds placeholders the input has got to:
    /// the segment, and the bytes of it matched.
    within: (usize, usize),
}

/// What every player of one replay shares.
pub(crate) struct Shared {
    /// Whether stdin bytes are compared ([`MatchRules::lenient_stdin`] turns it off).
    pub(crate) strict: bool,
    /// [`MatchRules::unwaited_ignored_signals`].
    pub(crate) unwaited_ignored_signals: bool,
    pub(crate) failures: Arc<FailureSink>,
    pub(crate) volatiles: Arc<Volatiles>,
    pub(crate) bindings: Arc<Mutex<Bindings>>,
}

/// Plays one recording as a fake child.
pub(crate) struct Player {
    recording: Recording,
    /// Per event: the write or output cut at its placeholders, when it holds any.
    templates: Vec<Option<Vec<Segment>>>,
    label: String,
    shared: Shared,
    progress: Mutex<Progress>,
}

/// How far a recorded write that holds placeholders got.
enum Step {
    /// The input matched all of it.
    Done,
    /// The input matched as far as it goes; more must come.
    Wait,
    /// The input differs: the bytes got, the bytes expected (bound placeholders put in),
    /// and whether the input was closed short of it.
    Differs {
        got: Vec<u8>,
        expected: Vec<u8>,
        short: bool,
    },
}

impl Player {
    pub(crate) fn script(
        recording: Recording,
        label: String,
        shared: Shared,
    ) -> (Script, Arc<Player>) {
        let templates = recording
            .events
            .iter()
            .map(|event| match event {
                Event::Write { data, .. } | Event::Output { data, .. } => {
                    shared.volatiles.segments(&data.0)
                }
                _ => None,
            })
            .collect();
        let signals: BTreeSet<String> = recording
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Signal { signal } => Some(signal.clone()),
                _ => None,
            })
            .collect();
        let inputs: Vec<u32> = recording
            .fds
            .iter()
            .filter(|(_, kind)| **kind == FdKind::ParentWrites)
            .map(|(fd, _)| *fd)
            .collect();
        let player = Arc::new(Player {
            recording,
            templates,
            label,
            shared,
            progress: Mutex::default(),
        });
        // A pipe the protocol closed is lost where the recording says, not at the close.
        let held: Vec<u32> = inputs
            .iter()
            .copied()
            .filter(|fd| player.loss_follows_close(*fd))
            .collect();
        let mut script = Script::new().start_with({
            let player = player.clone();
            move |child| {
                if player.recording.pty {
                    // The recorded bytes went through a real terminal already.
                    child.set_terminal_modes(TerminalModes::PASSTHROUGH);
                }
                for fd in &held {
                    child.hold_flush(ChildFd(*fd));
                }
                player.advance(child);
            }
        });
        for fd in inputs {
            let (on_write, on_eof) = (player.clone(), player.clone());
            script = script
                .on_input(ChildFd(fd), move |child, data| {
                    let mut progress = lock(&on_write.progress);
                    progress
                        .input
                        .entry(fd)
                        .or_default()
                        .extend_from_slice(data);
                    drop(progress);
                    on_write.advance(child);
                })
                .on_input_eof(ChildFd(fd), move |child| {
                    let mut progress = lock(&on_eof.progress);
                    progress.inputs_closed.insert(fd);
                    progress.closed_by_protocol.insert(fd);
                    drop(progress);
                    on_eof.advance(child);
                });
        }
        for signal in signals
            .iter()
            .filter_map(|text| text.parse::<Signal>().ok())
            .filter(|signal| player.waits_for(*signal))
        {
            let player = player.clone();
            script = script.on_signal(
                signal,
                SignalAction::Custom(Arc::new(move |child: &FakeChild, _| {
                    lock(&player.progress).signals += 1;
                    player.advance(child);
                })),
            );
        }
        (script, player)
    }

    /// Whether a recorded `signal` waits for the protocol to send it (all do, but those a
    /// process ignores by default under [`MatchRules::unwaited_ignored_signals`]).
    fn waits_for(&self, signal: Signal) -> bool {
        !(self.shared.unwaited_ignored_signals
            && matches!(
                signal.default_action(),
                DefaultAction::Ignore | DefaultAction::Continue
            ))
    }

    /// What the replay still waits for from the protocol, when it stopped short of the
    /// recording's end without a mismatch: the bytes of a write, a close, a signal.
    pub(crate) fn waiting_for(&self) -> Option<String> {
        let progress = lock(&self.progress);
        if progress.failed {
            return None;
        }
        let what = match self.recording.events.get(progress.cursor)? {
            Event::Write { fd, data } => {
                let have = progress.input.get(fd).map_or(0, Vec::len);
                let offset = progress.matched.get(fd).copied().unwrap_or(0);
                format!(
                    "{} more byte(s) on fd {fd} (it got {have} of the {} recorded at offset {offset}: {})",
                    data.0.len().saturating_sub(have),
                    data.0.len(),
                    crate::cassette::escaped(&data.0)
                )
            }
            Event::Close { fd } => format!("the close of fd {fd}"),
            Event::Signal { signal } => format!("signal {signal}"),
            other => format!("{other:?}"),
        };
        Some(format!("{}: still waits for {what}", self.label))
    }

    /// Plays every event whose cause has happened, in order, and stops at the first that
    /// waits for the protocol.
    fn advance(&self, child: &FakeChild) {
        let events = &self.recording.events;
        loop {
            let mut progress = lock(&self.progress);
            let Some(event) = events.get(progress.cursor).filter(|_| !progress.failed) else {
                return;
            };
            match event {
                Event::Write { fd, .. } if self.templates[progress.cursor].is_some() => {
                    let segments = self.templates[progress.cursor]
                        .as_deref()
                        .expect("checked above");
                    match self.match_template(&mut progress, *fd, segments) {
                        Step::Done => progress.within = (0, 0),
                        Step::Wait => return,
                        Step::Differs {
                            got,
                            expected,
                            short,
                        } => {
                            let offset = progress.matched.get(fd).copied().unwrap_or(0);
                            progress.failed = true;
                            drop(progress);
                            self.fail(*fd, offset, &got, &expected, short);
                        }
                    }
                }
                Event::Write { fd, data } => {
                    let len = data.0.len();
                    let closed = progress.closed_by_protocol.contains(fd);
                    let written = progress.input.entry(*fd).or_default();
                    // Input that ends short of the recording can never match it: fail at the
                    // close rather than wait for bytes that cannot come.
                    let short = written.len() < len;
                    if short && !closed {
                        return;
                    }
                    if short || (self.shared.strict && written[..len] != data.0[..]) {
                        let got = written[..len.min(written.len())].to_vec();
                        let offset = progress.matched.get(fd).copied().unwrap_or(0);
                        progress.failed = true;
                        drop(progress);
                        self.fail(*fd, offset, &got, &data.0, short);
                    }
                    written.drain(..len);
                    *progress.matched.entry(*fd).or_default() += len;
                }
                Event::Close { fd }
                    if self.is_input(*fd) && !progress.inputs_closed.contains(fd) =>
                {
                    return;
                }
                Event::Close { .. } => {}
                Event::Signal { signal }
                    if !signal.parse().is_ok_and(|signal| self.waits_for(signal)) => {}
                Event::Signal { .. } if progress.signals <= progress.signals_played => return,
                Event::Signal { .. } => progress.signals_played += 1,
                Event::Pause | Event::Resume | Event::Resize { .. } => {}
                Event::Output { fd, data } => {
                    let index = progress.cursor;
                    progress.cursor += 1;
                    drop(progress);
                    if self.templates[index].is_some() {
                        let bytes = self.shared.volatiles.render_event(
                            events,
                            index,
                            &lock(&self.shared.bindings),
                        );
                        let _ = child.write(ChildFd(*fd), &bytes);
                    } else {
                        let _ = child.write(ChildFd(*fd), &data.0);
                    }
                    continue;
                }
                Event::Lost { fd } => {
                    progress.inputs_closed.insert(*fd);
                    progress.cursor += 1;
                    drop(progress);
                    if self.recording.pty && *fd == 1 {
                        // A terminal's output ends when the child's side is closed on every
                        // fd: fd 2 is the terminal too.
                        child.close(ChildFd::STDERR);
                    }
                    // The child's end closes; the loss of a pipe the protocol closed is
                    // delivered now if its flush was held, and was already otherwise.
                    child.close(ChildFd(*fd));
                    continue;
                }
                Event::Exited { .. } => {
                    progress.cursor += 1;
                    drop(progress);
                    let end = event.end().expect("an Exited event has an end");
                    if child.transport().exited().is_none() {
                        child.exit_keeping_fds(end);
                    }
                    continue;
                }
            }
            progress.cursor += 1;
        }
    }

    /// Reports input on `fd` that differs from (or was closed short of) the recording, at
    /// `offset`, naming the rule that compared it and the placeholders it held; the panic is
    /// a fake's misuse check, kept for the test's thread too.
    fn fail(&self, fd: u32, offset: usize, got: &[u8], expected: &[u8], short: bool) -> ! {
        let name = if fd == 0 {
            "stdin (fd 0)".into()
        } else {
            format!("fd {fd}")
        };
        let how = if short {
            format!(
                "was closed {} byte(s) short of",
                expected.len().saturating_sub(got.len())
            )
        } else {
            "differs from".to_owned()
        };
        let rule = if self.shared.strict {
            "rule: stdin compared exactly; MatchRules::lenient_stdin counts it instead"
        } else {
            "rule: stdin counted, placeholders matched by their patterns"
        };
        let cursor = lock(&self.progress).cursor;
        let placeholders = match self.recording.events.get(cursor) {
            Some(Event::Write { data, .. }) => self
                .shared
                .volatiles
                .describe(&data.0, &lock(&self.shared.bindings)),
            _ => String::new(),
        };
        let placeholders = if placeholders.is_empty() {
            String::new()
        } else {
            format!("; placeholders: {placeholders}")
        };
        let text = process_transport_fakes::assert::bytes_difference(
            got,
            expected,
            Some(format_args!(
                "{}: {name} at offset {offset} {how} the recording ({rule}{placeholders})",
                self.label
            )),
        )
        .unwrap_or_else(|| {
            format!(
                "{}: {name} at offset {offset} {how} the recording ({rule}{placeholders}): \
                 got {}, a value of the placeholder's pattern was expected",
                self.label,
                crate::cassette::escaped(got)
            )
        });
        self.shared.failures.keep(text.clone());
        panic!("{text}");
    }

    /// Matches the input written on `fd` so far against a recorded write that holds
    /// placeholders, from where the last call stopped: literals byte for byte (counted only,
    /// when stdin is lenient), a bound placeholder as its value, an unbound one as the
    /// longest value of its pattern the input holds, which it then binds. A value is taken
    /// once the pattern can take no further byte, once the input is closed, or when the
    /// input so far ends in a value and the recorded write ended with the placeholder too.
    fn match_template(&self, progress: &mut Progress, fd: u32, segments: &[Segment]) -> Step {
        let closed = progress.closed_by_protocol.contains(&fd);
        let Progress {
            input,
            matched,
            within,
            ..
        } = progress;
        let written = input.entry(fd).or_default();
        let matched = matched.entry(fd).or_default();
        let volatiles = &self.shared.volatiles;
        loop {
            let (segment, done) = *within;
            let Some(current) = segments.get(segment) else {
                return Step::Done;
            };
            let bound = match current {
                Segment::Slot(name) => lock(&self.shared.bindings).get(name).cloned(),
                Segment::Literal(_) | Segment::Length(..) => None,
            };
            let rest = || {
                let bindings = lock(&self.shared.bindings);
                let mut expected = match (current, &bound) {
                    (Segment::Literal(bytes), _) => bytes[done..].to_vec(),
                    (Segment::Slot(_), Some(value)) => value[done..].to_vec(),
                    (Segment::Slot(name), None) => name.as_bytes().to_vec(),
                    (Segment::Length(digits, _), _) => digits.clone(),
                };
                expected.extend(render(&segments[segment + 1..], &bindings));
                expected
            };
            let literal = match (current, &bound) {
                (Segment::Literal(bytes), _) => Some(&bytes[done..]),
                (Segment::Slot(_), Some(value)) => Some(&value[done..]),
                (Segment::Slot(_), None) | (Segment::Length(..), _) => None,
            };
            if let Some(literal) = literal {
                let take = literal.len().min(written.len());
                if self.shared.strict && written[..take] != literal[..take] {
                    return Step::Differs {
                        got: written[..rest().len().min(written.len())].to_vec(),
                        expected: rest(),
                        short: false,
                    };
                }
                written.drain(..take);
                *matched += take;
                if take < literal.len() {
                    if closed {
                        return Step::Differs {
                            got: Vec::new(),
                            expected: rest(),
                            short: true,
                        };
                    }
                    *within = (segment, done + take);
                    return Step::Wait;
                }
                *within = (segment + 1, 0);
                continue;
            }
            // An unbound placeholder binds; a length header's digits are any digits.
            let (pattern, name) = match current {
                Segment::Slot(name) => match volatiles.pattern(name) {
                    Ok(pattern) => (pattern, Some(name)),
                    Err(_) => {
                        return Step::Differs {
                            got: written.clone(),
                            expected: rest(),
                            short: false,
                        }
                    }
                },
                Segment::Length(..) => (volatiles.digits(), None),
                Segment::Literal(_) => unreachable!("a literal was taken above"),
            };
            let ends_piece = segment + 1 == segments.len();
            match pattern.extent(written, closed, ends_piece) {
                Extent::Value(len) => {
                    let value: Vec<u8> = written.drain(..len).collect();
                    *matched += len;
                    if let Some(name) = name {
                        lock(&self.shared.bindings).insert(name.clone(), value);
                    }
                    *within = (segment + 1, 0);
                }
                Extent::More => return Step::Wait,
                Extent::Never => {
                    return Step::Differs {
                        got: written.clone(),
                        expected: rest(),
                        short: closed && written.is_empty(),
                    }
                }
            }
        }
    }

    /// Whether the recording has the protocol close `fd`, then its loss.
    fn loss_follows_close(&self, fd: u32) -> bool {
        let events = &self.recording.events;
        events
            .iter()
            .position(|event| *event == Event::Close { fd })
            .is_some_and(|close| events[close..].contains(&Event::Lost { fd }))
    }

    /// Whether child fd `fd` is a pipe the protocol writes.
    fn is_input(&self, fd: u32) -> bool {
        self.recording.fds.get(&fd) == Some(&FdKind::ParentWrites)
    }
}
