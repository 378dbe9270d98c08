//! Record once, replay forever: the same code runs a real `sh` dialogue through a
//! `RecordingSpawner`, which writes a cassette; then it runs again on a `ReplaySpawner`
//! loaded from that file, with no process started, and gets the same answers. The cassette's
//! transcript is printed, and a spawn the cassette does not hold shows the error a test
//! would get.
//!
//! `cargo run -p process-transport-tests --example cassette [FILE]` (default: a file in the
//! temporary directory).

use std::path::PathBuf;
use std::sync::Arc;

use process_transport_api::ProcessSpawner;
use process_transport_cassette::{Cassette, RecordingSpawner, ReplaySpawner};
use process_transport_command::{Command, Stdio};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The code under test: it greets two names through a shell that answers one line per line,
/// and reports what the shell said on stderr and how it ended.
async fn greet(spawner: Arc<dyn ProcessSpawner>) -> std::io::Result<Vec<String>> {
    let script =
        "while read name; do echo \"hello, $name\"; done; echo 'no more names' >&2; exit 3";
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut heard = Vec::new();
    for name in ["ada", "grace"] {
        // Each answer is read before the next name is sent: a dialogue, not a batch.
        stdin.write_all(format!("{name}\n").as_bytes()).await?;
        heard.push(lines.next_line().await?.unwrap_or_default());
    }
    drop(stdin);
    let output = child.wait_with_output().await?;
    heard.push(format!(
        "stderr {:?}, {}",
        String::from_utf8_lossy(&output.stderr),
        output.status
    ));
    Ok(heard)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("greet-{}.cassette.json", std::process::id())),
        PathBuf::from,
    );

    println!("== record: real `sh`, through a RecordingSpawner");
    let recorder = RecordingSpawner::new(Arc::new(RealSpawner::new()));
    let recorded = greet(Arc::new(recorder.clone())).await?;
    for line in &recorded {
        println!("   {line}");
    }
    recorder.save(&path)?;
    let size = std::fs::metadata(&path)?.len();
    println!("   saved {} ({size} bytes)", path.display());

    println!("\n== the cassette's transcript (process-cassette show prints the same)");
    print!("{}", Cassette::load(&path)?.transcript());

    println!("\n== replay: the same code on a ReplaySpawner, no process started");
    let replay = ReplaySpawner::load(&path)?;
    let replayed = greet(Arc::new(replay.clone())).await?;
    for line in &replayed {
        println!("   {line}");
    }
    replay.assert_all_used();
    assert_eq!(replayed, recorded, "the replay answers as the real run did");
    println!("   same answers as the real run; every recorded spawn was served");

    println!("\n== a spawn the cassette does not hold");
    let err = Command::new("sh")
        .args(["-c", "echo hi"])
        .spawner(Arc::new(replay))
        .output()
        .await
        .expect_err("not recorded");
    println!("   {err}");
    Ok(())
}
