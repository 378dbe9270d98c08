//! Scripted children: a command registered on a `MemoryProcessReactor` answers on its own.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use process_transport_api::{
    implement::FdMap, ChildFd, DefaultAction, ProcessEnd, ProcessTransport, Signal,
};

use crate::FakeChild;

/// A custom reaction to a signal: called with the child and the signal.
pub type SignalReaction = Arc<dyn Fn(&FakeChild, Signal) + Send + Sync>;

/// What a scripted child does when it receives a signal.
#[derive(Clone)]
pub enum SignalAction {
    /// Dies by the signal: closes its fds and ends with `ProcessEnd::from_signal`. The default
    /// for every signal whose [`default_action`](Signal::default_action) is to terminate.
    Terminate,
    /// Nothing happens (a child that set the signal to be ignored). The default for the
    /// signals a real child ignores by default (`CHLD`, `URG`, `WINCH`), for `CONT`, and for
    /// `STOP`, `TSTP`, `TTIN` and `TTOU`, whose stop a fake cannot model.
    Ignore,
    /// Runs the closure with the child, for any other reaction.
    Custom(SignalReaction),
}

impl fmt::Debug for SignalAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalAction::Terminate => f.write_str("Terminate"),
            SignalAction::Ignore => f.write_str("Ignore"),
            SignalAction::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Output(ChildFd, Vec<u8>),
    Close(ChildFd),
    End(ProcessEnd),
    ExitKeepingFds(ProcessEnd),
    Custom(StartReaction),
    Delay(Duration),
}

/// A start step written as a closure.
#[derive(Clone)]
struct StartReaction(Arc<dyn Fn(&FakeChild) + Send + Sync>);

impl fmt::Debug for StartReaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StartReaction(..)")
    }
}

/// State a script keeps for each child it plays: one script can be registered once and play
/// many spawns. Keyed by the child's spec, which each spawn has its own of.
struct PerChild<T>(Arc<std::sync::Mutex<std::collections::HashMap<usize, T>>>);

impl<T> Clone for PerChild<T> {
    fn clone(&self) -> Self {
        PerChild(self.0.clone())
    }
}

impl<T> Default for PerChild<T> {
    fn default() -> Self {
        PerChild(Arc::default())
    }
}

impl<T: Default> PerChild<T> {
    fn key(child: &FakeChild) -> usize {
        std::ptr::from_ref(child.spec()) as usize
    }

    fn with<R>(&self, child: &FakeChild, f: impl FnOnce(&mut T) -> R) -> R {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(Self::key(child)).or_default())
    }

    fn remove(&self, child: &FakeChild) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&Self::key(child));
    }
}

/// Writes `data` on `fd` as a real child would: a write into a pipe the parent closed kills
/// it by `SIGPIPE`. Returns `false` when the child is gone.
fn write_or_die(child: &FakeChild, fd: ChildFd, data: &[u8]) -> bool {
    if child.write(fd, data).is_ok() {
        return true;
    }
    if child.transport().exited().is_none() {
        child.kill(Signal::Number(SIGPIPE));
    }
    false
}

/// Exits 0 at the end of stdin, unless something (a signal) ended the child first.
fn exit_at_eof(child: &FakeChild) {
    if child.transport().exited().is_none() {
        child.exit(0);
    }
}

/// Linux's number of `SIGPIPE`, which kills a writer into a pipe nobody reads.
const SIGPIPE: i32 = 13;

type StdinReaction = Arc<dyn Fn(&FakeChild, &[u8]) + Send + Sync>;
type EofReaction = Arc<dyn Fn(&FakeChild) + Send + Sync>;

/// The behaviour of a scripted child, built step by step; register it with
/// [`MemoryProcessReactor::register`](crate::MemoryProcessReactor::register).
///
/// A script runs on the caller's thread, deterministically: its start steps (output, closes,
/// an end) right after `make_connection`; its stdin reaction each time the protocol writes
/// to stdin (by default the child reads everything at once); its end-of-file reaction when
/// the protocol closes stdin; its signal actions when the protocol signals it.
///
/// ```
/// use process_transport_api::{ProcessEnd, Signal, SpawnSpec};
/// use process_transport_fakes::{MemoryProcessReactor, Script, SignalAction};
/// # use process_transport_api::{ProcessProtocol, ProcessTransport};
/// # struct P; impl ProcessProtocol for P { fn make_connection(&mut self, t: std::sync::Arc<dyn ProcessTransport>) { t.write(b"hi\n").unwrap(); t.close_stdin(); } }
///
/// let reactor = MemoryProcessReactor::strict();
/// reactor.register(["cat"], Script::cat());
/// reactor.register(["sh", "-c", "exit 3"], Script::new().stderr("bye\n").exit(3));
/// reactor.register(["server"], Script::new().stdout("ready\n").on_signal(Signal::Term, SignalAction::Ignore));
///
/// let cat = reactor.spawn(Box::new(P), SpawnSpec::new("cat")).unwrap();
/// assert_eq!(cat.transport().ended_now(), Some(ProcessEnd::Done));
/// assert!(reactor.spawn(Box::new(P), SpawnSpec::new("cat").arg("-n")).is_err(), "not registered");
/// ```
#[derive(Clone, Default)]
pub struct Script {
    start: Vec<Step>,
    on_input: FdMap<StdinReaction>,
    on_eof: FdMap<EofReaction>,
    signals: BTreeMap<i32, SignalAction>,
    chunk_size: Option<usize>,
    holds_stdin: bool,
    fails_spawn: Option<crate::SpawnFailure>,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("start", &self.start)
            .field(
                "on_input",
                &self.on_input.iter().map(|(fd, _)| fd).collect::<Vec<_>>(),
            )
            .field(
                "on_eof",
                &self.on_eof.iter().map(|(fd, _)| fd).collect::<Vec<_>>(),
            )
            .field("signals", &self.signals)
            .field("chunk_size", &self.chunk_size)
            .field("holds_stdin", &self.holds_stdin)
            .field("fails_spawn", &self.fails_spawn)
            .finish()
    }
}

impl Script {
    /// A child that does nothing until the test or a signal ends it.
    pub fn new() -> Self {
        Self::default()
    }

    /// No child: the spawn fails with `failure`, as a missing or forbidden tool does. The
    /// registration counts the use; nothing is connected, and the rest of the script is not
    /// played.
    ///
    /// ```
    /// use process_transport_api::{ProcessSpawner, SpawnError, SpawnSpec};
    /// use process_transport_fakes::{MemoryProcessReactor, Script, SpawnFailure};
    /// # struct Quiet; impl process_transport_api::ProcessProtocol for Quiet { fn make_connection(&mut self, _: std::sync::Arc<dyn process_transport_api::ProcessTransport>) {} }
    ///
    /// let reactor = MemoryProcessReactor::strict();
    /// let deploy = reactor.register(["deploy"], Script::fail_spawn(SpawnFailure::PermissionDenied));
    /// let err = futures_executor::block_on(reactor.spawn_process(Box::new(Quiet), SpawnSpec::new("deploy")))
    ///     .err()
    ///     .expect("refused");
    /// assert!(matches!(err, SpawnError::PermissionDenied(ref exe) if exe == "deploy"));
    /// assert_eq!(deploy.uses(), 1);
    /// assert!(reactor.spawns().is_empty() && reactor.refused().is_empty());
    /// ```
    pub fn fail_spawn(failure: crate::SpawnFailure) -> Self {
        Script {
            fails_spawn: Some(failure),
            ..Self::default()
        }
    }

    /// The failure the spawn answers with, if the script is one.
    pub(crate) fn spawn_failure(&self) -> Option<&crate::SpawnFailure> {
        self.fails_spawn.as_ref()
    }

    /// A child like `cat`: echoes stdin to stdout as it arrives, exits 0 at end of file. Like
    /// the real program, it dies by `SIGPIPE` (signal 13) when it echoes into a stdout the
    /// parent closed.
    pub fn cat() -> Self {
        Self::cat_to(ChildFd::STDOUT)
    }

    /// A child like `cat >&N`: echoes stdin to `fd` as it arrives, exits 0 at end of file,
    /// and dies by `SIGPIPE` when it echoes into an `fd` the parent closed.
    pub fn cat_to(fd: ChildFd) -> Self {
        Script::new()
            .on_stdin(move |child, data| {
                if child.write(fd, data).is_err() && child.transport().exited().is_none() {
                    child.kill(Signal::Number(SIGPIPE));
                }
            })
            .on_stdin_eof(exit_at_eof)
    }

    /// A child that answers each complete line of stdin with `answer(line)` on stdout (the
    /// line without its newline; the answer is written as given) and exits 0 at end of file,
    /// dropping an unfinished last line, as a shell's `while read` loop does. Like the real
    /// loop, it dies by `SIGPIPE` when it answers into a stdout the parent closed.
    pub fn answer_lines(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let partial = PerChild::<Vec<u8>>::default();
        let forget = partial.clone();
        Script::new()
            .on_stdin(move |child, data| {
                let replies: Vec<String> = partial.with(child, |partial| {
                    partial.extend_from_slice(data);
                    let mut replies = Vec::new();
                    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=end).collect();
                        replies.push(answer(&String::from_utf8_lossy(&line[..end])));
                    }
                    replies
                });
                for reply in replies {
                    if !write_or_die(child, ChildFd::STDOUT, reply.as_bytes()) {
                        return;
                    }
                }
            })
            .on_stdin_eof(move |child| {
                forget.remove(child);
                exit_at_eof(child);
            })
    }

    /// A child like GNU `head -c bytes`: reads until it has `bytes` bytes of stdin (or stdin
    /// ends), then writes them on stdout at once and exits 0, reading no more. It dies by
    /// `SIGPIPE` when it writes into a stdout the parent closed.
    pub fn head_bytes(bytes: usize) -> Self {
        let taken = PerChild::<Vec<u8>>::default();
        let at_eof = taken.clone();
        let script = Script::new()
            .on_stdin(move |child, data| {
                let full = taken.with(child, |taken| {
                    let room = bytes - taken.len();
                    taken.extend_from_slice(&data[..data.len().min(room)]);
                    (taken.len() == bytes).then(|| std::mem::take(taken))
                });
                if let Some(head) = full {
                    taken.remove(child);
                    if write_or_die(child, ChildFd::STDOUT, &head) {
                        exit_at_eof(child);
                    }
                }
            })
            .on_stdin_eof(move |child| {
                let head = at_eof.with(child, std::mem::take);
                at_eof.remove(child);
                if head.is_empty() || write_or_die(child, ChildFd::STDOUT, &head) {
                    exit_at_eof(child);
                }
            });
        if bytes == 0 {
            return script.start_with(exit_at_eof);
        }
        script
    }

    /// Writes `data` on `fd` when the child starts.
    pub fn output(mut self, fd: ChildFd, data: impl AsRef<[u8]>) -> Self {
        self.start.push(Step::Output(fd, data.as_ref().to_vec()));
        self
    }

    /// Writes `data` on stdout when the child starts.
    pub fn stdout(self, data: impl AsRef<[u8]>) -> Self {
        self.output(ChildFd::STDOUT, data)
    }

    /// Writes `data` on stderr when the child starts.
    pub fn stderr(self, data: impl AsRef<[u8]>) -> Self {
        self.output(ChildFd::STDERR, data)
    }

    /// Closes `fd` when the child starts (after the output before it).
    pub fn close(mut self, fd: ChildFd) -> Self {
        self.start.push(Step::Close(fd));
        self
    }

    /// Exits with `code` once the start output is written.
    pub fn exit(self, code: i32) -> Self {
        self.end(ProcessEnd::from_exit_code(code))
    }

    /// Dies by `signal` once the start output is written.
    pub fn killed_by(self, signal: Signal) -> Self {
        self.end(ProcessEnd::from_signal(signal.linux_number()))
    }

    /// Ends with `end` once the start output is written.
    pub fn end(mut self, end: ProcessEnd) -> Self {
        self.start.push(Step::End(end));
        self
    }

    /// Reports the exit with `end` once the start output is written, while the child's fds stay
    /// open (a grandchild holds them): `process_ended` waits until they are closed.
    pub fn exit_keeping_fds(mut self, end: ProcessEnd) -> Self {
        self.start.push(Step::ExitKeepingFds(end));
        self
    }

    /// Waits `duration` on tokio's clock before the start steps after it. The steps before
    /// it run at the spawn, as ever; the rest run in a task on the current tokio runtime once
    /// the time has passed, unless the child ended meanwhile. Under a paused clock
    /// (`#[tokio::test(start_paused = true)]`) the wait takes no real time and follows
    /// `tokio::time::advance`, so timeout code is tested deterministically and at once.
    ///
    /// # Panics
    /// At the spawn of a child whose script reaches a delay outside a tokio runtime (with
    /// the time driver): a fake's misuse check, as the delay has no clock to follow.
    ///
    /// ```
    /// use process_transport_api::{ProcessSpawner, ProcessTransport, SpawnSpec, ProcessEnd};
    /// use process_transport_fakes::{MemoryProcessReactor, Script};
    /// use std::time::Duration;
    /// # use process_transport_api::ProcessProtocol;
    /// # struct P; impl ProcessProtocol for P { fn make_connection(&mut self, _: std::sync::Arc<dyn ProcessTransport>) {} }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let reactor = MemoryProcessReactor::strict();
    /// reactor.register(["slow"], Script::new().delay(Duration::from_secs(30)).exit(0));
    /// let transport = reactor.spawn_process(Box::new(P), SpawnSpec::new("slow")).await.unwrap();
    ///
    /// let started = tokio::time::Instant::now();
    /// assert!(tokio::time::timeout(Duration::from_secs(5), transport.ended()).await.is_err());
    /// assert_eq!(transport.ended().await, ProcessEnd::Done);
    /// assert_eq!(started.elapsed(), Duration::from_secs(30));
    /// # }
    /// ```
    pub fn delay(mut self, duration: Duration) -> Self {
        self.start.push(Step::Delay(duration));
        self
    }

    /// Runs `step` with the child when it starts, after the start steps before it: for output
    /// that depends on the spawn (its [`spec`](FakeChild::spec), say).
    pub fn start_with(mut self, step: impl Fn(&FakeChild) + Send + Sync + 'static) -> Self {
        self.start.push(Step::Custom(StartReaction(Arc::new(step))));
        self
    }

    /// Calls `react` with each piece of stdin as the protocol writes it.
    pub fn on_stdin(self, react: impl Fn(&FakeChild, &[u8]) + Send + Sync + 'static) -> Self {
        self.on_input(ChildFd::STDIN, react)
    }

    /// Calls `react` when the protocol closes the child's stdin.
    pub fn on_stdin_eof(self, react: impl Fn(&FakeChild) + Send + Sync + 'static) -> Self {
        self.on_input_eof(ChildFd::STDIN, react)
    }

    /// Calls `react` with each piece the protocol writes to child fd `fd` (a pipe the parent
    /// writes): [`on_stdin`](Self::on_stdin) for any fd. Without a reaction, what is written
    /// to an fd other than stdin stays buffered for [`FakeChild::read`].
    ///
    /// ```
    /// use process_transport_api::{ChildFd, ChildFdMapping, SpawnSpec};
    /// use process_transport_fakes::{DeliveredEvent, MemoryProcessReactor, Script};
    /// # struct P; impl process_transport_api::ProcessProtocol for P { fn make_connection(&mut self, t: std::sync::Arc<dyn process_transport_api::ProcessTransport>) { t.write_to_child(ChildFd(3), b"job").unwrap(); } }
    ///
    /// let reactor = MemoryProcessReactor::strict();
    /// reactor.register(["worker"], Script::new().on_input(ChildFd(3), |child, data| {
    ///     child.write(ChildFd::STDOUT, &[b"got ", data].concat()).unwrap();
    /// }));
    /// let spec = SpawnSpec::new("worker").child_fd(ChildFd(3), ChildFdMapping::ParentWrites);
    /// let child = reactor.spawn(Box::new(P), spec).unwrap();
    /// assert_eq!(child.transport().value_of(ChildFd(3)), b"job");
    /// assert!(child.transport().call_log().events().contains(
    ///     &DeliveredEvent::ChildDataReceived(ChildFd::STDOUT, b"got job".to_vec())
    /// ));
    /// ```
    pub fn on_input(
        mut self,
        fd: ChildFd,
        react: impl Fn(&FakeChild, &[u8]) + Send + Sync + 'static,
    ) -> Self {
        self.on_input.insert(fd, Arc::new(react));
        self
    }

    /// Calls `react` when the protocol closes child fd `fd` (a pipe the parent writes):
    /// [`on_stdin_eof`](Self::on_stdin_eof) for any fd.
    pub fn on_input_eof(
        mut self,
        fd: ChildFd,
        react: impl Fn(&FakeChild) + Send + Sync + 'static,
    ) -> Self {
        self.on_eof.insert(fd, Arc::new(react));
        self
    }

    /// Sets what `signal` does to the child.
    pub fn on_signal(mut self, signal: Signal, action: SignalAction) -> Self {
        self.signals.insert(signal.linux_number(), action);
        self
    }

    /// Delivers the child's output in chunks of at most `bytes` (1 to shake out framing bugs).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes.max(1));
        self
    }

    /// The child does not read stdin by itself: what the protocol writes stays buffered until
    /// the test reads it with [`FakeChild::read`], so the stdin buffer fills and a push
    /// producer is paused, as with a real child that is slow to read.
    pub fn holds_stdin(mut self) -> Self {
        self.holds_stdin = true;
        self
    }

    pub(crate) fn chunk(&self) -> Option<usize> {
        self.chunk_size
    }

    /// Runs the start steps; then, when stdin is the null device or the parent's own, the
    /// end-of-file reaction.
    pub(crate) fn start(&self, child: &FakeChild) {
        run_steps(&self.start, child);
        // A stdin on the null device (or the parent's, which a fake does not read) is at its
        // end from the start.
        if child.reads_nothing(ChildFd::STDIN) {
            self.closed(child, ChildFd::STDIN);
        }
    }

    /// The protocol wrote to child fd `fd`. The child reads stdin by itself unless it holds
    /// it; another fd only when the script reacts to it.
    pub(crate) fn written(&self, child: &FakeChild, fd: ChildFd) {
        let reads = if fd == ChildFd::STDIN {
            !self.holds_stdin
        } else {
            self.on_input.get(fd).is_some()
        };
        if !reads {
            return;
        }
        let data = child.read_shared(fd).unwrap_or_default();
        if let (Some(react), false) = (self.on_input.get(fd), data.is_empty()) {
            react(child, &data);
        }
    }

    /// The protocol closed child fd `fd`, a pipe it writes.
    pub(crate) fn closed(&self, child: &FakeChild, fd: ChildFd) {
        self.written(child, fd);
        if let Some(react) = self.on_eof.get(fd) {
            react(child);
        }
    }

    /// What the child does on `signal`: the action set for it, or the rule of a real child
    /// with no handler: a signal whose default is to ignore (or to continue) does nothing;
    /// STOP and its kin, which a fake cannot model, do nothing either.
    fn action_on(&self, signal: Signal) -> &SignalAction {
        const TERMINATE: SignalAction = SignalAction::Terminate;
        const IGNORE: SignalAction = SignalAction::Ignore;
        let default = match signal.default_action() {
            DefaultAction::Terminate => &TERMINATE,
            _ => &IGNORE,
        };
        self.signals.get(&signal.linux_number()).unwrap_or(default)
    }

    /// Whether `signal` ends a running child at once (its action is to terminate).
    pub(crate) fn ends_on(&self, signal: Signal) -> bool {
        matches!(self.action_on(signal), SignalAction::Terminate)
    }

    /// The protocol signalled the child.
    pub(crate) fn signalled(&self, child: &FakeChild, signal: Signal) {
        match self.action_on(signal) {
            SignalAction::Terminate if child.transport().exited().is_none() => child.kill(signal),
            SignalAction::Terminate | SignalAction::Ignore => {}
            SignalAction::Custom(react) => react(child, signal),
        }
    }
}

/// Runs start steps in order; at a delay, hands the rest to a task that waits on tokio's clock.
fn run_steps(steps: &[Step], child: &FakeChild) {
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Output(fd, data) => {
                let _ = child.write(*fd, data);
            }
            Step::Close(fd) => child.close(*fd),
            Step::End(end) if child.transport().exited().is_none() => child.end(*end),
            Step::ExitKeepingFds(end) if child.transport().exited().is_none() => {
                child.exit_keeping_fds(*end);
            }
            Step::End(_) | Step::ExitKeepingFds(_) => {}
            Step::Custom(StartReaction(step)) => step(child),
            Step::Delay(duration) => {
                let runtime = tokio::runtime::Handle::try_current().unwrap_or_else(|_| {
                    child.transport().misuse(format!(
                        "Script::delay misuse: `{}` was spawned outside a tokio runtime, so \
                         its delay has no clock to follow",
                        child.spec().command_line()
                    ))
                });
                let (rest, child, duration) =
                    (steps[index + 1..].to_vec(), child.clone(), *duration);
                runtime.spawn(async move {
                    let transport = child.transport();
                    if tokio::time::timeout(duration, transport.ended())
                        .await
                        .is_err()
                    {
                        run_steps(&rest, &child);
                    }
                });
                return;
            }
        }
    }
}
