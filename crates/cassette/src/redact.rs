//! [`Redactions`]: secrets and machine paths replaced by placeholders before a cassette is
//! stored, and put back when it is replayed.

use std::collections::{BTreeMap, BTreeSet};

use memchr::memmem;

use crate::framing;
use crate::volatile::{numbered, Pattern, PatternError};
use crate::{Bytes, Cassette, Event, Framing, Placeholder, Recording};

/// What a cassette must not store, each with the placeholder it stores instead.
///
/// A recording is *redacted* when it is taken from a [`RecordingSpawner`](crate::RecordingSpawner):
/// every occurrence of a value, in the command line, the working directory, kept environment
/// values and the bytes each way, becomes its placeholder. A replay *restores* it: each
/// placeholder becomes the value this machine gives, so that a spawn asked for with this
/// machine's home directory matches a recording made in another, and the replayed output
/// names this machine's paths. A value split across two pieces of output is found all the
/// same: the placeholder takes the place of its first byte.
///
/// [`new`](Self::new) holds this machine's paths: the home directory (`<HOME>`) and the
/// temporary directory (`<TMPDIR>`); [`none`](Self::none) holds nothing. Add secrets with
/// [`secret`](Self::secret) or [`secret_env`](Self::secret_env). Values are matched as bytes,
/// longest first; a value shorter than two bytes, or `/`, is ignored, as it would match
/// nearly everywhere.
///
/// ```
/// use process_transport_cassette::Redactions;
///
/// let redactions = Redactions::none().secret("hunter2", "<PASSWORD>");
/// assert_eq!(redactions.redact(b"login: hunter2\n"), b"login: <PASSWORD>\n");
/// assert_eq!(redactions.restore(b"login: <PASSWORD>\n"), b"login: hunter2\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redactions {
    /// Value, placeholder; longest value first.
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Patterns of volatile values, each with its placeholder, in the order given.
    patterns: Vec<(Pattern, String)>,
    /// Whether `Content-Length` headers are kept true ([`Framing::ContentLength`]).
    framed: bool,
}

/// [`Redactions`] as plain data.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct RedactionParts {
    pairs: Vec<(Bytes, Bytes)>,
    patterns: Vec<(String, String)>,
    framed: bool,
}

/// The distinct values the patterns found in one cassette, in the order they were first
/// found, each with its numbered placeholder.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Per pattern: value, placeholder.
    values: Vec<Vec<(Vec<u8>, String)>>,
    /// The placeholders handed out, with their patterns, for the cassette to store.
    pub(crate) placeholders: BTreeMap<String, Placeholder>,
    /// Every name handed out or known already.
    taken: BTreeSet<String>,
}

impl Found {
    /// A table that already knows the placeholders of a cassette (`placeholders`, whose names
    /// a new value never takes) and the values `bindings` gave some of them (which keep
    /// their names): for recording again into that cassette.
    pub(crate) fn seeded(
        redactions: &Redactions,
        placeholders: &BTreeMap<String, Placeholder>,
        bindings: &BTreeMap<String, Vec<u8>>,
    ) -> Self {
        let mut found = Found {
            values: vec![Vec::new(); redactions.patterns.len()],
            placeholders: BTreeMap::new(),
            taken: placeholders.keys().cloned().collect(),
        };
        for (name, value) in bindings {
            let Some(placeholder) = placeholders.get(name) else {
                continue;
            };
            if let Some(index) = redactions
                .patterns
                .iter()
                .position(|(pattern, _)| pattern.source() == placeholder.pattern)
            {
                found.values[index].push((value.clone(), name.clone()));
            }
        }
        found
    }

    /// The placeholder of `value`, found by pattern `index` of `patterns`: the one it had
    /// before, or the next number no placeholder has.
    fn placeholder(
        &mut self,
        patterns: &[(Pattern, String)],
        index: usize,
        value: &[u8],
    ) -> Vec<u8> {
        if self.values.len() < patterns.len() {
            self.values.resize_with(patterns.len(), Vec::new);
        }
        let known = &mut self.values[index];
        if let Some((_, name)) = known.iter().find(|(seen, _)| seen == value) {
            return name.clone().into_bytes();
        }
        let (pattern, base) = &patterns[index];
        let name = (1..)
            .map(|n| numbered(base, n))
            .find(|name| !self.taken.contains(name))
            .expect("some number is free");
        self.taken.insert(name.clone());
        known.push((value.to_vec(), name.clone()));
        self.placeholders.insert(
            name.clone(),
            Placeholder {
                pattern: pattern.source().to_owned(),
            },
        );
        name.into_bytes()
    }
}

impl Default for Redactions {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactions {
    /// This machine's home directory as `<HOME>` and its temporary directory as `<TMPDIR>`.
    pub fn new() -> Self {
        let mut redactions = Self::none();
        if let Some(home) = std::env::var_os("HOME") {
            redactions = redactions.secret(trimmed(home.as_encoded_bytes()), "<HOME>");
        }
        let temp = std::env::temp_dir();
        redactions.secret(trimmed(temp.as_os_str().as_encoded_bytes()), "<TMPDIR>")
    }

    /// Nothing redacted.
    pub fn none() -> Self {
        Redactions {
            pairs: Vec::new(),
            patterns: Vec::new(),
            framed: false,
        }
    }

    /// Replaces every match of `pattern` (a regular expression in the syntax of the `regex`
    /// crate, matched against bytes) with a placeholder: a volatile value, such as a
    /// temporary directory or a pid the code makes while it runs, which no fixed value can
    /// name before the run.
    ///
    /// Each distinct value found in a cassette gets a placeholder of its own, numbered in
    /// the order they were found: `placeholder`, then `placeholder` with `-2`, `-3`... before
    /// its closing `>` (`<PID>`, `<PID-2>`). The cassette stores the pattern of each, not the
    /// value. A replay matches the placeholder against whatever the live spawn has in its
    /// place (in the arguments, the cwd, a kept env value or the bytes written to the child)
    /// provided it matches the pattern, binds that value to the placeholder for the rest of
    /// the replay, and puts the bound value where the placeholder stands in the output it
    /// delivers. A placeholder in the output that nothing bound yet is delivered as it is
    /// stored.
    ///
    /// Patterns run on the bytes as they were, before fixed values are replaced; where a
    /// fixed value and a match start at one place, the longer one is taken.
    ///
    /// ```
    /// use process_transport_cassette::Redactions;
    ///
    /// let redactions = Redactions::none().pattern(r#""processId": *[0-9]+"#, "<PID>")?;
    /// assert_eq!(
    ///     redactions.redact(br#"{"processId": 4711, "parent": {"processId": 1}}"#),
    ///     br#"{<PID>, "parent": {<PID-2>}}"#
    /// );
    /// # Ok::<(), process_transport_cassette::PatternError>(())
    /// ```
    ///
    /// # Errors
    /// A [`PatternError`] naming the pattern when it does not parse, matches the empty string,
    /// or the placeholder is empty.
    pub fn pattern(
        mut self,
        pattern: &str,
        placeholder: impl Into<String>,
    ) -> Result<Self, PatternError> {
        let placeholder = placeholder.into();
        if placeholder.is_empty() {
            return Err(PatternError {
                pattern: pattern.to_owned(),
                placeholder,
                message: "the placeholder is empty, so a replay could never find it".into(),
            });
        }
        let compiled = Pattern::new(pattern, &placeholder)?;
        self.patterns.retain(|(_, known)| *known != placeholder);
        self.patterns.push((compiled, placeholder));
        Ok(self)
    }

    /// These redactions with a pattern for each pattern `cassette`'s placeholders hold that
    /// they do not hold yet, under the placeholder's name without its number: what a tool
    /// that knows only the file (`process-cassette verify --update`) records again with.
    pub fn with_patterns_of(mut self, cassette: &Cassette) -> Self {
        let mut by_pattern: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, placeholder) in &cassette.placeholders {
            let shortest = by_pattern.entry(&placeholder.pattern).or_insert(name);
            if name.len() < shortest.len() {
                *shortest = name;
            }
        }
        for (source, name) in by_pattern {
            if self
                .patterns
                .iter()
                .any(|(pattern, _)| pattern.source() == source)
            {
                continue;
            }
            if let Ok(pattern) = Pattern::new(source, name) {
                self.patterns.push((pattern, name.to_owned()));
            }
        }
        self
    }

    /// Keeps each `Content-Length: N` header true ([`Framing::ContentLength`]): where a
    /// placeholder or a restored value changes the length of the body a header frames, the
    /// header is given the body's new length; when recording, when restoring, and in what a
    /// replay delivers once it has put bound values in. A replay matches the digits of such a
    /// header in the input as any digits (the body is still compared), and a cassette
    /// recorded with it says so, so that a replay keeps it without being asked.
    ///
    /// Without it, bytes inside a length-framed message must not be redacted: a placeholder
    /// of another length than its value leaves the header naming the wrong length.
    pub fn framed_by_content_length(mut self) -> Self {
        self.framed = true;
        self
    }

    /// These redactions as plain data, to hand to another process (a shim).
    pub(crate) fn parts(&self) -> RedactionParts {
        RedactionParts {
            pairs: self
                .pairs
                .iter()
                .map(|(value, placeholder)| (Bytes(value.clone()), Bytes(placeholder.clone())))
                .collect(),
            patterns: self
                .patterns
                .iter()
                .map(|(pattern, placeholder)| (pattern.source().to_owned(), placeholder.clone()))
                .collect(),
            framed: self.framed,
        }
    }

    /// Redactions made again from [`parts`](Self::parts).
    #[cfg(feature = "cli")]
    pub(crate) fn from_parts(parts: &RedactionParts) -> Result<Self, PatternError> {
        let mut redactions = Redactions::none();
        redactions.pairs = parts
            .pairs
            .iter()
            .map(|(value, placeholder)| (value.0.clone(), placeholder.0.clone()))
            .collect();
        for (pattern, placeholder) in &parts.patterns {
            redactions = redactions.pattern(pattern, placeholder.clone())?;
        }
        redactions.framed = parts.framed;
        Ok(redactions)
    }

    /// Whether any pattern was given.
    pub(crate) fn has_patterns(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// Whether length headers are kept true.
    pub(crate) fn is_framed(&self) -> bool {
        self.framed
    }

    /// Replaces `value` with `placeholder`. A value shorter than two bytes, or `/`, is
    /// ignored; a placeholder given twice keeps its last value. An empty placeholder, which
    /// a replay could never find again, is taken as `<REDACTED>` (`<REDACTED-2>`, `-3` and so
    /// on when that is taken): the value is still kept out of the cassette, and restored.
    ///
    /// ```
    /// use process_transport_cassette::Redactions;
    ///
    /// let redactions = Redactions::none().secret("hunter2", "").secret("swordfish", "");
    /// assert_eq!(redactions.redact(b"hunter2 swordfish"), b"<REDACTED> <REDACTED-2>");
    /// assert_eq!(redactions.restore(b"<REDACTED-2>"), b"swordfish");
    /// ```
    pub fn secret(mut self, value: impl AsRef<[u8]>, placeholder: impl Into<String>) -> Self {
        let value = value.as_ref();
        let mut placeholder = placeholder.into().into_bytes();
        if placeholder.is_empty() {
            placeholder = self.unused_default_placeholder();
        }
        self.pairs.retain(|(_, known)| *known != placeholder);
        if value.len() >= 2 && value != b"/" {
            self.pairs.push((value.to_vec(), placeholder));
            self.pairs
                .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        }
        self
    }

    /// `<REDACTED>`, or the first of `<REDACTED-2>`, `<REDACTED-3>`, ... no pair holds.
    fn unused_default_placeholder(&self) -> Vec<u8> {
        (1..)
            .map(|n: usize| match n {
                1 => b"<REDACTED>".to_vec(),
                n => format!("<REDACTED-{n}>").into_bytes(),
            })
            .find(|candidate| self.pairs.iter().all(|(_, known)| known != candidate))
            .expect("some number is free")
    }

    /// Replaces the value of the environment variable `name`, when it is set, with `<name>`.
    pub fn secret_env(self, name: &str) -> Self {
        match std::env::var_os(name) {
            Some(value) => self.secret(value.as_encoded_bytes(), format!("<{name}>")),
            None => self,
        }
    }

    /// `data` with every value replaced by its placeholder.
    pub fn redact(&self, data: &[u8]) -> Vec<u8> {
        let mut chunks = [data.to_vec()];
        self.redact_stream(&mut chunks, &mut Found::default());
        chunks.concat()
    }

    /// `data` with every placeholder replaced by its value.
    pub fn restore(&self, data: &[u8]) -> Vec<u8> {
        self.restore_stream(&mut [data.to_vec()]).concat()
    }

    fn redact_stream(&self, chunks: &mut [Vec<u8>], found: &mut Found) {
        let pairs: Vec<_> = self.pairs.iter().map(|(v, p)| (&v[..], &p[..])).collect();
        replace_in_stream(chunks, &pairs, Some((&self.patterns, found)), self.framed);
    }

    fn restore_stream<'a>(&self, chunks: &'a mut [Vec<u8>]) -> &'a mut [Vec<u8>] {
        let mut pairs: Vec<_> = self.pairs.iter().map(|(v, p)| (&p[..], &v[..])).collect();
        pairs.sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        replace_in_stream(chunks, &pairs, None, self.framed);
        chunks
    }

    /// Whether a value occurs anywhere in `recording`: when none does, redacting it changes
    /// nothing, and it can be written as it is. Each stream is scanned piece by piece, with
    /// the bytes around each boundary scanned too, and nothing is copied but those.
    pub(crate) fn occur_in(&self, recording: &Recording) -> bool {
        if self.has_patterns() {
            return true;
        }
        let values: Vec<&[u8]> = self.pairs.iter().map(|(value, _)| &value[..]).collect();
        any_in(&values, recording)
    }

    /// `recording` with every value replaced by its placeholder; the values the patterns
    /// find are numbered in `found`, which one cassette's recordings share.
    pub(crate) fn redact_recording(&self, recording: &mut Recording, found: &mut Found) {
        if self.occur_in(recording) {
            self.apply(recording, |chunks| self.redact_stream(chunks, found));
        }
    }

    /// `recording` with every placeholder replaced by its value.
    pub(crate) fn restore_recording(&self, recording: &mut Recording) {
        let placeholders: Vec<&[u8]> = self.pairs.iter().map(|(_, p)| &p[..]).collect();
        if any_in(&placeholders, recording) {
            self.apply(recording, |chunks| {
                self.restore_stream(chunks);
            });
        }
    }

    fn apply(&self, recording: &mut Recording, mut stream: impl FnMut(&mut [Vec<u8>])) {
        let mut text = |value: &mut String| {
            let mut chunk = [std::mem::take(value).into_bytes()];
            stream(&mut chunk);
            let [bytes] = chunk;
            *value = String::from_utf8_lossy(&bytes).into_owned();
        };
        recording.command.iter_mut().for_each(&mut text);
        recording.cwd.iter_mut().for_each(&mut text);
        recording.env_values.values_mut().for_each(&mut text);
        for word in recording.command_bytes.iter_mut().flatten() {
            let mut chunk = [std::mem::take(&mut word.0)];
            stream(&mut chunk);
            let [bytes] = chunk;
            word.0 = bytes;
        }
        // Each direction of each fd is one stream, so that a value split across pieces is
        // found.
        let mut streams: BTreeMap<(bool, u32), Vec<usize>> = BTreeMap::new();
        for (index, event) in recording.events.iter().enumerate() {
            match event {
                Event::Write { fd, .. } => streams.entry((false, *fd)).or_default().push(index),
                Event::Output { fd, .. } => streams.entry((true, *fd)).or_default().push(index),
                _ => {}
            }
        }
        let mut emptied = Vec::new();
        for indices in streams.values() {
            let mut chunks: Vec<Vec<u8>> = indices
                .iter()
                .map(|&index| std::mem::take(data_of(&mut recording.events[index])))
                .collect();
            stream(&mut chunks);
            for (&index, chunk) in indices.iter().zip(chunks) {
                if chunk.is_empty() {
                    emptied.push(index);
                }
                *data_of(&mut recording.events[index]) = chunk;
            }
        }
        // A piece whose bytes all went into a placeholder before it is dropped: an empty
        // write or output is not an event.
        emptied.sort_unstable();
        for index in emptied.into_iter().rev() {
            recording.events.remove(index);
        }
    }
}

impl Cassette {
    /// This cassette with every value of `redactions` replaced by its placeholder.
    pub fn redacted(mut self, redactions: &Redactions) -> Cassette {
        if redactions.framed {
            self.framing = Some(Framing::ContentLength);
        }
        let mut found = Found::default();
        for recording in &mut self.spawns {
            redactions.redact_recording(recording, &mut found);
        }
        self.placeholders.append(&mut found.placeholders);
        self
    }

    /// This cassette with every placeholder of `redactions` replaced by its value (length
    /// headers kept true when the cassette or the redactions say the streams are framed).
    pub fn restored(mut self, redactions: &Redactions) -> Cassette {
        let mut framed = redactions.clone();
        framed.framed |= self.framing.is_some();
        let redactions = &framed;
        self.spawns
            .iter_mut()
            .for_each(|recording| redactions.restore_recording(recording));
        self
    }
}

/// Whether a needle occurs anywhere in `recording`: in its texts, or in the bytes of a stream
/// (each direction of each fd), across the boundaries of its pieces too. Nothing is copied
/// but the bytes around each boundary.
fn any_in(needles: &[&[u8]], recording: &Recording) -> bool {
    if needles.is_empty() {
        return false;
    }
    let finders: Vec<memmem::Finder<'_>> = needles.iter().map(memmem::Finder::new).collect();
    let found = |data: &[u8]| finders.iter().any(|finder| finder.find(data).is_some());
    let texts = recording
        .command
        .iter()
        .chain(&recording.cwd)
        .chain(recording.env_values.values());
    if texts.into_iter().any(|text| found(text.as_bytes())) {
        return true;
    }
    if recording
        .command_bytes
        .iter()
        .flatten()
        .any(|word| found(&word.0))
    {
        return true;
    }
    // The longest value less one byte: what may lie on each side of a boundary.
    let reach = needles.iter().map(|needle| needle.len()).max().unwrap_or(1) - 1;
    let mut tails: BTreeMap<(bool, u32), Vec<u8>> = BTreeMap::new();
    for event in &recording.events {
        let (key, data) = match event {
            Event::Write { fd, data } => ((false, *fd), &data.0),
            Event::Output { fd, data } => ((true, *fd), &data.0),
            _ => continue,
        };
        if found(data) {
            return true;
        }
        let tail = tails.entry(key).or_default();
        if !tail.is_empty() {
            let mut seam = tail.clone();
            seam.extend_from_slice(&data[..data.len().min(reach)]);
            if found(&seam) {
                return true;
            }
        }
        tail.extend_from_slice(&data[data.len().saturating_sub(reach)..]);
        let excess = tail.len().saturating_sub(reach);
        tail.drain(..excess);
    }
    false
}

fn data_of(event: &mut Event) -> &mut Vec<u8> {
    match event {
        Event::Write { data, .. } | Event::Output { data, .. } => &mut data.0,
        _ => unreachable!("only writes and output carry bytes"),
    }
}

fn trimmed(path: &[u8]) -> &[u8] {
    match path {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        _ => path,
    }
}

/// Replaces, in the stream `chunks` make up, each occurrence of a `from` with its `to`
/// (leftmost first; at one place, the first pair in `pairs`). A replacement goes into the
/// chunk its occurrence starts in; later chunks lose the bytes it covered.
fn replace_in_stream(
    chunks: &mut [Vec<u8>],
    pairs: &[(&[u8], &[u8])],
    patterns: Option<(&[(Pattern, String)], &mut Found)>,
    framed: bool,
) {
    let (patterns, mut found) = match patterns {
        Some((patterns, found)) => (patterns, Some(found)),
        None => (&[][..], None),
    };
    if pairs.is_empty() && patterns.is_empty() {
        return;
    }
    let lengths: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let whole: Vec<u8> = if chunks.len() == 1 {
        std::mem::take(&mut chunks[0])
    } else {
        chunks.iter_mut().flat_map(std::mem::take).collect()
    };
    // Every occurrence of every value and every match of every pattern, then the leftmost
    // ones that do not overlap (at one place, the longest; then the first given).
    let mut candidates: Vec<(usize, std::cmp::Reverse<usize>, Replacement)> = pairs
        .iter()
        .enumerate()
        .filter(|(_, (from, _))| !from.is_empty())
        .flat_map(|(pair, (from, _))| {
            memmem::find_iter(&whole, from)
                .map(move |at| (at, std::cmp::Reverse(from.len()), Replacement::Pair(pair)))
        })
        .collect();
    for (index, (pattern, _)) in patterns.iter().enumerate() {
        candidates.extend(pattern.find_iter(&whole).map(|range| {
            (
                range.start,
                std::cmp::Reverse(range.len()),
                Replacement::Pattern(index),
            )
        }));
    }
    if candidates.is_empty() {
        restore_chunks(chunks, &lengths, whole);
        return;
    }
    candidates.sort_unstable();
    // The spans taken, each with what it becomes; placeholders numbered in stream order.
    let mut spans: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut at = 0;
    for (start, std::cmp::Reverse(len), replacement) in candidates {
        if start < at {
            continue;
        }
        let to = match replacement {
            Replacement::Pair(pair) => pairs[pair].1.to_vec(),
            Replacement::Pattern(index) => found
                .as_deref_mut()
                .expect("patterns come with their table")
                .placeholder(patterns, index, &whole[start..start + len]),
        };
        spans.push((start, len, to));
        at = start + len;
    }
    if framed {
        let lengths = framing::rewritten_lengths(&whole, &spans);
        spans.extend(lengths);
        spans.sort_by_key(|(start, _, _)| *start);
    }
    let mut out: Vec<Vec<u8>> = lengths.iter().map(|&len| Vec::with_capacity(len)).collect();
    let (mut chunk, mut chunk_end, mut at) = (0, lengths[0], 0);
    let copy_to = |out: &mut Vec<Vec<u8>>,
                   from: usize,
                   to: usize,
                   chunk: &mut usize,
                   chunk_end: &mut usize| {
        let mut from = from;
        while from < to {
            while from >= *chunk_end {
                *chunk += 1;
                *chunk_end += lengths[*chunk];
            }
            let end = to.min(*chunk_end);
            out[*chunk].extend_from_slice(&whole[from..end]);
            from = end;
        }
    };
    for (start, len, to) in spans {
        copy_to(&mut out, at, start, &mut chunk, &mut chunk_end);
        while start >= chunk_end {
            chunk += 1;
            chunk_end += lengths[chunk];
        }
        out[chunk].extend_from_slice(&to);
        at = start + len;
    }
    copy_to(&mut out, at, whole.len(), &mut chunk, &mut chunk_end);
    for (slot, new) in chunks.iter_mut().zip(out) {
        *slot = new;
    }
}

/// What an occurrence is replaced with: the `to` of a pair, or the placeholder of a
/// pattern's value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Replacement {
    Pair(usize),
    Pattern(usize),
}

/// Puts `whole` back into chunks of `lengths`.
fn restore_chunks(chunks: &mut [Vec<u8>], lengths: &[usize], whole: Vec<u8>) {
    if chunks.len() == 1 {
        chunks[0] = whole;
        return;
    }
    let mut at = 0;
    for (slot, &len) in chunks.iter_mut().zip(lengths) {
        *slot = whole[at..at + len].to_vec();
        at += len;
    }
}
