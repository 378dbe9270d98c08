//! An LSP-like client, written the way real ones are: a send task, a receive task and a log
//! task in a `JoinSet`, a timeout per request, a `biased` `select!`, the `Command` front door;
//! explored against a scripted server. A client that takes the server's log line "ready" for
//! the end of the handshake sends its first request before the handshake completed: the
//! explorer finds the order where the log line comes first and shrinks it to a short
//! schedule. The correct client passes 10,000 schedules and every distinct order.
//!
//! The wire format is a terse one, one message a line, to keep the number of distinct orders
//! small: `ID METHOD [SESSION]` from the client, `ID RESULT` from the server (`y`, or `n` for
//! a request before the handshake); `i` is the client's "initialized" notification.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_transport_api::ChildFd;
use process_transport_command::{Command, Stdio};
use process_transport_explore::{replay, Coverage, Exploration, Explore};
use process_transport_fakes::{FakeChild, Script};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

/// The server: answers `1 init` with a session (`s`) on stdout and then logs `r` (ready) on
/// stderr; wants the `i` notification and the session on every later request; ends at the
/// end of its input.
fn server() -> Script {
    #[derive(Default)]
    struct State {
        line: Vec<u8>,
        initialized: bool,
    }
    let state = Arc::new(Mutex::new(State::default()));
    Script::new()
        .on_stdin(move |child: &FakeChild, data: &[u8]| {
            let mut state = state.lock().unwrap();
            state.line.extend_from_slice(data);
            while let Some(end) = state.line.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = state.line.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                let words: Vec<&str> = line.split(' ').collect();
                match words.as_slice() {
                    ["1", "init"] => {
                        child.write(ChildFd::STDOUT, "1 s\n").unwrap();
                        child.write(ChildFd::STDERR, "r\n").unwrap();
                    }
                    ["i"] => state.initialized = true,
                    [id, _, "s"] if state.initialized => {
                        child.write(ChildFd::STDOUT, format!("{id} y\n")).unwrap();
                    }
                    [id, ..] => {
                        child.write(ChildFd::STDOUT, format!("{id} n\n")).unwrap();
                    }
                    [] => {}
                }
            }
        })
        .on_stdin_eof(|child| child.exit(0))
}

/// The client's side of the connection.
struct Client {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>,
    next_id: u64,
    session: Option<String>,
}

impl Client {
    /// Sends `method` and returns the answer's future, bounded by a timeout.
    fn request(&mut self, method: &str) -> impl Future<Output = String> + 'static {
        self.next_id += 1;
        let id = self.next_id;
        let (answer, answered) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, answer);
        let session = self
            .session
            .as_deref()
            .map(|session| format!(" {session}"))
            .unwrap_or_default();
        self.outgoing
            .send(format!("{id} {method}{session}\n"))
            .expect("the send task runs");
        async move {
            match tokio::time::timeout(Duration::from_secs(5), answered).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => panic!("request {id} got no answer: the server ended"),
                Err(_) => panic!("request {id} timed out"),
            }
        }
    }
}

/// How the client decides the handshake is over.
#[derive(Clone, Copy)]
enum Handshake {
    /// Wrong: the server's log line "ready", or the answer, whichever comes first.
    LogLineOrAnswer,
    /// Right: the answer to `init` itself.
    Answer,
}

/// Starts the server, shakes hands, makes one request, shuts down; checks the answer.
async fn session(exploration: Exploration, handshake: Handshake) {
    let reactor = exploration.reactor().clone();
    reactor.register(["lsp-server"], server());
    let mut child = Command::new("lsp-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawner(Arc::new(reactor))
        .spawn()
        .expect("the server starts");
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");

    let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
    let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>> = Arc::default();
    let (ready, mut logged_ready) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // The send task: one message at a time, then the end of input.
    tasks.spawn(async move {
        while let Some(message) = to_send.recv().await {
            stdin.write_all(message.as_bytes()).await.expect("sent");
        }
        stdin.shutdown().await.expect("closed");
    });
    // The receive task: each answer to its request.
    let answers = pending.clone();
    tasks.spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.expect("read") {
            let (id, result) = line.split_once(' ').expect("an answer has an id");
            let id: u64 = id.parse().expect("a numeric id");
            let waiting = answers.lock().unwrap().remove(&id);
            if let Some(waiting) = waiting {
                let _ = waiting.send(result.to_owned());
            }
        }
    });
    // The log task: watches the server's log for "ready".
    tasks.spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Some(line) = lines.next_line().await.expect("read") {
            if line == "r" {
                ready.send_replace(true);
            }
        }
    });

    let mut client = Client {
        outgoing,
        pending,
        next_id: 0,
        session: None,
    };
    let init = client.request("init");
    match handshake {
        Handshake::Answer => client.session = Some(init.await),
        Handshake::LogLineOrAnswer => {
            let mut init = std::pin::pin!(init);
            tokio::select! {
                biased;
                session = &mut init => client.session = Some(session),
                _ = logged_ready.wait_for(|ready| *ready) => {}
            }
        }
    }
    client.outgoing.send("i\n".to_owned()).expect("sent");
    let answer = client.request("hover").await;
    assert_eq!(
        answer, "y",
        "the request was sent before the handshake completed"
    );
    // Shut down: the send task ends the server's input, the server exits.
    drop(client);
    while let Some(task) = tasks.join_next().await {
        task.expect("a client task");
    }
    assert!(child.wait().await.expect("waited").success());
}

#[test]
fn a_request_sent_before_the_handshake_completed_is_caught_and_shrunk() {
    let body = |e| session(e, Handshake::LogLineOrAnswer);
    let failure = Explore::new()
        .schedules(1_000)
        .try_run(body)
        .expect_err("the explorer finds the early request");
    assert!(
        failure
            .message
            .contains("the request was sent before the handshake completed"),
        "{failure}"
    );
    // The order that breaks it: the log line before the answer. Short, and it replays.
    assert!(failure.schedule.0.len() <= 6, "{failure}");
    assert!(
        !failure.message.contains("not the same run"),
        "three replays gave the same run: {failure}"
    );
    let replayed = catch_unwind(AssertUnwindSafe(|| replay(&failure.schedule.0, body)));
    assert!(
        replayed.is_err(),
        "the printed schedule replays the failure"
    );
}

#[test]
fn the_client_that_waits_for_the_answer_passes_10_000_schedules() {
    let explored = Explore::new()
        .schedules(10_000)
        .run(|e| session(e, Handshake::Answer));
    assert_eq!(explored.schedules, 10_000);
}

#[test]
fn the_client_that_waits_for_the_answer_passes_every_distinct_order() {
    let explored = Explore::new()
        .exhaustive()
        .schedules(1_000_000)
        .run(|e| session(e, Handshake::Answer));
    eprintln!("{explored}");
    assert_eq!(explored.coverage, Coverage::All, "{explored}");
}
