//! One protocol, two spawners picked at run time behind `dyn ProcessSpawner`: the real
//! transport runs `sort`, the fake reactor plays it. Each run prints the transcript of what
//! crossed the transport.
//!
//! `cargo run -p process-transport-tests --example swap [real|fake|both]` (default: both).

use std::sync::{Arc, Mutex};

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec,
};
use process_transport_fakes::MemoryProcessReactor;
use process_transport_real::RealSpawner;

type Transcript = Arc<Mutex<Vec<String>>>;

/// Sends lines to a sorter, closes its stdin, collects the reply lines and the end.
struct SortClient {
    lines: Vec<&'static str>,
    partial: Vec<u8>,
    transcript: Transcript,
}

impl SortClient {
    fn note(&self, line: String) {
        self.transcript.lock().expect("transcript lock").push(line);
    }
}

impl ProcessProtocol for SortClient {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        self.note("make_connection".into());
        for line in &self.lines {
            match transport.write_sequence(&[line.as_bytes(), b"\n"]) {
                Ok(()) => self.note(format!("-> stdin  {line:?}")),
                Err(err) => self.note(format!("-> stdin refused: {err}")),
            }
        }
        transport.close_stdin();
        self.note("close_stdin".into());
    }

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        if fd != ChildFd::STDOUT {
            self.note(format!("<- fd {fd}  {:?}", String::from_utf8_lossy(data)));
            return;
        }
        self.partial.extend_from_slice(data);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.note(format!(
                "<- stdout {:?}",
                String::from_utf8_lossy(&line[..end])
            ));
        }
    }

    fn child_connection_lost(&mut self, fd: ChildFd) {
        self.note(format!("child_connection_lost({fd})"));
    }

    fn process_exited(&mut self, reason: ProcessEnd) {
        self.note(format!("process_exited: {reason}"));
    }

    fn process_ended(&mut self, reason: ProcessEnd) {
        self.note(format!("process_ended: {reason}"));
    }
}

/// Runs the protocol on `spawner`; `play` stands in for the child when there is none.
async fn run(
    name: &str,
    spawner: &dyn ProcessSpawner,
    play: impl FnOnce(),
) -> Result<(), Box<dyn std::error::Error>> {
    let transcript = Transcript::default();
    let client = SortClient {
        lines: vec!["pear", "apple", "fig"],
        partial: Vec::new(),
        transcript: transcript.clone(),
    };
    let spec = SpawnSpec::new("sort").env("LC_ALL", "C");
    let transport = spawner.spawn_process(Box::new(client), spec).await?;
    play();
    let end = transport.ended().await;
    println!("== {name}: sort (ended: {end})");
    // Losses of different fds may interleave differently on real pipes; the rest is the same.
    for line in transcript.lock().expect("transcript lock").iter() {
        println!("   {line}");
    }
    Ok(())
}

/// Plays `sort` on the fake reactor's last child: read stdin, sort the lines, exit 0.
fn play_sort(reactor: &MemoryProcessReactor) {
    let child = reactor.last_child();
    let input = String::from_utf8_lossy(&child.read(ChildFd::STDIN)).into_owned();
    let mut lines: Vec<&str> = input.lines().collect();
    lines.sort_unstable();
    for line in lines {
        child
            .write(ChildFd::STDOUT, format!("{line}\n"))
            .expect("stdout is open");
    }
    child.exit(0);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "both".into());
    if !["real", "fake", "both"].contains(&which.as_str()) {
        return Err(format!("unknown choice {which:?}: say real, fake or both").into());
    }
    if which != "fake" {
        let spawner: Box<dyn ProcessSpawner> = Box::new(RealSpawner::new());
        run("real transport", spawner.as_ref(), || {}).await?;
    }
    if which != "real" {
        let reactor = MemoryProcessReactor::new();
        let spawner: Box<dyn ProcessSpawner> = Box::new(reactor.clone());
        run("MemoryProcessReactor", spawner.as_ref(), || {
            play_sort(&reactor)
        })
        .await?;
    }
    Ok(())
}
