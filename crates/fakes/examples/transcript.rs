//! Drives a small line-based protocol through `MemoryProcessReactor` and prints the ordered
//! transcript of what crossed the transport: the protocol asks a calculator child to add
//! numbers, one question per line, and collects one answer per line.
//!
//! Run with `cargo run -p process-transport-fakes --example transcript`.

use std::sync::{Arc, Mutex};

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnSpec,
};
use process_transport_fakes::MemoryProcessReactor;

type Transcript = Arc<Mutex<Vec<String>>>;

/// Sends each question as a line, then closes stdin; splits the replies into lines.
struct LineClient {
    questions: Vec<String>,
    partial: Vec<u8>,
    answers: Vec<String>,
    transcript: Transcript,
}

impl LineClient {
    fn note(&self, line: String) {
        self.transcript.lock().expect("transcript lock").push(line);
    }
}

impl ProcessProtocol for LineClient {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        self.note(format!("make_connection (pid {:?})", transport.pid()));
        for question in &self.questions {
            let line = format!("{question}\n");
            match transport.write(line.as_bytes()) {
                Ok(()) => self.note(format!("-> fd 0: {question:?}")),
                Err(err) => self.note(format!("-> fd 0 refused: {err}")),
            }
        }
        transport.close_stdin();
        self.note("close_stdin".into());
    }

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        self.note(format!("<- fd {fd}: {:?}", String::from_utf8_lossy(data)));
        if fd != ChildFd::STDOUT {
            return;
        }
        self.partial.extend_from_slice(data);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let answer = String::from_utf8_lossy(&line[..end]).into_owned();
            self.note(format!("   answer: {answer}"));
            self.answers.push(answer);
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

/// What the played child does with one line: add the numbers on it.
fn answer(line: &str) -> Result<String, String> {
    line.split_whitespace()
        .map(|word| {
            word.parse::<i64>()
                .map_err(|_| format!("not a number: {word}"))
        })
        .sum::<Result<i64, String>>()
        .map(|sum| sum.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transcript = Transcript::default();
    let client = LineClient {
        questions: vec!["1 2".into(), "40 2".into(), "x 1".into()],
        partial: Vec::new(),
        answers: Vec::new(),
        transcript: transcript.clone(),
    };
    let reactor = MemoryProcessReactor::new();
    let spawner: &dyn ProcessSpawner = &reactor;
    let transport = futures_executor::block_on(
        spawner.spawn_process(Box::new(client), SpawnSpec::new("adder")),
    )?;

    // Play the child: read stdin to its end, answer each line in 2-byte chunks so the
    // protocol's framing is exercised, report bad lines on stderr, exit 0.
    let child = reactor.last_child();
    let input = String::from_utf8(child.read(ChildFd::STDIN))?;
    for line in input.lines() {
        match answer(line) {
            Ok(sum) => {
                for chunk in format!("{sum}\n").as_bytes().chunks(2) {
                    child.write(ChildFd::STDOUT, chunk)?;
                }
            }
            Err(why) => child.write(ChildFd::STDERR, format!("{why}\n"))?,
        }
    }
    child.exit(0);

    let end = futures_executor::block_on(transport.ended());
    println!(
        "transcript of `{}` on MemoryProcessReactor:",
        reactor.spawns()[0].command_line()
    );
    for line in transcript.lock().expect("transcript lock").iter() {
        println!("  {line}");
    }
    let answers = child.with_protocol(|client: &mut LineClient| client.answers.clone());
    println!("answers: {answers:?}; ended: {end}");
    Ok(())
}
