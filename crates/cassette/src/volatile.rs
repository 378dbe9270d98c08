//! Volatile values: the matches of a pattern, stored as numbered placeholders, and bound at
//! replay to the values the live spawn has in their place.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use regex_automata::{hybrid, meta, Anchored, Input};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Event;

/// A placeholder of a volatile value, as a cassette stores it: the pattern the value matched
/// when it was recorded, which a replay matches the live value against.
///
/// ```
/// use process_transport_cassette::Placeholder;
///
/// let placeholder = Placeholder { pattern: "/tmp/sccache[A-Za-z0-9]+".into() };
/// assert_eq!(serde_json::to_string(&placeholder).unwrap(), r#"{"pattern":"/tmp/sccache[A-Za-z0-9]+"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placeholder {
    /// The regular expression (the syntax of the `regex` crate), matched against bytes.
    pub pattern: String,
}

/// Why a pattern cannot stand for volatile values: it does not parse, or it matches the empty
/// string (which would be found between every two bytes).
///
/// ```
/// use process_transport_cassette::Redactions;
///
/// let err = Redactions::none().pattern("[0-9", "<PID>").unwrap_err();
/// assert_eq!(err.pattern, "[0-9");
/// assert!(err.to_string().starts_with("pattern `[0-9` for placeholder <PID>: "), "{err}");
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("pattern `{pattern}` for placeholder {placeholder}: {message}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// The placeholder it was given for.
    pub placeholder: String,
    /// What is wrong with it.
    pub message: String,
}

/// A compiled pattern of volatile values.
#[derive(Clone)]
pub(crate) struct Pattern {
    source: String,
    /// Finds values anywhere (recording).
    find: meta::Regex,
    /// Tells whether a whole word is a value (arguments, cwd, env values).
    whole: meta::Regex,
    /// Steps through a stream byte by byte (stdin), to tell where a value ends.
    stream: hybrid::dfa::DFA,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

/// Where a value of a pattern ends in a stream that may still grow.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The value is the first this many bytes.
    Value(usize),
    /// More bytes may still change the answer.
    More,
    /// No value starts here.
    Never,
}

impl Pattern {
    pub(crate) fn new(source: &str, placeholder: &str) -> Result<Self, PatternError> {
        let error = |message: String| PatternError {
            pattern: source.to_owned(),
            placeholder: placeholder.to_owned(),
            message,
        };
        let syntax = regex_automata::util::syntax::Config::new().utf8(false);
        let build = |text: &str| {
            meta::Builder::new()
                .syntax(syntax)
                .configure(meta::Config::new().utf8_empty(false))
                .build(text)
                .map_err(|err| error(err.to_string()))
        };
        let find = build(source)?;
        let whole = build(&format!(r"\A(?:{source})\z"))?;
        let stream = hybrid::dfa::Builder::new()
            .syntax(syntax)
            .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
            .build(source)
            .map_err(|err| error(err.to_string()))?;
        if whole.is_match(b"".as_slice()) {
            return Err(error(
                "it matches the empty string, which is found between any two bytes".into(),
            ));
        }
        Ok(Pattern {
            source: source.to_owned(),
            find,
            whole,
            stream,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The places of the values in `haystack`, leftmost first, none overlapping.
    pub(crate) fn find_iter<'h>(
        &'h self,
        haystack: &'h [u8],
    ) -> impl Iterator<Item = Range<usize>> + 'h {
        self.find
            .find_iter(haystack)
            .map(|found| found.range())
            .filter(|range| !range.is_empty())
    }

    /// Whether `word` as a whole is a value.
    pub(crate) fn is_value(&self, word: &[u8]) -> bool {
        self.whole.is_match(word)
    }

    /// Where the value that starts `input` ends: decided once the pattern can match no
    /// further byte, or at the end of the stream (`ended`). `may_end_here` accepts a value
    /// that ends with the bytes so far when the recording's piece ended there too (the
    /// protocol may wait for an answer before it writes more).
    pub(crate) fn extent(&self, input: &[u8], ended: bool, may_end_here: bool) -> Extent {
        let dfa = &self.stream;
        let mut cache = dfa.create_cache();
        let start = Input::new(input).anchored(Anchored::Yes);
        let Ok(mut state) = dfa.start_state_forward(&mut cache, &start) else {
            return Extent::Never;
        };
        let mut last = None;
        for (at, &byte) in input.iter().enumerate() {
            state = match dfa.next_state(&mut cache, state, byte) {
                Ok(state) => state,
                Err(_) => return Extent::Never,
            };
            // A match state is entered one byte after the match ends.
            if state.is_match() {
                last = Some(at);
            }
            if state.is_dead() || state.is_quit() {
                return last
                    .filter(|&len| len > 0)
                    .map_or(Extent::Never, Extent::Value);
            }
        }
        let at_end = dfa
            .next_eoi_state(&mut cache, state)
            .is_ok_and(|state| state.is_match());
        if at_end {
            last = Some(input.len());
        }
        // No byte could lead to a longer match: the value is decided without one.
        let mut exhausted = || {
            (0..=u8::MAX).all(|byte| {
                dfa.next_state(&mut cache, state, byte)
                    .map_or(true, |next| next.is_dead() || next.is_quit())
            })
        };
        match last.filter(|&len| len > 0) {
            Some(len) if ended || (may_end_here && at_end && len == input.len()) => {
                Extent::Value(len)
            }
            Some(len) if len < input.len() && exhausted() => Extent::Value(len),
            None if ended => Extent::Never,
            _ => Extent::More,
        }
    }
}

/// The name of the `n`th distinct value of a placeholder: `<PID>`, `<PID-2>`, `<PID-3>`...
pub(crate) fn numbered(placeholder: &str, n: usize) -> String {
    match (n, placeholder.strip_suffix('>')) {
        (1, _) => placeholder.to_owned(),
        (n, Some(open)) => format!("{open}-{n}>"),
        (n, None) => format!("{placeholder}-{n}"),
    }
}

/// A piece of recorded bytes: as recorded, or a placeholder of a volatile value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(Vec<u8>),
    /// A placeholder, by name.
    Slot(String),
    /// The digits of a length header ([`Framing`](crate::Framing)), as stored, and their
    /// value: any digits in the input; the body's length now in the output.
    Length(Vec<u8>, usize),
}

/// The placeholders of a cassette, compiled: what a replay matches live values against.
#[derive(Clone, Debug)]
pub(crate) struct Volatiles {
    patterns: BTreeMap<String, Result<Pattern, PatternError>>,
    /// The placeholders' names, as bytes, longest first (so `<PID-12>` is not read as
    /// `<PID-1>` and a `2>`).
    names: Vec<(Vec<u8>, String)>,
    /// The bytes a name starts with.
    firsts: [bool; 256],
    /// Whether length headers are cut out too.
    framed: bool,
    /// What the digits of a length header match.
    digits: Pattern,
}

impl Volatiles {
    pub(crate) fn of(placeholders: &BTreeMap<String, Placeholder>, framed: bool) -> Self {
        let patterns: BTreeMap<String, Result<Pattern, PatternError>> = placeholders
            .iter()
            .map(|(name, placeholder)| (name.clone(), Pattern::new(&placeholder.pattern, name)))
            .collect();
        let mut names: Vec<(Vec<u8>, String)> = patterns
            .keys()
            .map(|name| (name.as_bytes().to_vec(), name.clone()))
            .collect();
        names.sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let mut firsts = [false; 256];
        for (name, _) in &names {
            if let Some(&first) = name.first() {
                firsts[usize::from(first)] = true;
            }
        }
        if framed {
            firsts[usize::from(b'c')] = true;
            firsts[usize::from(b'C')] = true;
        }
        Volatiles {
            patterns,
            names,
            firsts,
            framed,
            digits: Pattern::new("[0-9]+", "(length)").expect("a fixed pattern"),
        }
    }

    /// What a length header's digits match.
    pub(crate) fn digits(&self) -> &Pattern {
        &self.digits
    }

    pub(crate) fn pattern(&self, name: &str) -> Result<&Pattern, &PatternError> {
        self.patterns
            .get(name)
            .expect("a slot names a placeholder of the cassette")
            .as_ref()
    }

    /// `data` cut into literals and placeholders; `None` when it holds no placeholder.
    pub(crate) fn segments(&self, data: &[u8]) -> Option<Vec<Segment>> {
        if self.names.is_empty() && !self.framed {
            return None;
        }
        let mut segments = Vec::new();
        let (mut at, mut literal_from) = (0, 0);
        while at < data.len() {
            let found = self.firsts[usize::from(data[at])]
                .then(|| {
                    self.names
                        .iter()
                        .find(|(name, _)| data[at..].starts_with(name))
                })
                .flatten();
            if let Some((digits, declared)) = self
                .framed
                .then(|| crate::framing::header_at(data, at))
                .flatten()
                .filter(|(digits, _)| !digits.is_empty())
            {
                if literal_from < digits.start {
                    segments.push(Segment::Literal(data[literal_from..digits.start].to_vec()));
                }
                segments.push(Segment::Length(data[digits.clone()].to_vec(), declared));
                at = digits.end;
                literal_from = at;
                continue;
            }
            match found {
                Some((name, text)) => {
                    if literal_from < at {
                        segments.push(Segment::Literal(data[literal_from..at].to_vec()));
                    }
                    segments.push(Segment::Slot(text.clone()));
                    at += name.len();
                    literal_from = at;
                }
                None => at += 1,
            }
        }
        if segments.is_empty() {
            return None;
        }
        if literal_from < data.len() {
            segments.push(Segment::Literal(data[literal_from..].to_vec()));
        }
        Some(segments)
    }

    /// Event `index` of `events` (a write or an output), its placeholders given their bound
    /// values and its length headers the length their bodies have then: a body read on into
    /// the later pieces of the same stream (the same fd, the same way).
    pub(crate) fn render_event(
        &self,
        events: &[Event],
        index: usize,
        bindings: &Bindings,
    ) -> Vec<u8> {
        let (fd, data, output) = match &events[index] {
            Event::Output { fd, data } => (*fd, data, true),
            Event::Write { fd, data } => (*fd, data, false),
            _ => return Vec::new(),
        };
        let Some(segments) = self.segments(&data.0) else {
            return data.0.clone();
        };
        let need = segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Length(_, declared) => Some(*declared),
                _ => None,
            })
            .max();
        let Some(need) = need else {
            return render(&segments, bindings);
        };
        // The header block's end is looked for this far past the body's length.
        let reach = need.saturating_add(64 * 1024);
        let mut following = Vec::new();
        let mut have = 0usize;
        for event in &events[index + 1..] {
            if have > reach {
                break;
            }
            let data = match event {
                Event::Output { fd: other, data } if output && *other == fd => data,
                Event::Write { fd: other, data } if !output && *other == fd => data,
                _ => continue,
            };
            have += data.0.len();
            following.push(
                self.segments(&data.0)
                    .unwrap_or_else(|| vec![Segment::Literal(data.0.clone())]),
            );
        }
        render_followed(&segments, &following, bindings)
    }

    /// Whether `word` matches the recorded `template` (a whole word: an argument, the cwd, an
    /// env value), with the placeholders bound in `bindings` standing for their values and
    /// the others matching a value of their pattern, which is then bound in `bindings`. On a
    /// mismatch `bindings` is as it was.
    pub(crate) fn match_word(&self, template: &[u8], word: &[u8], bindings: &mut Bindings) -> bool {
        let Some(segments) = self.segments(template) else {
            return template == word;
        };
        let mut tentative = bindings.clone();
        if self.match_segments(&segments, word, &mut tentative) {
            *bindings = tentative;
            true
        } else {
            false
        }
    }

    fn match_segments(&self, segments: &[Segment], word: &[u8], bindings: &mut Bindings) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return word.is_empty();
        };
        match first {
            Segment::Literal(literal) => word
                .strip_prefix(&literal[..])
                .is_some_and(|rest_of_word| self.match_segments(rest, rest_of_word, bindings)),
            Segment::Length(..) => {
                let digits = word.iter().take_while(|byte| byte.is_ascii_digit()).count();
                digits > 0 && self.match_segments(rest, &word[digits..], bindings)
            }
            Segment::Slot(name) => {
                if let Some(value) = bindings.get(name) {
                    let value = value.clone();
                    return word.strip_prefix(&value[..]).is_some_and(|rest_of_word| {
                        self.match_segments(rest, rest_of_word, bindings)
                    });
                }
                let Ok(pattern) = self.pattern(name) else {
                    return false;
                };
                let name = Some(name);
                // Longest value first, as the recording's leftmost-first match took it.
                (1..=word.len()).rev().any(|len| {
                    if !pattern.is_value(&word[..len]) {
                        return false;
                    }
                    let mut tried = bindings.clone();
                    if let Some(name) = name {
                        tried.insert(name.clone(), word[..len].to_vec());
                    }
                    let matched = self.match_segments(rest, &word[len..], &mut tried);
                    if matched {
                        *bindings = tried;
                    }
                    matched
                })
            }
        }
    }

    /// For a message: each placeholder in `data` with its pattern and its bound value.
    pub(crate) fn describe(&self, data: &[u8], bindings: &Bindings) -> String {
        let Some(segments) = self.segments(data) else {
            return String::new();
        };
        let mut seen = Vec::new();
        for segment in &segments {
            if let Segment::Slot(name) = segment {
                if !seen.contains(name) {
                    seen.push(name.clone());
                }
            }
        }
        let parts: Vec<String> = seen
            .iter()
            .map(|name| {
                let pattern = match self.pattern(name) {
                    Ok(pattern) => format!("`{}`", pattern.source()),
                    Err(err) => format!("an unusable pattern ({})", err.message),
                };
                match bindings.get(name) {
                    Some(value) => format!(
                        "{name} (pattern {pattern}) bound to {}",
                        crate::cassette::escaped(value)
                    ),
                    None => format!("{name} (pattern {pattern}) not bound yet"),
                }
            })
            .collect();
        parts.join(", ")
    }
}

/// The values bound to placeholders in one replay, by name.
pub(crate) type Bindings = BTreeMap<String, Vec<u8>>;

/// `segments` with each bound placeholder replaced by its value, and each length header
/// given the length its body has then.
pub(crate) fn render(segments: &[Segment], bindings: &Bindings) -> Vec<u8> {
    render_followed(segments, &[], bindings)
}

/// As [`render`], for a piece of a stream that `following` (the later pieces, in order)
/// continues: a body a header of this piece frames may go on in them.
pub(crate) fn render_followed(
    segments: &[Segment],
    following: &[Vec<Segment>],
    bindings: &Bindings,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(bytes) => out.extend_from_slice(bytes),
            Segment::Slot(name) => match bindings.get(name) {
                Some(value) => out.extend_from_slice(value),
                None => out.extend_from_slice(name.as_bytes()),
            },
            Segment::Length(_, declared) => {
                let after = segments[index + 1..]
                    .iter()
                    .chain(following.iter().flatten());
                let length = crate::framing::framed_length(*declared, after, bindings);
                out.extend_from_slice(length.to_string().as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(source: &str) -> Pattern {
        Pattern::new(source, "<X>").unwrap()
    }

    #[test]
    fn a_value_ends_where_the_pattern_can_take_no_further_byte() {
        let digits = pattern("[0-9]+");
        assert_eq!(digits.extent(b"123,", false, false), Extent::Value(3));
        assert_eq!(digits.extent(b"123", false, false), Extent::More);
        assert_eq!(digits.extent(b"123", true, false), Extent::Value(3));
        assert_eq!(digits.extent(b"123", false, true), Extent::Value(3));
        assert_eq!(digits.extent(b"x", false, false), Extent::Never);
        assert_eq!(digits.extent(b"", true, false), Extent::Never);
        let path = pattern("/tmp/sccache[A-Za-z0-9]+");
        assert_eq!(path.extent(b"/tmp/scc", false, false), Extent::More);
        assert_eq!(
            path.extent(b"/tmp/sccacheQ7/testfile.c", false, false),
            Extent::Value(14)
        );
        assert_eq!(path.extent(b"/var", false, false), Extent::Never);
    }

    #[test]
    fn a_pattern_that_matches_nothing_at_all_is_refused() {
        let err = Pattern::new("[0-9]*", "<N>").unwrap_err();
        assert!(err.message.contains("empty string"), "{err}");
    }

    #[test]
    fn numbered_names_keep_the_brackets() {
        assert_eq!(numbered("<PID>", 1), "<PID>");
        assert_eq!(numbered("<PID>", 2), "<PID-2>");
        assert_eq!(numbered("PID", 3), "PID-3");
    }

    #[test]
    fn a_word_binds_its_placeholders_and_a_bound_one_must_repeat() {
        let placeholders = BTreeMap::from([(
            "<DIR>".to_owned(),
            Placeholder {
                pattern: "/tmp/sccache[A-Za-z0-9]+".into(),
            },
        )]);
        let volatiles = Volatiles::of(&placeholders, false);
        let mut bindings = Bindings::new();
        assert!(volatiles.match_word(
            b"<DIR>/testfile.c",
            b"/tmp/sccacheQ7/testfile.c",
            &mut bindings
        ));
        assert_eq!(bindings["<DIR>"], b"/tmp/sccacheQ7");
        assert!(!volatiles.match_word(b"<DIR>/x", b"/tmp/sccacheZZ/x", &mut bindings));
        assert!(volatiles.match_word(b"<DIR>/x", b"/tmp/sccacheQ7/x", &mut bindings));
        assert_eq!(
            render(&volatiles.segments(b"at <DIR>.").unwrap(), &bindings),
            b"at /tmp/sccacheQ7."
        );
    }
}
