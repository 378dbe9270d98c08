//! The explorer finds the ordering bugs of process-handling code: four deliberately wrong
//! protocols are each caught within 1,000 schedules, the printed schedule replays the
//! failure, and their correct versions pass 10,000 schedules.

use std::future::Future;
use std::sync::{Arc, Mutex};

mod common;
use common::{caught, found};

use process_transport_api::{
    implement::ProducerCall, ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport, PushProducer,
    SpawnSpec,
};
use process_transport_explore::{Coverage, Exploration, Explore};
use process_transport_fakes::{DeliveredEvent, Logged, Script, TransportCall};

/// What a protocol saw, for the body's assertions.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    stdout: Vec<u8>,
    stderr_after_stdout: Option<bool>,
    end: Option<ProcessEnd>,
}

type Shared = Arc<Mutex<Seen>>;

fn passes<B, F>(body: B)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let explored = Explore::new().schedules(10_000).run(body);
    assert_eq!(explored.schedules, 10_000);
}

// 1. A line arrives whole.

/// Takes every chunk of stdout for one or more whole lines.
struct ChunkIsLines(Shared);

impl ProcessProtocol for ChunkIsLines {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let mut seen = self.0.lock().unwrap();
        seen.lines
            .extend(text.split_terminator('\n').map(str::to_owned));
    }
}

/// Keeps a partial line until its newline comes.
struct BufferedLines(Shared, Vec<u8>);

impl ProcessProtocol for BufferedLines {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        self.1.extend_from_slice(data);
        while let Some(end) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            self.0.lock().unwrap().lines.push(line);
        }
    }
}

async fn two_lines(
    exploration: Exploration,
    protocol: impl FnOnce(Shared) -> Box<dyn ProcessProtocol>,
) {
    lines_of(exploration, protocol, ["alpha", "beta"]).await
}

/// The child prints `lines`, each with a newline; the protocol must see them as printed.
async fn lines_of(
    exploration: Exploration,
    protocol: impl FnOnce(Shared) -> Box<dyn ProcessProtocol>,
    lines: [&str; 2],
) {
    let reactor = exploration.reactor();
    let printed: String = lines.iter().map(|line| format!("{line}\n")).collect();
    reactor.register(["ls"], Script::new().stdout(printed).exit(0));
    let seen = Shared::default();
    let child = reactor
        .spawn(protocol(seen.clone()), SpawnSpec::new("ls"))
        .unwrap();
    child.transport().ended().await;
    assert_eq!(seen.lock().unwrap().lines, lines);
}

#[test]
fn a_protocol_that_assumes_a_line_arrives_whole_is_caught() {
    let message = caught(|e| two_lines(e, |seen| Box::new(ChunkIsLines(seen))));
    assert!(message.contains("alpha"), "{message}");
}

#[test]
fn a_protocol_that_buffers_partial_lines_passes() {
    passes(|e| two_lines(e, |seen| Box::new(BufferedLines(seen, Vec::new()))));
}

// 2. Reading stdout only until process_exited.

/// Stops taking output once the exit is known.
struct UntilExit(Shared);

impl ProcessProtocol for UntilExit {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        let mut seen = self.0.lock().unwrap();
        if seen.end.is_none() {
            seen.stdout.extend_from_slice(data);
        }
    }
    fn process_exited(&mut self, end: ProcessEnd) {
        self.0.lock().unwrap().end = Some(end);
    }
}

/// Takes output until `process_ended`.
struct UntilEnded(Shared);

impl ProcessProtocol for UntilEnded {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, _: ChildFd, data: &[u8]) {
        self.0.lock().unwrap().stdout.extend_from_slice(data);
    }
    fn process_ended(&mut self, end: ProcessEnd) {
        self.0.lock().unwrap().end = Some(end);
    }
}

async fn all_output(
    exploration: Exploration,
    protocol: impl FnOnce(Shared) -> Box<dyn ProcessProtocol>,
) {
    output_of(exploration, protocol, "done: 3 files\n").await
}

/// The child prints `report` and exits; the protocol must keep all of it.
async fn output_of(
    exploration: Exploration,
    protocol: impl FnOnce(Shared) -> Box<dyn ProcessProtocol>,
    report: &str,
) {
    let reactor = exploration.reactor();
    reactor.register(["report"], Script::new().stdout(report).exit(0));
    let seen = Shared::default();
    let child = reactor
        .spawn(protocol(seen.clone()), SpawnSpec::new("report"))
        .unwrap();
    child.transport().ended().await;
    let stdout = String::from_utf8_lossy(&seen.lock().unwrap().stdout).into_owned();
    assert_eq!(stdout, report);
}

#[test]
fn a_protocol_that_reads_only_until_process_exited_is_caught() {
    let message = caught(|e| all_output(e, |seen| Box::new(UntilExit(seen))));
    assert!(message.contains("done: 3 files"), "{message}");
}

#[test]
fn a_protocol_that_reads_until_process_ended_passes() {
    passes(|e| all_output(e, |seen| Box::new(UntilEnded(seen))));
}

// 3. stderr after stdout.

/// Takes the first stderr output as the sign that stdout is complete.
struct StderrMeansStdoutDone(Shared);

impl ProcessProtocol for StderrMeansStdoutDone {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        let mut seen = self.0.lock().unwrap();
        match fd {
            ChildFd::STDOUT => seen.stdout.extend_from_slice(data),
            _ => {
                if seen.stderr_after_stdout.is_none() {
                    let complete = seen.stdout.ends_with(b"\n");
                    seen.stderr_after_stdout = Some(complete);
                }
            }
        }
    }
}

/// Waits for the loss of stdout to call it complete.
struct StdoutDoneAtItsLoss(Shared);

impl ProcessProtocol for StdoutDoneAtItsLoss {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        if fd == ChildFd::STDOUT {
            self.0.lock().unwrap().stdout.extend_from_slice(data);
        }
    }
    fn child_connection_lost(&mut self, fd: ChildFd) {
        if fd == ChildFd::STDOUT {
            let mut seen = self.0.lock().unwrap();
            let complete = seen.stdout.ends_with(b"\n");
            seen.stderr_after_stdout = Some(complete);
        }
    }
}

async fn stdout_then_stderr(
    exploration: Exploration,
    protocol: impl FnOnce(Shared) -> Box<dyn ProcessProtocol>,
) {
    both_outputs(exploration, protocol, ("compiled\n", "1 warning\n")).await
}

/// The child writes `outputs.0` on stdout first, then `outputs.1` on stderr; the pipes are
/// read in either order.
async fn both_outputs(
    exploration: Exploration,
    protocol: impl FnOnce(Shared) -> Box<dyn ProcessProtocol>,
    outputs: (&str, &str),
) {
    let reactor = exploration.reactor();
    reactor.register(
        ["build"],
        Script::new().stdout(outputs.0).stderr(outputs.1).exit(0),
    );
    let seen = Shared::default();
    let child = reactor
        .spawn(protocol(seen.clone()), SpawnSpec::new("build"))
        .unwrap();
    child.transport().ended().await;
    assert_eq!(
        seen.lock().unwrap().stderr_after_stdout,
        Some(true),
        "stdout was judged complete before it was"
    );
}

#[test]
fn a_protocol_that_assumes_stderr_comes_after_stdout_is_caught() {
    let message = caught(|e| stdout_then_stderr(e, |seen| Box::new(StderrMeansStdoutDone(seen))));
    assert!(message.contains("judged complete"), "{message}");
}

#[test]
fn a_protocol_that_waits_for_the_loss_of_stdout_passes() {
    passes(|e| stdout_then_stderr(e, |seen| Box::new(StdoutDoneAtItsLoss(seen))));
}

// 4. Writing after a pause.

const CHUNK: &[u8] = b"0123456789abcdef\n";
const CHUNKS: usize = 6;

/// How a feeding run feeds: `chunks` copies of `chunk`.
#[derive(Clone, Copy)]
struct Feed {
    chunk: &'static [u8],
    chunks: usize,
}

const FEED: Feed = Feed {
    chunk: CHUNK,
    chunks: CHUNKS,
};

/// Feeds `cat` a chunk each time its echo arrives, and registers itself as the transport's
/// push producer; `respects_pause` says whether it holds back while paused.
struct Feeder {
    transport: Option<Arc<dyn ProcessTransport>>,
    state: Arc<Mutex<FeedState>>,
    respects_pause: bool,
}

struct FeedState {
    feed: Feed,
    sent: usize,
    paused: bool,
    /// A chunk is owed: echo came while paused.
    owed: bool,
}

struct Pauses(Arc<Mutex<FeedState>>, Arc<dyn ProcessTransport>);

impl PushProducer for Pauses {
    fn pause_producing(&self) {
        self.0.lock().unwrap().paused = true;
    }
    fn resume_producing(&self) {
        let owed = {
            let mut state = self.0.lock().unwrap();
            state.paused = false;
            std::mem::take(&mut state.owed)
        };
        if owed {
            feed(&self.0, &self.1);
        }
    }
    fn stop_producing(&self) {}
}

fn feed(state: &Mutex<FeedState>, transport: &Arc<dyn ProcessTransport>) {
    let (sent, feed) = {
        let mut state = state.lock().unwrap();
        if state.sent == state.feed.chunks {
            return;
        }
        state.sent += 1;
        (state.sent, state.feed)
    };
    transport.write(feed.chunk).unwrap();
    if sent == feed.chunks {
        transport.close_stdin();
    }
}

impl ProcessProtocol for Feeder {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        let producer = Arc::new(Pauses(self.state.clone(), transport.clone()));
        transport.register_producer(producer, true).unwrap();
        // Two chunks in flight: more than the child may have read when it answers.
        feed(&self.state, &transport);
        feed(&self.state, &transport);
        self.transport = Some(transport);
    }
    fn child_data_received(&mut self, _: ChildFd, _: &[u8]) {
        let Some(transport) = &self.transport else {
            return;
        };
        let paused = self.state.lock().unwrap().paused;
        if paused && self.respects_pause {
            self.state.lock().unwrap().owed = true;
            return;
        }
        feed(&self.state, transport);
    }
}

async fn feeding(exploration: Exploration, respects_pause: bool) {
    feeding_with(exploration, respects_pause, FEED).await
}

async fn feeding_with(exploration: Exploration, respects_pause: bool, feed: Feed) {
    let reactor = exploration.reactor();
    reactor.register(["cat"], Script::cat());
    let child = reactor
        .spawn(
            Box::new(Feeder {
                transport: None,
                state: Arc::new(Mutex::new(FeedState {
                    feed,
                    sent: 0,
                    paused: false,
                    owed: false,
                })),
                respects_pause,
            }),
            SpawnSpec::new("cat"),
        )
        .unwrap();
    let transport = child.transport();
    // A pipe that holds one chunk: the second one written before the child reads pauses.
    transport.set_high_water(feed.chunk.len());
    let end = transport.ended().await;
    assert_eq!(end, ProcessEnd::Done);
    let mut paused = false;
    for entry in transport.call_log().entries() {
        match entry {
            Logged::Event(DeliveredEvent::Producer(ProducerCall::Pause)) => paused = true,
            Logged::Event(DeliveredEvent::Producer(ProducerCall::Resume)) => paused = false,
            Logged::Call(TransportCall::Write(..), _) => {
                assert!(!paused, "wrote while paused:\n{}", transport.call_log())
            }
            _ => {}
        }
    }
    assert_eq!(transport.value(), feed.chunk.repeat(feed.chunks));
}

#[test]
fn a_protocol_that_writes_after_a_pause_is_caught() {
    let message = caught(|e| feeding(e, false));
    assert!(message.contains("wrote while paused"), "{message}");
}

#[test]
fn a_protocol_that_holds_back_while_paused_passes() {
    passes(|e| feeding(e, true));
}

// Exhaustive mode on the same four, with small inputs.

/// Every distinct order of `body`: all of them pass, and there are `orders`.
fn proven<B, F>(orders: u32, body: B)
where
    B: Fn(Exploration) -> F,
    F: Future<Output = ()>,
{
    let explored = Explore::new().exhaustive().schedules(100_000).run(body);
    assert_eq!(
        (explored.coverage, explored.schedules),
        (Coverage::All, orders),
        "{explored}"
    );
}

#[test]
fn exhaustively_a_line_split_is_found_and_buffering_is_proven_for_two_short_lines() {
    let message = found(24, |e| {
        lines_of(e, |seen| Box::new(ChunkIsLines(seen)), ["a", "b"])
    });
    assert!(message.contains("\"a\""), "{message}");
    proven(1_386, |e| {
        lines_of(
            e,
            |seen| Box::new(BufferedLines(seen, Vec::new())),
            ["a", "b"],
        )
    });
}

#[test]
fn exhaustively_output_after_the_exit_is_found_and_reading_to_the_end_is_proven() {
    let message = found(56, |e| {
        output_of(e, |seen| Box::new(UntilExit(seen)), "ok\n")
    });
    assert!(message.contains("ok"), "{message}");
    proven(510, |e| {
        output_of(e, |seen| Box::new(UntilEnded(seen)), "ok\n")
    });
}

#[test]
fn exhaustively_stderr_first_is_found_and_waiting_for_the_loss_is_proven() {
    let outputs = ("a\n", "w\n");
    let message = found(360, |e| {
        both_outputs(e, |seen| Box::new(StderrMeansStdoutDone(seen)), outputs)
    });
    assert!(message.contains("judged complete"), "{message}");
    proven(2_140, |e| {
        both_outputs(e, |seen| Box::new(StdoutDoneAtItsLoss(seen)), outputs)
    });
}

/// The write while paused needs five chunks: the echo of the first two, split in three,
/// feeds the third and fourth (the pause) and then the fifth. The fix is proven on three.
#[test]
fn exhaustively_a_write_while_paused_is_found_and_holding_back_is_proven_for_three_chunks() {
    let five = Feed {
        chunk: b"a\n",
        chunks: 5,
    };
    let message = found(30_560, |e| feeding_with(e, false, five));
    assert!(message.contains("wrote while paused"), "{message}");
    let three = Feed {
        chunk: b"a\n",
        chunks: 3,
    };
    // 36,930 orders without the reduction: a `cat` reading input it has read already shows
    // nothing, and is not tried both ways around what leaves it alone.
    proven(10_512, |e| feeding_with(e, true, three));
}

/// The reduction skips only orders that repeat one explored: with and without it, the runs
/// that reach their end show the same set of call logs.
#[test]
fn the_reduction_loses_no_call_log() {
    let logs = |reduce: bool| {
        let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let into = seen.clone();
        let explored = Explore::new()
            .exhaustive()
            .reduce(reduce)
            .schedules(100_000)
            .run(move |e| {
                let into = into.clone();
                async move {
                    let explorer = e.explorer().clone();
                    feeding_with(
                        e,
                        true,
                        Feed {
                            chunk: b"a\n",
                            chunks: 2,
                        },
                    )
                    .await;
                    into.lock().unwrap().insert(explorer.transcript());
                }
            });
        assert_eq!(explored.coverage, Coverage::All);
        let logs = seen.lock().unwrap().clone();
        (explored, logs)
    };
    let (reduced, with) = logs(true);
    let (all, without) = logs(false);
    assert!(reduced.schedules < all.schedules, "{reduced} / {all}");
    assert_eq!(with, without);
}
