//! `process-cassette`: record a command into a cassette, show a cassette's transcript, or
//! replay a cassette's output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use process_transport_cassette::{Cassette, Event, RecordingSpawner};
use process_transport_command::{Command, ExitStatus, Stdio};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.action {
        Action::Record { file, command } => record(&file, &command),
        Action::Show { file } => Cassette::load(&file)
            .map(|cassette| {
                print!("{}", cassette.transcript());
                ExitCode::SUCCESS
            })
            .map_err(|err| err.to_string()),
        Action::Replay { file } => Cassette::load(&file)
            .map_err(|err| err.to_string())
            .and_then(|cassette| replay(&cassette)),
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

async fn copy(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

fn record(file: &PathBuf, command: &[String]) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
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
            tokio::spawn(copy(tokio::io::stdin(), stdin));
        }
        let out = tokio::spawn(async move {
            if let Some(stdout) = stdout {
                copy(stdout, tokio::io::stdout()).await;
            }
        });
        let err = tokio::spawn(async move {
            if let Some(stderr) = stderr {
                copy(stderr, tokio::io::stderr()).await;
            }
        });
        let status = child.wait().await.map_err(|err| err.to_string())?;
        let _ = (out.await, err.await);
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
