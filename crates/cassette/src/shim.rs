//! What a shim process does.

use std::future::Future;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Signal,
    SpawnError, SpawnSpec,
};
use process_transport_real::RealSpawner;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::recorder::lock;
use crate::replay::FirstInput;
use crate::shims::*;
use crate::{
    Bytes, Cassette, FdKind, MatchRules, Recording, RecordingSpawner, Redactions, ReplaySpawner,
};

/// How a shim ends: what its process must do last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShimEnd {
    /// Exit with this code.
    Code(u8),
    /// Die by this signal, as the recorded child did (exiting with 128 plus it where the
    /// signal cannot end this process).
    Signal(i32),
}

/// What the shim binary runs when it is invoked under a program's name with
/// [`SHIM_VARIABLE`] set: replays or records this process's spawn, as the session's
/// mode says, and returns how to end. A shim that cannot work (no session, a cassette
/// that cannot be read) says why on stderr and ends with 125.
pub fn run_shim() -> ShimEnd {
    match shim() {
        Ok(end) => end,
        Err(message) => {
            eprintln!("process-cassette shim: {message}");
            ShimEnd::Code(125)
        }
    }
}

fn shim() -> Result<ShimEnd, String> {
    let dir =
        std::env::var_os(SHIM_VARIABLE).ok_or_else(|| format!("{SHIM_VARIABLE} is not set"))?;
    let session = SessionDir(PathBuf::from(dir));
    let config = session
        .read_config()
        .map_err(|err| format!("the session in {}: {err}", session.0.display()))?;
    let mut argv = std::env::args_os();
    let program = argv.next().ok_or("no argv[0]")?;
    let args: Vec<OsString> = argv.collect();
    // One worker: `catch_more` relies on it to keep the driver still while it catches.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let end = if config.record {
        runtime.block_on(record(&session, &config, program, args))
    } else {
        runtime.block_on(replay(&session, &config, program, args))
    };
    runtime.shutdown_background();
    end
}

/// The spec of this process's spawn, as a replay matches it: argv, the cwd, the kept
/// variables' values.
fn asked(config: &Config, program: &OsStr, args: &[OsString]) -> SpawnSpec {
    let mut spec = SpawnSpec::new(program).args(args);
    for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
        spec = spec.no_child_fd(fd);
    }
    let null = rustix::fs::stat("/dev/null").ok();
    let seen = [
        (
            ChildFd::STDIN,
            rustix::fs::fstat(io::stdin()),
            rustix::termios::isatty(io::stdin()),
        ),
        (
            ChildFd::STDOUT,
            rustix::fs::fstat(io::stdout()),
            rustix::termios::isatty(io::stdout()),
        ),
        (
            ChildFd::STDERR,
            rustix::fs::fstat(io::stderr()),
            rustix::termios::isatty(io::stderr()),
        ),
    ];
    if seen.iter().any(|(_, _, tty)| *tty) {
        spec = spec.use_pty(true);
    }
    {
        for (fd, stat, tty) in seen {
            let Ok(stat) = stat else { continue };
            let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
            let is_null = null
                .as_ref()
                .is_some_and(|null| (null.st_dev, null.st_ino) == (stat.st_dev, stat.st_ino));
            let mapping = match kind {
                _ if tty => ChildFdMapping::Inherit(fd.0 as i32),
                _ if is_null => ChildFdMapping::Null,
                rustix::fs::FileType::Fifo | rustix::fs::FileType::Socket => {
                    if fd == ChildFd::STDIN {
                        ChildFdMapping::ParentWrites
                    } else {
                        ChildFdMapping::ParentReads
                    }
                }
                _ => ChildFdMapping::Inherit(fd.0 as i32),
            };
            spec = spec.child_fd(fd, mapping);
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        spec = spec.cwd(cwd);
    }
    for name in config.kept_values.iter().chain(&config.kept_digests) {
        if let Some(value) = std::env::var_os(name) {
            spec = spec.env(name, value);
        }
    }
    spec
}

async fn replay(
    session: &SessionDir,
    config: &Config,
    program: OsString,
    args: Vec<OsString>,
) -> Result<ShimEnd, String> {
    let mut caught = catch_signals().await?;
    let cassette = Cassette::load(&config.cassette).map_err(|err| err.to_string())?;
    catch_recorded_signals(&mut caught, &cassette).await?;
    let redactions = Redactions::from_parts(&config.redactions).map_err(|err| err.to_string())?;
    let mut rules = MatchRules::exact()
        .ignore_spawn_details()
        .unwaited_ignored_signals();
    if config.lenient_stdin {
        rules = rules.lenient_stdin();
    }
    if config.ignore_cwd {
        rules = rules.ignore_cwd();
    }
    if let Some(pattern) = &config.args_matching {
        rules = rules
            .args_matching(pattern)
            .map_err(|err| err.to_string())?;
    }
    let spec = asked(config, &program, &args);
    let line = spec.command_line();
    let relay = Relay::new()?;
    let end = relay.end.clone();
    let stdin = relay.stdin.clone();
    let state_io = |err: io::Error| format!("the session's state: {err}");
    // Matched and claimed under the session's lock; stdin read outside it, when that is
    // what tells the recordings this spawn matches apart.
    let mut early = EarlyStdin::default();
    // Built once, outside the lock: a cassette can be megabytes. What other shims served
    // and bound is added under the lock.
    let mut replay =
        ReplaySpawner::build(cassette.clone(), rules, redactions).named(config.cassette.display());
    let (mut guard, replay, index) = loop {
        let guard = session.lock_state().map_err(state_io)?;
        replay = replay
            .already_served(guard.state.served.iter().copied())
            .with_bindings(
                guard
                    .state
                    .bindings
                    .iter()
                    .map(|(name, value)| (name.clone(), value.0.clone()))
                    .collect(),
            );
        let matching = replay.matching(&spec);
        early.learn(&replay, &matching);
        let chosen = match early.choose(&matching) {
            Choice::Take(index) => replay.claim_where(&spec, |other| other == index),
            Choice::Any => replay.claim(&spec),
            Choice::Read => {
                // Read until the choice is made, then claim under the lock again: another
                // shim may have taken the chosen one meanwhile.
                drop(guard);
                while !early.ended && matches!(early.choose(&matching), Choice::Read) {
                    early.read_more();
                }
                continue;
            }
        };
        match chosen {
            Ok(index) => break (guard, replay, index),
            Err(err) => {
                let mut guard = guard;
                let why = match err {
                    SpawnError::NotFound(why) => why,
                    other => other.to_string(),
                };
                guard.state.unmatched.push(why.clone());
                guard.save().map_err(state_io)?;
                eprintln!("process-cassette shim: cannot run {why}");
                return Ok(ShimEnd::Code(127));
            }
        }
    };
    guard.state.served.extend(with_nested(&cassette, &[index]));
    record_bindings(&mut guard.state, &replay);
    // Saved before the play starts: its first output may bring the signal that ends
    // this process.
    guard.save().map_err(state_io)?;
    if replay.recording(index).pty {
        // The recorded bytes went through a terminal already: this one passes them on
        // as they are, and does not echo again.
        if let Ok(mut modes) = rustix::termios::tcgetattr(io::stdin()) {
            modes.make_raw();
            let _ = rustix::termios::tcsetattr(
                io::stdin(),
                rustix::termios::OptionalActions::Now,
                &modes,
            );
        }
    }
    // Played as a child of the spec the recording has: its fds, its terminal.
    let spawned = replay
        .serve(
            index,
            Box::new(relay),
            played(replay.recording(index), spec),
        )
        .await;
    let transport = match spawned {
        Ok(transport) => transport,
        // A recorded refusal: what a shell says of such a program.
        Err(err) => {
            eprintln!("{}: {err}", program.to_string_lossy());
            return Ok(ShimEnd::Code(match err {
                SpawnError::PermissionDenied(_) => 126,
                _ => 127,
            }));
        }
    };
    let reads_stdin = replay.recording(index).fds.get(&0) == Some(&FdKind::ParentWrites);
    if reads_stdin {
        let (transport, end) = (transport.clone(), end.clone());
        std::thread::spawn(move || feed_stdin(&transport, &Mutex::new(false), &end, &stdin, early));
    }
    let ended = wait_passing_signals_on(&transport, &end, caught).await;
    let failures = replay.take_failures();
    let merged = session.with_state(|state| {
        record_bindings(state, &replay);
        state.failures.extend(failures.iter().cloned());
    });
    merged.map_err(|err| format!("the session's state: {err}"))?;
    if let Some(failure) = failures.first() {
        eprintln!("process-cassette shim: `{line}`: {failure}");
        return Ok(ShimEnd::Code(125));
    }
    ended
        .map(end_of)
        .ok_or_else(|| format!("`{line}`: the replay stopped short of its end"))
}

fn record_bindings(state: &mut State, replay: &ReplaySpawner) {
    for (name, value) in replay.bindings() {
        state.bindings.entry(name).or_insert(Bytes(value));
    }
}

fn end_of(end: ProcessEnd) -> ShimEnd {
    match (end.signal(), end.exit_code()) {
        (Some(signal), _) => ShimEnd::Signal(signal),
        (None, Some(code)) => ShimEnd::Code(u8::try_from(code.rem_euclid(256)).unwrap_or(1)),
        (None, None) => ShimEnd::Code(1),
    }
}

/// What a replaying shim read of its stdin before it chose its recording.
#[derive(Default)]
struct EarlyStdin {
    bytes: Vec<u8>,
    ended: bool,
    /// The first input of each recording considered ([`ReplaySpawner::first_input`]),
    /// found once: a recording's first input can be megabytes.
    firsts: BTreeMap<usize, Option<FirstInput>>,
}

/// Which recording a shim takes.
enum Choice {
    /// This one.
    Take(usize),
    /// The first the spawn matches, in cassette order.
    Any,
    /// None yet: the first the input so far fits needs more of it to tell.
    Read,
}

impl EarlyStdin {
    /// Chooses among `matching` (recordings of one command, in cassette order): the
    /// first, as an in-process replay would, unless the input so far shows it is not
    /// this spawn's: then the first the input fits. One that needs more input to tell
    /// (what it reads before it does anything its parent can see) waits for it.
    /// Concurrent shims of one command start in any order, so the order of the cassette
    /// alone could give each the other's recording. A spawn the input of no recording
    /// fits takes the first, whose replay then reports how the input differs.
    fn choose(&self, matching: &[usize]) -> Choice {
        if matching.len() < 2 {
            return Choice::Any;
        }
        for index in matching {
            let Some(Some(first)) = self.firsts.get(index) else {
                return Choice::Any;
            };
            if !first.fits(&self.bytes, self.ended) {
                continue;
            }
            return match first.got(&self.bytes, self.ended) {
                true => Choice::Take(*index),
                false => Choice::Read,
            };
        }
        Choice::Any
    }

    /// Finds the first input of each of `matching` not found yet.
    fn learn(&mut self, replay: &ReplaySpawner, matching: &[usize]) {
        for index in matching {
            self.firsts
                .entry(*index)
                .or_insert_with(|| replay.first_input(*index));
        }
    }

    /// Reads what stdin has (waiting for some), or its end.
    fn read_more(&mut self) {
        let mut buffer = vec![0; 64 * 1024];
        match io::stdin().lock().read(&mut buffer) {
            Ok(0) | Err(_) => self.ended = true,
            Ok(read) => self.bytes.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Copies this process's stdin to the child's, then closes it, starting with what was
/// read `early`; the child's loss of its stdin ends the copy (see [`OwnStdin`]). A
/// mismatch the replay finds panics inside the write (a fake's misuse check): it is kept
/// by the replay, the copy stops and `ended` hears of it.
///
/// Each write is made holding `stopped`: setting it (under its lock) waits for a write in
/// flight and lets no other start, so a recording taken after it holds every write made.
fn feed_stdin(
    transport: &Arc<dyn ProcessTransport>,
    stopped: &Mutex<bool>,
    ended: &Ended,
    stdin: &OwnStdin,
    early: EarlyStdin,
) {
    if !stdin.start_feeding() {
        return;
    }
    let write = |bytes: &[u8]| {
        let stop = lock(stopped);
        if *stop {
            return false;
        }
        let written = misuse_caught(|| transport.write_to_child(ChildFd::STDIN, bytes));
        drop(stop);
        match written {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                ended.mismatched();
                false
            }
        }
    };
    // Whether stdin was copied to its end (not stopped by a failed write or the loss).
    let to_the_end = 'copy: {
        if !early.bytes.is_empty() && !write(&early.bytes) {
            break 'copy false;
        }
        if !early.ended {
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let read = match stdin.read(&mut buffer) {
                    None => break 'copy false,
                    Some(Ok(0) | Err(_)) => break,
                    Some(Ok(read)) => read,
                };
                if !write(&buffer[..read]) {
                    break 'copy false;
                }
            }
        }
        true
    };
    stdin.stop_feeding();
    let stop = lock(stopped);
    if to_the_end && !*stop {
        let closed = misuse_caught(|| transport.close_child_fd(ChildFd::STDIN));
        if closed.is_err() {
            ended.mismatched();
        }
    }
}

std::thread_local! {
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `call`, catching the panic of a replay's misuse check. The replay keeps what it
/// found and the shim reports it once, so the panic itself is not printed; any other
/// panic of this process still is.
fn misuse_caught<T>(call: impl FnOnce() -> T) -> std::thread::Result<T> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let printing = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(std::cell::Cell::get) {
                printing(info);
            }
        }));
    });
    CATCHING.with(|catching| catching.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    CATCHING.with(|catching| catching.set(false));
    result
}

/// The protocol of a shim's child (replayed or real): its output goes to this process's
/// stdout and stderr as it comes; its end is kept.
struct Relay {
    end: Arc<Ended>,
    stdin: Arc<OwnStdin>,
}

impl Relay {
    fn new() -> Result<Self, String> {
        let stdin = OwnStdin::new().map_err(|err| format!("cannot make a wake pipe: {err}"))?;
        Ok(Relay {
            end: Arc::default(),
            stdin: Arc::new(stdin),
        })
    }
}

/// This process's stdin: a feeder thread copies it to the child, and the child's loss of
/// its stdin closes it. A thread blocked reading fd 0 would keep the pipe behind it open
/// (the kernel holds the file while the read lasts), so the process on the other side
/// would never see the loss and would wait for it; the feeder therefore waits in `poll`
/// on fd 0 and on a wake pipe, and the loss wakes it and has it close fd 0 once it is out
/// of the wait.
struct OwnStdin {
    state: Mutex<StdinUse>,
    wake_read: rustix::fd::OwnedFd,
    wake_write: rustix::fd::OwnedFd,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StdinUse {
    Open,
    Feeding,
    Lost,
}

impl OwnStdin {
    fn new() -> io::Result<Self> {
        let (wake_read, wake_write) = rustix::pipe::pipe()?;
        Ok(OwnStdin {
            state: Mutex::new(StdinUse::Open),
            wake_read,
            wake_write,
        })
    }

    /// The child lost its stdin: closes this process's now or, while a feeder waits on
    /// it, as soon as the feeder is woken out of its wait.
    fn lose(&self) {
        let mut state = lock(&self.state);
        let feeding = *state == StdinUse::Feeding;
        *state = StdinUse::Lost;
        if feeding {
            // One byte in an empty pipe: it cannot block.
            let _ = rustix::io::write(&self.wake_write, &[1]);
        } else {
            put_null_at(ChildFd::STDIN);
        }
    }

    /// Starts a feed: false when stdin is lost already.
    fn start_feeding(&self) -> bool {
        let mut state = lock(&self.state);
        if *state == StdinUse::Lost {
            return false;
        }
        *state = StdinUse::Feeding;
        true
    }

    /// Waits for input on fd 0 and reads it into `buffer`: `None` once the loss of stdin
    /// ended the feed (fd 0 is then closed), `Some(Ok(0))` at its end.
    fn read(&self, buffer: &mut [u8]) -> Option<io::Result<usize>> {
        use rustix::event::{poll, PollFd, PollFlags};
        let stdin = rustix::stdio::stdin();
        loop {
            let mut fds = [
                PollFd::new(&stdin, PollFlags::IN),
                PollFd::new(&self.wake_read, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Some(Err(err.into())),
            }
            if !fds[1].revents().is_empty() {
                return None;
            }
            if !fds[0].revents().is_empty() {
                return Some(rustix::io::read(stdin, buffer).map_err(io::Error::from));
            }
        }
    }

    /// The feed is over: a loss that came meanwhile closes fd 0 now.
    fn stop_feeding(&self) {
        let mut state = lock(&self.state);
        match *state {
            StdinUse::Lost => put_null_at(ChildFd::STDIN),
            _ => *state = StdinUse::Open,
        }
    }
}

/// Closes this process's fd `fd` (0, 1 or 2) by putting the null device in its place, so
/// that the process on the other side sees the end of the pipe.
fn put_null_at(fd: ChildFd) {
    let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let _ = match fd {
        ChildFd::STDIN => rustix::stdio::dup2_stdin(&null),
        ChildFd::STDOUT => {
            let _ = io::stdout().lock().flush();
            rustix::stdio::dup2_stdout(&null)
        }
        ChildFd::STDERR => rustix::stdio::dup2_stderr(&null),
        _ => Ok(()),
    };
}

#[derive(Default)]
struct Ended {
    end: Mutex<Option<ProcessEnd>>,
    /// A replay found a mismatch: it plays nothing more, so no end will come.
    mismatch: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Ended {
    fn mismatched(&self) {
        self.mismatch
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

impl ProcessProtocol for Relay {
    fn make_connection(&mut self, _transport: Arc<dyn ProcessTransport>) {}

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        let _ = match fd {
            ChildFd::STDERR => io::stderr().write_all(data),
            _ => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(data).and_then(|()| stdout.flush())
            }
        };
    }

    /// The child closed one of its standard fds: this process closes its own, so that
    /// the process on the other side sees the end of the pipe as it did.
    fn child_connection_lost(&mut self, fd: ChildFd) {
        match fd {
            ChildFd::STDIN => self.stdin.lose(),
            fd => put_null_at(fd),
        }
    }

    fn process_ended(&mut self, reason: ProcessEnd) {
        *lock(&self.end.end) = Some(reason);
        self.end.notify.notify_waiters();
    }
}

/// The signals a shim passes on, each with the signal it passes, caught from before the
/// spawn: one that comes while the spawn starts (its first output may already be out) is
/// kept for [`wait_passing_signals_on`], not taken by its default action, which would
/// end this process with nothing recorded or claimed.
type Caught = Vec<(tokio::signal::unix::Signal, Signal)>;

/// Catches SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGALRM. A
/// shim does it first, before it loads its cassette, so that a signal sent while it
/// starts is kept rather than taken by its default action.
async fn catch_signals() -> Result<Caught, String> {
    let mut caught = Caught::new();
    catch_more(
        &mut caught,
        [
            Signal::Int,
            Signal::Term,
            Signal::Hup,
            Signal::Number(libc::SIGQUIT),
            Signal::Number(libc::SIGUSR1),
            Signal::Number(libc::SIGUSR2),
            Signal::Number(libc::SIGWINCH),
            Signal::Number(libc::SIGALRM),
        ],
    )
    .await?;
    Ok(caught)
}

/// Catches as well every other signal `cassette` shows a protocol sending (a replayed
/// child waits for those), but SIGKILL and SIGSTOP, which no process can catch and which
/// act on the shim as on the child.
async fn catch_recorded_signals(caught: &mut Caught, cassette: &Cassette) -> Result<(), String> {
    let recorded = cassette.spawns.iter().flat_map(|recording| {
        recording.events.iter().filter_map(|event| match event {
            crate::Event::Signal { signal } => signal.parse::<Signal>().ok(),
            _ => None,
        })
    });
    catch_more(caught, recorded).await
}

/// Catches each of `signals` not caught yet, but SIGKILL and SIGSTOP.
///
/// tokio turns a signal's delivery on before it subscribes the new stream; a signal that
/// the driver hands out between the two reaches no stream and is lost, and a replayed
/// child would wait for it forever. The streams are therefore made in a task on the
/// runtime's only worker (see [`shim`]): while that worker runs the task, nothing polls
/// the driver (the thread blocked on the runtime and the blocking pool never do), so a
/// signal that comes meanwhile stays pending until the streams exist.
async fn catch_more(
    caught: &mut Caught,
    signals: impl IntoIterator<Item = Signal>,
) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut wanted: Vec<Signal> = Vec::new();
    for passed in signals {
        if ![libc::SIGKILL, libc::SIGSTOP].contains(&passed.number())
            && !caught.iter().any(|(_, known)| *known == passed)
            && !wanted.contains(&passed)
        {
            wanted.push(passed);
        }
    }
    let made = tokio::spawn(async move {
        wanted
            .into_iter()
            .map(|passed| {
                signal(SignalKind::from_raw(passed.number()))
                    .map(|stream| (stream, passed))
                    .map_err(|err| format!("cannot catch signal {passed}: {err}"))
            })
            .collect::<Result<Caught, String>>()
    })
    .await
    .map_err(|err| format!("cannot catch signals: {err}"))??;
    caught.extend(made);
    Ok(())
}

/// The spec a claimed recording is played as: the asked command line and cwd, and the
/// recording's fd map and terminal, so the fake child has the fds whose ends the
/// recording shows.
fn played(recording: &Recording, asked: SpawnSpec) -> SpawnSpec {
    let mut spec = SpawnSpec::new(asked.get_executable()).args(asked.get_args());
    for fd in [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR] {
        spec = spec.no_child_fd(fd);
    }
    for (fd, kind) in &recording.fds {
        spec = spec.child_fd(ChildFd(*fd), (*kind).into());
    }
    if recording.pty {
        spec = spec.use_pty(true);
    }
    spec
}

/// Waits for the child's end, passing on to it each SIGINT, SIGTERM, SIGHUP and SIGQUIT
/// this process gets (a replayed child plays the death its recording shows, or dies by
/// the signal as a real one would).
async fn wait_passing_signals_on(
    transport: &Arc<dyn ProcessTransport>,
    ended: &Ended,
    mut streams: Caught,
) -> Option<ProcessEnd> {
    loop {
        let notified = ended.notify.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if let Some(end) = *lock(&ended.end) {
            return Some(end);
        }
        if ended.mismatch.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let got = std::future::poll_fn(|cx| {
            if notified.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            for (stream, passed) in &mut streams {
                if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                    return std::task::Poll::Ready(Some(*passed));
                }
            }
            std::task::Poll::Pending
        })
        .await;
        if let Some(passed) = got {
            let sent = misuse_caught(|| transport.signal_process(passed));
            if sent.is_err() {
                ended.mismatched();
            }
        }
    }
}

/// The real program named `program`: the first executable of that name on `PATH` that
/// is not in the shims' directory and is not a shim.
fn real_program(config: &Config, program: &OsStr) -> Option<PathBuf> {
    let name = Path::new(program).file_name()?;
    let own = std::env::current_exe()
        .ok()
        .and_then(|exe| fs::canonicalize(exe).ok());
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir != &config.shims)
        .map(|dir| dir.join(name))
        .filter(|candidate| is_executable(candidate))
        .find(|candidate| fs::canonicalize(candidate).ok() != own)
}

async fn record(
    session: &SessionDir,
    config: &Config,
    program: OsString,
    args: Vec<OsString>,
) -> Result<ShimEnd, String> {
    let state_io = |err: io::Error| format!("the session's state: {err}");
    let number = session
        .with_state(|state| {
            state.next += 1;
            state.next - 1
        })
        .map_err(state_io)?;
    let within = std::env::var(WITHIN_VARIABLE)
        .ok()
        .and_then(|text| text.parse().ok());
    let asked = asked(config, &program, &args);
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()))
        .redacting(Redactions::none())
        .keep_env_values(config.kept_values.clone())
        .keep_env_digests(config.kept_digests.clone());
    let end = match real_program(config, &program) {
        None => {
            let err = SpawnError::NotFound(program.to_string_lossy().into_owned());
            let mut recording = Recording::of(&asked);
            recording.refused = Some(crate::Refusal::of(&err));
            keep(session, number, within, recording).map_err(state_io)?;
            eprintln!("{}: command not found", program.to_string_lossy());
            return Ok(ShimEnd::Code(127));
        }
        Some(real) => {
            let mut spec = SpawnSpec::new(&real)
                .args(&args)
                .arg0(&program)
                .env(WITHIN_VARIABLE, number.to_string());
            for (name, value) in asked.get_env().vars() {
                if let Some(value) = value {
                    spec = spec.env(name, value);
                }
            }
            let relay = Relay::new()?;
            let ended = relay.end.clone();
            let stdin = relay.stdin.clone();
            let caught = catch_signals().await?;
            let transport = recorder
                .spawn_process(Box::new(relay), spec)
                .await
                .map_err(|err| err.to_string())?;
            let stopped = Arc::new(Mutex::new(false));
            {
                let (transport, stopped) = (transport.clone(), stopped.clone());
                let ended = ended.clone();
                std::thread::spawn(move || {
                    feed_stdin(&transport, &stopped, &ended, &stdin, EarlyStdin::default())
                });
            }
            let end = wait_passing_signals_on(&transport, &ended, caught).await;
            // A write still returning would be left out of the recording.
            *lock(&stopped) = true;
            end
        }
    };
    let mut recording = recorder
        .cassette()
        .spawns
        .pop()
        .ok_or("the spawn was not recorded")?;
    // As the code under test asked for it: the name it ran, its cwd.
    let asked_recording = Recording::of(&asked);
    recording.command = asked_recording.command;
    recording.command_bytes = asked_recording.command_bytes;
    recording.cwd = asked_recording.cwd;
    recording.arg0 = None;
    recording.env = Vec::new();
    // The fds as the code under test gave them; a terminal or a file was pumped as a
    // pipe.
    recording.fds = asked_recording
        .fds
        .iter()
        .map(|(fd, kind)| match kind {
            FdKind::Inherit(_) if *fd == 0 => (*fd, FdKind::ParentWrites),
            FdKind::Inherit(_) => (*fd, FdKind::ParentReads),
            kind => (*fd, *kind),
        })
        .collect();
    keep(session, number, within, recording).map_err(state_io)?;
    end.map(end_of)
        .ok_or_else(|| "the recorded program's end was not seen".to_owned())
}

fn keep(
    session: &SessionDir,
    number: u64,
    within: Option<u64>,
    recording: Recording,
) -> io::Result<()> {
    session.with_state(|state| {
        state.recorded.push(Taken {
            number,
            within,
            recording,
        })
    })
}
