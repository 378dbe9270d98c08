//! `process-cassette`: record a command into a cassette, show a cassette's transcript, or
//! replay a cassette's output.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use process_transport_cassette::{Cassette, Event, RecordingSpawner, Redactions};
use process_transport_command::{Command, ExitStatus, Stdio};
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
    let cli = Cli::parse();
    let result = match cli.action {
        Action::Record {
            file,
            progress,
            command,
        } => {
            let shown = match progress {
                Progress::Auto => std::io::stderr().is_terminal(),
                Progress::Always => true,
                Progress::Never => false,
            };
            record(&file, &command, shown)
        }
        Action::Show { file } => Cassette::load(&file)
            .map(|cassette| {
                print!("{}", cassette.transcript());
                ExitCode::SUCCESS
            })
            .map_err(|err| err.to_string()),
        Action::Replay { file } => Cassette::load(&file)
            .map_err(|err| err.to_string())
            .and_then(|cassette| replay(&cassette.restored(&Redactions::new()))),
    };
    result.unwrap_or_else(|message| {
        eprintln!("process-cassette: {message}");
        ExitCode::from(2)
    })
}

/// The shell's exit code for a status: the code, or 128 plus the signal.
fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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

fn record(file: &PathBuf, command: &[String], progress: bool) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
    let counters = Arc::new(Counters::default());
    let line = command.join(" ");
    let status = runtime.block_on(async {
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
        if let Some(stdin) = stdin {
            // Not awaited: a child may end before this process's stdin does.
            tokio::spawn(copy(
                tokio::io::stdin(),
                stdin,
                counters.clone(),
                Direction::ToChild,
            ));
        }
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
        let status = child.wait().await.map_err(|err| err.to_string())?;
        for copier in [out, err].into_iter().flatten() {
            let _ = copier.await;
        }
        if let Some(ticker) = ticker {
            ticker.abort();
            let _ = ticker.await;
            counters.clear_line();
        }
        Ok::<_, String>(status)
    })?;
    recorder.save(file).map_err(|err| err.to_string())?;
    runtime.shutdown_background();
    Ok(exit_code(status))
}

fn replay(cassette: &Cassette) -> Result<ExitCode, String> {
    use std::io::Write;
    let mut code = ExitCode::SUCCESS;
    for recording in &cassette.spawns {
        for event in &recording.events {
            match event {
                Event::Output { fd: 1, data } => {
                    std::io::stdout()
                        .write_all(&data.0)
                        .map_err(|err| err.to_string())?;
                }
                Event::Output { fd: 2, data } => {
                    std::io::stderr()
                        .write_all(&data.0)
                        .map_err(|err| err.to_string())?;
                }
                Event::Exited {
                    code: exited,
                    signal,
                } => {
                    let raw = exited.or(signal.map(|s| 128 + s)).unwrap_or(1);
                    code = ExitCode::from(u8::try_from(raw).unwrap_or(1));
                }
                _ => {}
            }
        }
    }
    std::io::stdout().flush().map_err(|err| err.to_string())?;
    Ok(code)
}
