//! `process-cassette`: record a command into a cassette, show a cassette's transcript, or
//! replay a cassette's output.

use std::future::Future;
use std::io::IsTerminal;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use process_transport_api::Signal;
use process_transport_cassette::{
    Cassette, Event, RecordingSpawner, Redactions, SaveTarget, ShimEnd, Verifier,
};
use process_transport_command::{Child, Command, ExitStatus, Stdio};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Record real runs of a command into a cassette, and show or replay them.
#[derive(Debug, Parser)]
#[command(name = "process-cassette", version)]
struct Cli {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Run COMMAND with this process's stdin, show its output live, write the cassette, and
    /// exit with the command's code.
    Record {
        /// The cassette to write.
        file: PathBuf,
        /// When to show a progress line on stderr (bytes each way) while the command runs
        /// longer than a second: `auto` when stderr is a terminal.
        #[arg(long, value_enum, default_value_t = Progress::Auto)]
        progress: Progress,
        /// Store each match of a pattern as a placeholder a replay binds:
        /// PLACEHOLDER=REGEX (`<PID>="processId": *[0-9]+`); may be given again.
        #[arg(long = "pattern", value_name = "PLACEHOLDER=REGEX", value_parser = placeholder_pattern)]
        patterns: Vec<(String, String)>,
        /// Replace the value of this environment variable with `<NAME>`; may be given again.
        #[arg(long = "secret-env", value_name = "NAME")]
        secret_env: Vec<String>,
        /// Keep `Content-Length` headers true where a placeholder changes a body's length.
        #[arg(long)]
        framed_by_content_length: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print the cassette's transcript: one line per event, bytes escaped.
    Show {
        /// The cassette to read.
        file: PathBuf,
    },
    /// Play the recorded output to stdout and stderr and exit with the recorded code.
    Replay {
        /// The cassette to read.
        file: PathBuf,
    },
    /// Run every recorded spawn again on real processes, feeding it the recorded input, and
    /// print a diff per spawn that now does something else; exit with 1 when one does.
    Verify {
        /// The cassette to check.
        file: PathBuf,
        /// Record again the spawns that differ, write the cassette, and exit with 0.
        #[arg(long)]
        update: bool,
        /// A value for a placeholder in the recorded input, as NAME=VALUE (`<DIR>=/tmp/x`).
        #[arg(long = "bind", value_name = "NAME=VALUE", value_parser = binding)]
        bind: Vec<(String, String)>,
        /// Seconds to wait for the output an input answered, and for the exit.
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        timeout: u64,
    },
}

/// A `--pattern` value: PLACEHOLDER=REGEX (split at the first `=`).
fn placeholder_pattern(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, pattern)) if !name.is_empty() && !pattern.is_empty() => {
            Ok((name.to_owned(), pattern.to_owned()))
        }
        _ => Err(format!("`{text}` is not PLACEHOLDER=REGEX")),
    }
}

/// A `--bind` value: NAME=VALUE.
fn binding(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// When `record` shows its progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Progress {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

fn main() -> ExitCode {
    if let Some(end) = as_shim() {
        return end;
    }
    let cli = Cli::parse();
    let result = match cli.action {
        Action::Record {
            file,
            progress,
            patterns,
            secret_env,
            framed_by_content_length,
            command,
        } => {
            let shown = match progress {
                Progress::Auto => std::io::stderr().is_terminal(),
                Progress::Always => true,
                Progress::Never => false,
            };
            redactions(&patterns, &secret_env, framed_by_content_length)
                .and_then(|redactions| record(&file, &command, shown, redactions))
        }
        Action::Show { file } => Cassette::load(&file)
            .map_err(|err| err.to_string())
            .and_then(|cassette| show(&cassette)),
        Action::Replay { file } => Cassette::load(&file)
            .map_err(|err| err.to_string())
            .and_then(|cassette| replay(&cassette.restored(&Redactions::new()))),
        Action::Verify {
            file,
            update,
            bind,
            timeout,
        } => verify(&file, update, bind, Duration::from_secs(timeout)),
    };
    result.unwrap_or_else(|message| {
        eprintln!("process-cassette: {message}");
        ExitCode::from(2)
    })
}

/// When this binary runs under another name with a shim session set (a shim on `PATH`,
/// `Shims`), replays or records this spawn and ends as the recorded child did.
fn as_shim() -> Option<ExitCode> {
    let name = std::env::args_os().next()?;
    let name = std::path::Path::new(&name).file_name()?.to_owned();
    if name == "process-cassette"
        || std::env::var_os(process_transport_cassette::SHIM_VARIABLE).is_none()
    {
        return None;
    }
    Some(match process_transport_cassette::run_shim() {
        ShimEnd::Code(code) => ExitCode::from(code),
        ShimEnd::Signal(signal) => die_by(signal),
    })
}

/// Ends this process by `signal`, as a recorded child died: its disposition reset to the
/// default first (this runtime ignores `SIGPIPE`, and a shim caught the signals it passes
/// on); 128 plus the signal where it does not end the process (`SIGSTOP`, say).
fn die_by(signal: i32) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: `signal` with `SIG_DFL` changes only this process's disposition of one
    // signal; no handler runs, and nothing else of this process depends on it any more.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
    if let Some(signal) = rustix::process::Signal::from_named_raw(signal) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
    }
    shell_code(None, Some(signal))
}

/// The shell's exit code for a status: the code, or 128 plus the signal.
fn exit_code(status: ExitStatus) -> ExitCode {
    shell_code(status.code(), status.signal())
}

/// The shell's exit code for an exit `code` or a death by `signal`: the code, or 128 plus the
/// signal; 1 for anything that does not fit in an exit code (a hostile cassette's numbers).
fn shell_code(code: Option<i32>, signal: Option<i32>) -> ExitCode {
    let raw = match (code, signal) {
        (_, Some(signal @ 1..=127)) => Some(128 + signal),
        (_, Some(_)) => None,
        (code, None) => code,
    };
    ExitCode::from(raw.and_then(|raw| u8::try_from(raw).ok()).unwrap_or(1))
}

/// What a failed write to this process's stdout or stderr means: a reader that went away
/// (`show big.json | head -c1`) ends the tool quietly and successfully; anything else
/// (`> /dev/full`) is an error.
fn written(result: std::io::Result<()>) -> Result<(), Stop> {
    match result {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::ReaderGone),
        Err(err) => Err(Stop::Failed(format!("cannot write the output: {err}"))),
    }
}

/// Why playing a cassette's text stopped early.
enum Stop {
    /// The reader of the output went away.
    ReaderGone,
    /// A write failed otherwise.
    Failed(String),
}

impl Stop {
    fn into_exit(self) -> Result<ExitCode, String> {
        match self {
            Stop::ReaderGone => Ok(ExitCode::SUCCESS),
            Stop::Failed(message) => Err(message),
        }
    }
}

fn show(cassette: &Cassette) -> Result<ExitCode, String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    written(
        stdout
            .write_all(cassette.transcript().as_bytes())
            .and_then(|()| stdout.flush()),
    )
    .map_or_else(Stop::into_exit, |()| Ok(ExitCode::SUCCESS))
}

/// Bytes each way, and whether the progress line is on the screen.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    /// The progress line is on the screen and must be cleared before output is shown.
    line_shown: AtomicBool,
}

impl Counters {
    fn clear_line(&self) {
        if self.line_shown.swap(false, Ordering::SeqCst) {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Which way a copy goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// This process's stdin to the child's: counted as sent.
    ToChild,
    /// The child's output to this process's: counted as received, and shown, so the progress
    /// line is cleared first.
    FromChild,
}

/// Copies `from` to `to`, counting the bytes, and clears the progress line before showing
/// the child's output.
async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    counters: Arc<Counters>,
    direction: Direction,
) {
    let count = match direction {
        Direction::ToChild => &counters.sent,
        Direction::FromChild => &counters.received,
    };
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        count.fetch_add(read as u64, Ordering::Relaxed);
        if direction == Direction::FromChild {
            counters.clear_line();
        }
        if to.write_all(&buffer[..read]).await.is_err() || to.flush().await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The progress line: the command, the time it has run, and the bytes each way.
fn progress_line(command: &str, elapsed: Duration, counters: &Counters) -> String {
    format!(
        "process-cassette: recording `{command}`, {}s: {} bytes in, {} bytes out",
        elapsed.as_secs(),
        counters.sent.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed)
    )
}

/// The signals `record` catches, each with the signal it passes on.
type Caught = Vec<(tokio::signal::unix::Signal, Signal)>;

/// Catches SIGINT, SIGTERM, SIGHUP and SIGQUIT, from before the command starts, so that none
/// ends this process and leaves the command running unrecorded.
fn catch_signals() -> Result<Caught, String> {
    use tokio::signal::unix::{signal, SignalKind};
    [
        (SignalKind::interrupt(), Signal::Int),
        (SignalKind::terminate(), Signal::Term),
        (SignalKind::hangup(), Signal::Hup),
        (SignalKind::quit(), Signal::Number(libc::SIGQUIT)),
    ]
    .into_iter()
    .map(|(kind, passed)| {
        signal(kind)
            .map(|stream| (stream, passed))
            .map_err(|err| format!("cannot catch signal {passed}: {err}"))
    })
    .collect()
}

/// Waits for `child`'s end, passing on to it every SIGINT, SIGTERM, SIGHUP and SIGQUIT this
/// process gets, through the recorded transport, so the signal is part of the recording.
async fn wait_passing_signals_on(
    child: &mut Child,
    mut streams: Caught,
) -> Result<ExitStatus, String> {
    loop {
        let got = {
            let ended = child.wait();
            let mut ended = std::pin::pin!(ended);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(status) = ended.as_mut().poll(cx) {
                    return Poll::Ready(Err(status));
                }
                for (stream, passed) in &mut streams {
                    if let Poll::Ready(Some(())) = stream.poll_recv(cx) {
                        return Poll::Ready(Ok(*passed));
                    }
                }
                Poll::Pending
            })
            .await
        };
        match got {
            Ok(passed) => {
                // The child may have ended meanwhile: then there is nothing to pass on to.
                let _ = child.signal(passed);
            }
            Err(status) => return status.map_err(|err| err.to_string()),
        }
    }
}

/// The redactions `record` is asked for: this machine's paths, and the patterns, secret
/// variables and framing given.
fn redactions(
    patterns: &[(String, String)],
    secret_env: &[String],
    framed: bool,
) -> Result<Redactions, String> {
    let mut redactions = secret_env
        .iter()
        .fold(Redactions::new(), |redactions, name| {
            redactions.secret_env(name)
        });
    for (placeholder, pattern) in patterns {
        redactions = redactions
            .pattern(pattern, placeholder)
            .map_err(|err| err.to_string())?;
    }
    Ok(if framed {
        redactions.framed_by_content_length()
    } else {
        redactions
    })
}

fn record(
    file: &PathBuf,
    command: &[String],
    progress: bool,
    redactions: Redactions,
) -> Result<ExitCode, String> {
    // Checked and opened before the command runs: a cassette that cannot be written is
    // reported before the command's side effects, not after.
    let target = SaveTarget::open(file).map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new())).redacting(redactions);
    let counters = Arc::new(Counters::default());
    let line = command.join(" ");
    let status = runtime.block_on(async {
        let caught = catch_signals()?;
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawner(Arc::new(recorder.clone()))
            .spawn()
            .map_err(|err| err.to_string())?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // Not awaited to its end: a child may end before this process's stdin does.
        let input = stdin.map(|stdin| {
            tokio::spawn(copy(
                tokio::io::stdin(),
                stdin,
                counters.clone(),
                Direction::ToChild,
            ))
        });
        let out = stdout.map(|from| {
            tokio::spawn(copy(
                from,
                tokio::io::stdout(),
                counters.clone(),
                Direction::FromChild,
            ))
        });
        let err = stderr.map(|from| {
            tokio::spawn(copy(
                from,
                tokio::io::stderr(),
                counters.clone(),
                Direction::FromChild,
            ))
        });
        let ticker = progress.then(|| {
            let counters = counters.clone();
            let line = line.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut ticks = tokio::time::interval_at(
                    tokio::time::Instant::now() + Duration::from_secs(1),
                    Duration::from_millis(250),
                );
                loop {
                    ticks.tick().await;
                    eprint!(
                        "\r\x1b[2K{}",
                        progress_line(&line, start.elapsed(), &counters)
                    );
                    counters.line_shown.store(true, Ordering::SeqCst);
                }
            })
        });
        let status = wait_passing_signals_on(&mut child, caught).await?;
        for copier in [out, err].into_iter().flatten() {
            let _ = copier.await;
        }
        if let Some(input) = input {
            // A write the copier has made may not have returned yet (a thread preempted
            // inside it, under load), and a recording leaves out calls in flight: stop the
            // copier at its next await, after that write, so the write is in the cassette.
            input.abort();
            let _ = input.await;
        }
        if let Some(ticker) = ticker {
            ticker.abort();
            let _ = ticker.await;
            counters.clear_line();
        }
        Ok::<_, String>(status)
    })?;
    recorder.save_to(target).map_err(|err| err.to_string())?;
    runtime.shutdown_background();
    Ok(exit_code(status))
}

/// Runs the cassette's recordings again and prints the report; with `update`, writes the
/// cassette with the spawns that differ recorded again.
fn verify(
    file: &PathBuf,
    update: bool,
    bind: Vec<(String, String)>,
    timeout: Duration,
) -> Result<ExitCode, String> {
    use std::io::Write;
    let cassette = Cassette::load(file).map_err(|err| err.to_string())?;
    // Checked before anything runs, as `record` does.
    let target = update
        .then(|| SaveTarget::open(file))
        .transpose()
        .map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let verifier = bind.into_iter().fold(
        Verifier::new(Arc::new(RealSpawner::new())).timeout(timeout),
        |verifier, (name, value)| verifier.bind(name, value),
    );
    let verification = runtime.block_on(verifier.verify(&cassette));
    runtime.shutdown_background();
    let mut stdout = std::io::stdout().lock();
    let shown = written(
        stdout
            .write_all(verification.to_string().as_bytes())
            .and_then(|()| stdout.flush()),
    );
    if let Err(stop) = shown {
        return stop.into_exit();
    }
    if verification.is_unchanged() {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(target) = target else {
        return Ok(ExitCode::from(1));
    };
    let changed = verification
        .changed()
        .filter(|spawn| spawn.now.is_some())
        .count();
    verification
        .updated(&cassette, &Redactions::new())
        .save_to(target)
        .map_err(|err| err.to_string())?;
    let kept = verification.changed().count() - changed;
    let mut note = format!(
        "recorded {changed} spawn(s) again into {}\n",
        file.display()
    );
    if kept > 0 {
        note.push_str(&format!(
            "{kept} spawn(s) could not run and were kept as they were\n"
        ));
    }
    let code = if kept > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    written(
        stdout
            .write_all(note.as_bytes())
            .and_then(|()| stdout.flush()),
    )
    .map_or_else(Stop::into_exit, |()| Ok(code))
}

/// Plays every recorded output in the order it was recorded, each write flushed before the
/// next, so that stdout and stderr interleave as they did (under `2>&1` too).
fn replay(cassette: &Cassette) -> Result<ExitCode, String> {
    use std::io::Write;
    let mut code = ExitCode::SUCCESS;
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    for recording in &cassette.spawns {
        for event in &recording.events {
            let played = match event {
                Event::Output { fd: 1, data } => {
                    written(stdout.write_all(&data.0).and_then(|()| stdout.flush()))
                }
                Event::Output { fd: 2, data } => {
                    written(stderr.write_all(&data.0).and_then(|()| stderr.flush()))
                }
                Event::Exited {
                    code: exited,
                    signal,
                } => {
                    code = shell_code(*exited, *signal);
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(stop) = played {
                return stop.into_exit();
            }
        }
    }
    Ok(code)
}
