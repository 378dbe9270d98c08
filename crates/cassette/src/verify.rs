//! [`Verifier`]: runs every recording of a cassette again, feeding it the recorded input, and
//! says where what the program does now differs from what it did.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport,
    PtySize, Signal, SpawnSpec,
};
use tokio::sync::Notify;

use crate::recorder::lock;
use crate::redact::Found;
use crate::volatile::{render, Bindings, Extent, Segment, Volatiles};
use crate::{Cassette, Event, FdKind, Recording, RecordingSpawner, Redactions, Refusal};

/// Runs the recordings of a cassette again and compares what the program does now with what
/// it did: the output on each fd, the fds lost, the exit, or the refusal.
///
/// Each recorded spawn is started again with its recorded spec, on the spawner given (a
/// `RealSpawner`, to check a fixture against the real program). The verifier plays the
/// protocol's part: it writes the recorded input, closes and signals where the recording
/// did, each only once the program has printed as much as the recording had printed by then
/// (as a replay waits for the input each output answered), or once it stops printing for
/// the [`timeout`](Self::timeout). Then it waits for the exit, killing a program that does
/// not exit within the timeout.
///
/// Fixed redactions are restored first (by default this machine's `<HOME>` and `<TMPDIR>`).
/// A placeholder of a volatile value in the output matches any value of its pattern; one in
/// the input (the arguments, the cwd, stdin) needs a value: one [`bind`](Self::bind) gave, or
/// one the output bound earlier. A spawn whose input holds a placeholder with no value is
/// reported as one that could not run.
///
/// ```
/// use process_transport_cassette::{RecordingSpawner, Verifier};
/// use process_transport_command::Command;
/// use process_transport_real::RealSpawner;
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
/// Command::new("sh").args(["-c", "echo 42"]).spawner(Arc::new(recorder.clone())).output().await.unwrap();
/// let cassette = recorder.cassette();
///
/// let verification = Verifier::new(Arc::new(RealSpawner::new())).verify(&cassette).await;
/// assert!(verification.is_unchanged(), "{verification}");
///
/// // The same recording, claimed to have printed something else: the verifier says so.
/// let mut stale = cassette.clone();
/// for event in &mut stale.spawns[0].events {
///     if let process_transport_cassette::Event::Output { data, .. } = event {
///         data.0 = b"41\n".to_vec();
///     }
/// }
/// let verification = Verifier::new(Arc::new(RealSpawner::new())).verify(&stale).await;
/// assert!(!verification.is_unchanged());
/// assert!(verification.to_string().contains("- 41\n  + 42\n"), "{verification}");
/// # });
/// ```
#[derive(Clone)]
pub struct Verifier {
    spawner: Arc<dyn ProcessSpawner>,
    redactions: Redactions,
    bindings: Bindings,
    timeout: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("bindings", &self.bindings.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What the verifier found for one recorded spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnVerdict {
    /// The spawn's place in the cassette.
    pub index: usize,
    /// Its command line, as recorded.
    pub command: String,
    /// Each difference, as a readable text; empty when the program does what it did.
    pub differences: Vec<String>,
    /// What the program did now, recorded (with nothing redacted), when it could run.
    pub now: Option<Recording>,
}

/// What the verifier found: a verdict per recorded spawn, in cassette order.
///
/// Its `Display` is the report: one paragraph per spawn that differs, each difference a
/// line (`-` the recorded bytes, `+` the bytes now, for output), and a last line counting them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// A verdict per recorded spawn.
    pub spawns: Vec<SpawnVerdict>,
    /// The values the placeholders were bound to, by name.
    pub bindings: BTreeMap<String, Vec<u8>>,
}

impl Verification {
    /// Whether every spawn did what it did when it was recorded.
    pub fn is_unchanged(&self) -> bool {
        self.spawns.iter().all(|spawn| spawn.differences.is_empty())
    }

    /// The spawns that differ.
    pub fn changed(&self) -> impl Iterator<Item = &SpawnVerdict> {
        self.spawns
            .iter()
            .filter(|spawn| !spawn.differences.is_empty())
    }

    /// `cassette` with each spawn that differs recorded again: what the program did now, with
    /// `redactions` redacted, the values bound in this verification keeping the placeholders
    /// they had. Spawns that could not run are kept as they were.
    pub fn updated(&self, cassette: &Cassette, redactions: &Redactions) -> Cassette {
        let redactions = redactions.clone().with_patterns_of(cassette);
        let mut found = Found::seeded(&redactions, &cassette.placeholders, &self.bindings);
        let mut updated = cassette.clone();
        for verdict in self.changed() {
            let Some(now) = &verdict.now else { continue };
            let mut recording = now.clone();
            redactions.redact_recording(&mut recording, &mut found);
            updated.spawns[verdict.index] = recording;
        }
        updated.placeholders.append(&mut found.placeholders);
        updated
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for verdict in self.changed() {
            writeln!(f, "spawn {}: {}", verdict.index, verdict.command)?;
            for difference in &verdict.differences {
                for line in difference.lines() {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        let changed = self.changed().count();
        match changed {
            0 => writeln!(
                f,
                "all {} recorded spawn(s) do what they did",
                self.spawns.len()
            ),
            _ => writeln!(
                f,
                "{changed} of {} recorded spawn(s) differ from the recording",
                self.spawns.len()
            ),
        }
    }
}

impl Verifier {
    /// Verifies on `spawner`, restoring this machine's paths ([`Redactions::new`]), with a
    /// timeout of 10 seconds.
    pub fn new(spawner: Arc<dyn ProcessSpawner>) -> Self {
        Verifier {
            spawner,
            redactions: Redactions::new(),
            bindings: Bindings::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Restores the placeholders of `redactions` in place of the default.
    pub fn restoring(mut self, redactions: &Redactions) -> Self {
        self.redactions = redactions.clone();
        self
    }

    /// Gives the placeholder of a volatile value a value for the input (`<DIR>`, say, a
    /// directory made for the run).
    pub fn bind(mut self, placeholder: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.bindings
            .insert(placeholder.into(), value.as_ref().to_vec());
        self
    }

    /// Gives the placeholders the values in `bindings` (what a replay bound, say).
    pub fn binding_all(mut self, bindings: BTreeMap<String, Vec<u8>>) -> Self {
        self.bindings.extend(bindings);
        self
    }

    /// How long to wait for output the recording had before the next input, and for the
    /// exit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs every recording of `cassette` again, one after another, and compares.
    pub async fn verify(&self, cassette: &Cassette) -> Verification {
        let restored = cassette.clone().restored(&self.redactions);
        let volatiles = Volatiles::of(&restored.placeholders, restored.framing.is_some());
        let mut bindings = self.bindings.clone();
        let mut spawns = Vec::new();
        for (index, recording) in restored.spawns.iter().enumerate() {
            let (differences, now) = self.run(recording, &volatiles, &mut bindings).await;
            spawns.push(SpawnVerdict {
                index,
                command: cassette.spawns[index].command_line(),
                differences,
                now,
            });
        }
        Verification { spawns, bindings }
    }

    /// Runs one recording again: the differences, and what it did now.
    async fn run(
        &self,
        recording: &Recording,
        volatiles: &Volatiles,
        bindings: &mut Bindings,
    ) -> (Vec<String>, Option<Recording>) {
        let spec = match spec_of(recording, volatiles, bindings) {
            Ok(spec) => spec,
            Err(missing) => return (vec![missing], None),
        };
        let recorder = RecordingSpawner::new(self.spawner.clone()).redacting(Redactions::none());
        let watch = Arc::new(Watch::default());
        let spawned = recorder
            .spawn_process(Box::new(Driver(watch.clone())), spec)
            .await;
        let transport = match (spawned, &recording.refused) {
            (Err(err), Some(refusal)) if Refusal::of(&err) == *refusal => {
                return (Vec::new(), recorder.cassette().spawns.pop());
            }
            (Err(err), refused) => {
                let was = match refused {
                    Some(refusal) => format!("refused ({})", refusal.error()),
                    None => "spawned".to_owned(),
                };
                return (
                    vec![format!("spawn: recorded {was}, now refused ({err})")],
                    recorder.cassette().spawns.pop(),
                );
            }
            (Ok(transport), Some(refusal)) => {
                let _ = transport.signal_process(Signal::Kill);
                transport.ended().await;
                return (
                    vec![format!(
                        "spawn: recorded refused ({}), now it spawns",
                        refusal.error()
                    )],
                    recorder.cassette().spawns.pop(),
                );
            }
            (Ok(transport), None) => transport,
        };
        let mut differences = Vec::new();
        if let Err(missing) = self
            .drive(recording, &transport, &watch, volatiles, bindings)
            .await
        {
            differences.push(missing);
        }
        let ended = tokio::time::timeout(self.timeout, transport.ended()).await;
        if ended.is_err() {
            differences.push(format!(
                "exit: none within {:?} of the last input; killed",
                self.timeout
            ));
            let _ = transport.signal_process(Signal::Kill);
            transport.ended().await;
        }
        // The losses and the exit are delivered before `ended` returns.
        let now = recorder
            .cassette()
            .spawns
            .pop()
            .expect("the spawn was recorded");
        differences.extend(compare(recording, &now, volatiles, bindings));
        (differences, Some(now))
    }

    /// Plays the protocol's part of `recording` on `transport`: each write, close, signal and
    /// resize once the program printed as much as the recording had by then.
    async fn drive(
        &self,
        recording: &Recording,
        transport: &Arc<dyn ProcessTransport>,
        watch: &Watch,
        volatiles: &Volatiles,
        bindings: &mut Bindings,
    ) -> Result<(), String> {
        let mut printed: BTreeMap<u32, usize> = BTreeMap::new();
        for (index, event) in recording.events.iter().enumerate() {
            if let Event::Output { fd, data } = event {
                let len = match volatiles.segments(&data.0) {
                    Some(segments) => render(&segments, bindings).len(),
                    None => data.0.len(),
                };
                *printed.entry(*fd).or_default() += len;
                continue;
            }
            if matches!(event, Event::Lost { .. } | Event::Exited { .. }) {
                continue;
            }
            watch.wait_for(&printed, self.timeout).await;
            match event {
                Event::Write { fd, data } => {
                    input_bytes(&data.0, volatiles, bindings).map_err(|name| {
                        format!(
                            "input: fd {fd} holds {name}, which has no value; bind one to verify"
                        )
                    })?;
                    let bytes = volatiles.render_event(&recording.events, index, bindings);
                    if let Err(err) = transport.write_to_child(ChildFd(*fd), &bytes) {
                        return Err(format!(
                            "input: the recorded write of {} byte(s) on fd {fd} was refused: {err}",
                            bytes.len()
                        ));
                    }
                }
                Event::Close { fd } => transport.close_child_fd(ChildFd(*fd)),
                Event::Signal { signal } => {
                    if let Ok(signal) = signal.parse::<Signal>() {
                        let _ = transport.signal_process(signal);
                    }
                }
                Event::Resize { rows, cols } => {
                    let _ = transport.resize_pty(PtySize::new(*rows, *cols));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `data` (input) with each placeholder replaced by its value; the first placeholder with no
/// value is the error.
fn input_bytes(data: &[u8], volatiles: &Volatiles, bindings: &Bindings) -> Result<Vec<u8>, String> {
    match volatiles.segments(data) {
        None => Ok(data.to_vec()),
        Some(segments) => {
            if let Some(Segment::Slot(name)) = segments.iter().find(
                |segment| matches!(segment, Segment::Slot(name) if !bindings.contains_key(name)),
            ) {
                return Err(name.clone());
            }
            Ok(render(&segments, bindings))
        }
    }
}

/// The spec `recording` was spawned with, its placeholders given their values; the error
/// names a placeholder with none.
fn spec_of(
    recording: &Recording,
    volatiles: &Volatiles,
    bindings: &Bindings,
) -> Result<SpawnSpec, String> {
    let missing = |what: &str, name: String| {
        format!("spawn: the {what} hold {name}, which has no value; bind one to verify")
    };
    let words: Vec<Vec<u8>> = match &recording.command_bytes {
        Some(words) => words.iter().map(|word| word.0.clone()).collect(),
        None => recording
            .command
            .iter()
            .map(|word| word.as_bytes().to_vec())
            .collect(),
    };
    let words = words
        .iter()
        .map(|word| input_bytes(word, volatiles, bindings))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|name| missing("arguments", name))?;
    let Some((executable, args)) = words.split_first() else {
        return Err("spawn: the recording has no command".into());
    };
    let mut spec = SpawnSpec::new(OsStr::from_bytes(executable));
    for arg in args {
        spec = spec.arg(OsStr::from_bytes(arg));
    }
    if let Some(cwd) = &recording.cwd {
        let cwd = input_bytes(cwd.as_bytes(), volatiles, bindings)
            .map_err(|name| missing("working directory", name))?;
        spec = spec.cwd(OsStr::from_bytes(&cwd));
    }
    if recording.env_cleared {
        spec = spec.env_clear();
    }
    for name in &recording.env_removed {
        spec = spec.env_remove(name);
    }
    for name in &recording.env {
        let value = match recording.env_values.get(name) {
            Some(value) => input_bytes(value.as_bytes(), volatiles, bindings)
                .map_err(|name| missing("environment values", name))?,
            // Only the name was recorded: the value this process has, if any.
            None => match std::env::var_os(name) {
                Some(value) => value.as_encoded_bytes().to_vec(),
                None => continue,
            },
        };
        spec = spec.env(name, OsStr::from_bytes(&value));
    }
    if let Some(uid) = recording.uid {
        spec = spec.uid(uid);
    }
    if let Some(gid) = recording.gid {
        spec = spec.gid(gid);
    }
    if let Some(group) = recording.process_group {
        spec = spec.process_group(group);
    }
    if let Some(arg0) = &recording.arg0 {
        spec = spec.arg0(arg0);
    }
    for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
        spec = spec.no_child_fd(fd);
    }
    for (fd, kind) in &recording.fds {
        let mapping = match kind {
            // A parent fd above 2 was the recording process's own; there is none here.
            FdKind::Inherit(parent) if *parent > 2 => ChildFdMapping::Null,
            kind => ChildFdMapping::from(*kind),
        };
        spec = spec.child_fd(ChildFd(*fd), mapping);
    }
    if recording.pty {
        spec = spec.use_pty(true);
    }
    if let Some(size) = recording.pty_size {
        spec = spec.pty_size(PtySize::new(size.rows, size.cols));
    }
    Ok(spec)
}

/// What `recording` and `now` (what the program did again) differ in: the output on each
/// fd (placeholders matching values of their patterns), the output fds lost, the exit.
fn compare(
    recording: &Recording,
    now: &Recording,
    volatiles: &Volatiles,
    bindings: &mut Bindings,
) -> Vec<String> {
    let streams = |recording: &Recording| {
        let mut streams: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for event in &recording.events {
            if let Event::Output { fd, data } = event {
                streams.entry(*fd).or_default().extend_from_slice(&data.0);
            }
        }
        streams
    };
    // Only the fds the parent reads: whether a pipe to the child is reported lost depends on
    // whether the child exits before the protocol closes it, which no run repeats.
    let lost = |recording: &Recording| -> BTreeSet<u32> {
        recording
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Lost { fd } if recording.fds.get(fd) != Some(&FdKind::ParentWrites) => {
                    Some(*fd)
                }
                _ => None,
            })
            .collect()
    };
    let end = |recording: &Recording| recording.events.iter().find_map(Event::end);
    let (recorded, fresh) = (streams(recording), streams(now));
    let mut differences = Vec::new();
    let fds: BTreeSet<u32> = recorded.keys().chain(fresh.keys()).copied().collect();
    for fd in fds {
        let empty = Vec::new();
        let (expected, got) = (
            recorded.get(&fd).unwrap_or(&empty),
            fresh.get(&fd).unwrap_or(&empty),
        );
        if let Err(expected) = match_output(expected, got, volatiles, bindings) {
            differences.push(format!(
                "fd {fd}: the output differs (- recorded, + now):\n{}",
                line_diff(&expected, got)
            ));
        }
    }
    let (lost_then, lost_now) = (lost(recording), lost(now));
    if lost_then != lost_now {
        differences.push(format!(
            "lost fds: recorded {lost_then:?}, now {lost_now:?}"
        ));
    }
    let (end_then, end_now) = (end(recording), end(now));
    if end_then != end_now {
        let show = |end: Option<ProcessEnd>| match end {
            Some(end) => describe_end(end),
            None => "no exit".to_owned(),
        };
        differences.push(format!(
            "exit: recorded {}, now {}",
            show(end_then),
            show(end_now)
        ));
    }
    differences
}

fn describe_end(end: ProcessEnd) -> String {
    match (end.exit_code(), end.signal()) {
        (_, Some(signal)) => format!("signal {signal}"),
        (Some(code), None) => format!("code {code}"),
        (None, None) => "an unknown end".to_owned(),
    }
}

/// Whether the output `got` matches the recorded `expected`: literals byte for byte, a bound
/// placeholder as its value, an unbound one as a value of its pattern (bound then). On a
/// mismatch, the recorded output with the values bound so far put in.
fn match_output(
    expected: &[u8],
    got: &[u8],
    volatiles: &Volatiles,
    bindings: &mut Bindings,
) -> Result<(), Vec<u8>> {
    let Some(segments) = volatiles.segments(expected) else {
        return if expected == got {
            Ok(())
        } else {
            Err(expected.to_vec())
        };
    };
    let mut tentative = bindings.clone();
    let mut at = 0;
    for segment in &segments {
        let rest = &got[at..];
        let literal = match segment {
            Segment::Literal(bytes) => Some(bytes.clone()),
            Segment::Slot(name) => tentative.get(name).cloned(),
            Segment::Length(..) => None,
        };
        if let Some(literal) = literal {
            if !rest.starts_with(&literal) {
                return Err(render(&segments, &tentative));
            }
            at += literal.len();
            continue;
        }
        let (pattern, name) = match segment {
            Segment::Slot(name) => (volatiles.pattern(name).ok(), Some(name)),
            // A length header's digits: any digits.
            Segment::Length(..) => (Some(volatiles.digits()), None),
            Segment::Literal(_) => unreachable!("a literal was taken above"),
        };
        match pattern.map(|pattern| pattern.extent(rest, true, false)) {
            Some(Extent::Value(len)) => {
                if let Some(name) = name {
                    tentative.insert(name.clone(), rest[..len].to_vec());
                }
                at += len;
            }
            _ => return Err(render(&segments, &tentative)),
        }
    }
    if at == got.len() {
        *bindings = tentative;
        Ok(())
    } else {
        Err(render(&segments, &tentative))
    }
}

/// A line diff of two outputs, for reading: the lines both share at the start and the end
/// are left out (their count said, in parentheses), the lines between shown as `- recorded` and `+ now`,
/// each escaped as in a Rust byte string without its quotes.
fn line_diff(recorded: &[u8], now: &[u8]) -> String {
    let lines = |data: &[u8]| -> Vec<Vec<u8>> {
        data.split_inclusive(|&byte| byte == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let (old, new) = (lines(recorded), lines(now));
    let head = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let show = |line: &[u8]| {
        let text = line
            .strip_suffix(b"\n")
            .unwrap_or(line)
            .escape_ascii()
            .to_string();
        if line.ends_with(b"\n") {
            text
        } else {
            format!("{text} (no newline at the end)")
        }
    };
    let mut text = String::new();
    if head > 0 {
        text.push_str(&format!("({head} line(s) the same)\n"));
    }
    for line in &old[head..old.len() - tail] {
        text.push_str(&format!("- {}\n", show(line)));
    }
    for line in &new[head..new.len() - tail] {
        text.push_str(&format!("+ {}\n", show(line)));
    }
    if tail > 0 {
        text.push_str(&format!("({tail} line(s) the same)\n"));
    }
    text
}

/// What the program did so far, as the verifier waits on it.
#[derive(Default)]
struct Watch {
    seen: Mutex<Seen>,
    changed: Notify,
}

#[derive(Default)]
struct Seen {
    printed: BTreeMap<u32, usize>,
    lost: BTreeSet<u32>,
    exited: bool,
}

impl Watch {
    /// Waits until the program printed at least `printed` on each fd (or lost the fd, or
    /// exited), or printed nothing new for `timeout`.
    async fn wait_for(&self, printed: &BTreeMap<u32, usize>, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let seen = lock(&self.seen);
                let caught_up = printed.iter().all(|(fd, len)| {
                    seen.exited
                        || seen.lost.contains(fd)
                        || seen.printed.get(fd).copied().unwrap_or(0) >= *len
                });
                if caught_up {
                    return;
                }
            }
            if tokio::time::timeout(timeout, changed).await.is_err() {
                return;
            }
        }
    }

    fn update(&self, change: impl FnOnce(&mut Seen)) {
        change(&mut lock(&self.seen));
        self.changed.notify_waiters();
    }
}

/// The protocol the verifier's spawns run with: it only watches.
struct Driver(Arc<Watch>);

impl ProcessProtocol for Driver {
    fn make_connection(&mut self, _transport: Arc<dyn ProcessTransport>) {}

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        self.0
            .update(|seen| *seen.printed.entry(fd.0).or_default() += data.len());
    }

    fn child_connection_lost(&mut self, fd: ChildFd) {
        self.0.update(|seen| {
            seen.lost.insert(fd.0);
        });
    }

    fn process_exited(&mut self, _reason: ProcessEnd) {
        self.0.update(|seen| seen.exited = true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_diff_shows_the_lines_between_what_both_share() {
        assert_eq!(
            line_diff(b"a\nb\nc\n", b"a\nB\nc\n"),
            "(1 line(s) the same)\n- b\n+ B\n(1 line(s) the same)\n"
        );
        assert_eq!(line_diff(b"x", b""), "- x (no newline at the end)\n");
    }
}
