//! A model-based property test: random sequences of writes, closes, signals, pause/resume and
//! producer registration, applied to a real program and to the fakes' scripted twin of it,
//! give equal traces: what each call returned, the bytes per fd, the fds lost, the end. The
//! programs: `cat`; a `sh` loop answering each line; `head -c N`, which stops reading early;
//! and a `sh` that ignores `TERM` before it runs `cat`.
//!
//! 200 cases per program by default; `PROPTEST_CASES=10000 cargo test --release --test
//! model_fidelity` for an on-demand run.
//! After each step the harness waits, on events only, until both sides are quiet (the echo
//! arrived, the exit was reported), so that the real side's timing cannot leak into the trace.

use std::sync::Arc;

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessSpawner, ProcessTransport, Signal, SpawnSpec, TransportError,
};
use process_transport_contract::{Catalog, Child, ShellCatalog, READY};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;
use process_transport_tests::twins::twin;
use process_transport_tests::{check_order, guard, Event, Log, Recorder, RecordingProducer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug)]
enum Op {
    Write(Vec<u8>),
    WriteSequence(Vec<Vec<u8>>),
    WriteTo(ChildFd, Vec<u8>),
    Close(ChildFd),
    CloseStdin,
    LoseConnection,
    Signal(Signal),
    Pause,
    Resume,
    Register { streaming: bool },
    Unregister,
}

/// A real program and what its scripted twin must do the same.
#[derive(Clone, Copy, Debug)]
enum Program {
    /// `cat`.
    Cat,
    /// `sh -c 'while read -r l; do printf '%s!\n' "$l"; done'`: answers each line.
    Lines,
    /// `head -c HEAD_BYTES`: reads that much (or to the end of stdin), writes it, exits.
    Head,
    /// `sh -c "trap '' TERM; printf 'ready\n'; exec cat"`.
    TrapTerm,
}

/// What `Program::Head` copies.
const HEAD_BYTES: usize = 100;

impl Program {
    fn spec(self) -> SpawnSpec {
        match self {
            Program::Cat => SpawnSpec::new("cat"),
            Program::Lines => SpawnSpec::new("sh")
                .args(["-c", "while read -r l; do printf '%s!\\n' \"$l\"; done"]),
            Program::Head => SpawnSpec::new("head").args(["-c", &HEAD_BYTES.to_string()]),
            Program::TrapTerm => ShellCatalog.spec(Child::IgnoreTerm),
        }
    }

    fn twin(self) -> Script {
        match self {
            Program::Cat => Script::cat(),
            Program::Lines => Script::answer_lines(|line| format!("{line}!\n")),
            Program::Head => Script::head_bytes(HEAD_BYTES),
            Program::TrapTerm => twin(Child::IgnoreTerm).expect("a twin"),
        }
    }

    fn reactor(self) -> MemoryProcessReactor {
        let reactor = MemoryProcessReactor::strict();
        let spec = self.spec();
        let words = std::iter::once(spec.get_executable().to_owned())
            .chain(spec.get_args().iter().cloned());
        reactor.register(words, self.twin());
        reactor
    }

    /// What the program prints before it reads anything.
    fn greeting(self) -> &'static [u8] {
        match self {
            Program::TrapTerm => READY.as_bytes(),
            _ => b"",
        }
    }

    fn ignores(self, signal: Signal) -> bool {
        matches!((self, signal), (Program::TrapTerm, Signal::Term))
    }

    /// Bytes the ops write: a line reader gets short lowercase lines (a shell's `read` would
    /// change spaces, backslashes and NULs).
    fn bytes(self) -> BoxedStrategy<Vec<u8>> {
        match self {
            Program::Lines => {
                proptest::collection::vec(prop_oneof![8 => b'a'..=b'z', 2 => Just(b'\n')], 0..24)
                    .boxed()
            }
            _ => proptest::collection::vec(any::<u8>(), 0..64).boxed(),
        }
    }
}

/// How the program answers stdin: how much stdout is due, and whether it then exits.
#[derive(Default)]
struct Echo {
    /// Stdin bytes the program took so far.
    taken: usize,
    /// An unfinished line (`Lines`).
    partial: usize,
}

impl Echo {
    /// Feeds `data`; returns the stdout bytes it makes due and whether the program exits.
    fn feed(&mut self, program: Program, data: &[u8]) -> (usize, bool) {
        match program {
            Program::Cat | Program::TrapTerm => (data.len(), false),
            Program::Lines => {
                let mut due = 0;
                for &byte in data {
                    if byte == b'\n' {
                        due += self.partial + 2;
                        self.partial = 0;
                    } else {
                        self.partial += 1;
                    }
                }
                (due, false)
            }
            // GNU head -c reads all it needs before it writes.
            Program::Head => {
                self.taken += data.len().min(HEAD_BYTES - self.taken);
                match self.taken == HEAD_BYTES {
                    true => (HEAD_BYTES, true),
                    false => (0, false),
                }
            }
        }
    }

    /// The stdout bytes due when stdin ends.
    fn at_eof(&self, program: Program) -> usize {
        match program {
            Program::Head => self.taken,
            _ => 0,
        }
    }
}

fn op(program: Program) -> impl Strategy<Value = Op> {
    let bytes = move || program.bytes();
    let fd = prop_oneof![Just(0u32), Just(1), Just(2), Just(3), Just(9)].prop_map(ChildFd);
    let signal = prop_oneof![
        Just(Signal::Term),
        Just(Signal::Kill),
        Just(Signal::Hup),
        Just(Signal::Int),
        Just(Signal::Number(10)),
    ];
    prop_oneof![
        6 => bytes().prop_map(Op::Write),
        2 => proptest::collection::vec(bytes(), 0..4).prop_map(Op::WriteSequence),
        2 => (fd.clone(), bytes()).prop_map(|(fd, data)| Op::WriteTo(fd, data)),
        2 => fd.prop_map(Op::Close),
        1 => Just(Op::CloseStdin),
        1 => Just(Op::LoseConnection),
        1 => signal.prop_map(Op::Signal),
        2 => Just(Op::Pause),
        2 => Just(Op::Resume),
        1 => any::<bool>().prop_map(|streaming| Op::Register { streaming }),
        1 => Just(Op::Unregister),
    ]
}

/// What one run showed, compared between the real transport and the fake.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    results: Vec<String>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    lost: Vec<ChildFd>,
    end: ProcessEnd,
}

/// What the harness knows of the child, to know what to wait for.
struct Expect {
    paused: bool,
    stdin_open: bool,
    stdout_open: bool,
    exited: bool,
    /// Stdout bytes the echo must reach once reading is not paused.
    echo: usize,
}

fn delivered(events: &[Event], fd: ChildFd) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::Data(d, data) if *d == fd => data.len(),
            _ => 0,
        })
        .sum()
}

async fn wait_exit(log: &Log, expect: &mut Expect) {
    log.wait_until("process_exited", |events| {
        events.iter().any(|e| matches!(e, Event::Exited(_)))
    })
    .await
    .unwrap();
    if expect.stdin_open {
        log.wait_for(Event::Lost(ChildFd::STDIN)).await.unwrap();
    }
    expect.exited = true;
    expect.stdin_open = false;
}

fn short(result: Result<(), TransportError>) -> String {
    match result {
        Ok(()) => "Ok".into(),
        Err(err) => format!("{err:?}"),
    }
}

async fn run(spawner: &dyn ProcessSpawner, program: Program, ops: &[Op]) -> Trace {
    let (recorder, log) = Recorder::new();
    let transport: Arc<dyn ProcessTransport> = spawner
        .spawn_process(recorder, program.spec())
        .await
        .unwrap();
    let greeting = program.greeting().len();
    log.wait_until("the greeting", |events| {
        delivered(events, ChildFd::STDOUT) >= greeting
    })
    .await
    .unwrap();
    let mut expect = Expect {
        paused: false,
        stdin_open: true,
        stdout_open: true,
        exited: false,
        echo: greeting,
    };
    let mut echo = Echo::default();
    let mut results = Vec::new();
    for op in ops {
        // While paused, whether the child already echoed what it was given before a signal
        // kills it, or before its stdout closes, is a race on a real process. Both sides get
        // the same extra resume and pause, so that the child is known to be done with it.
        let races = matches!(
            op,
            Op::Signal(_) | Op::Close(ChildFd::STDOUT) | Op::LoseConnection
        );
        if races && expect.paused && expect.stdout_open {
            transport.resume_producing();
            let echo = expect.echo;
            log.wait_until("the echo", |events| {
                delivered(events, ChildFd::STDOUT) >= echo
            })
            .await
            .unwrap();
            transport.pause_producing();
        }
        let mut wrote = Vec::new();
        let result = match op {
            Op::Write(data) => {
                wrote = data.clone();
                short(transport.write(data))
            }
            Op::WriteSequence(pieces) => {
                let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
                wrote = pieces.concat();
                short(transport.write_sequence(&pieces))
            }
            Op::WriteTo(fd, data) => {
                if *fd == ChildFd::STDIN {
                    wrote = data.clone();
                }
                short(transport.write_to_child(*fd, data))
            }
            Op::Close(fd) => {
                transport.close_child_fd(*fd);
                "closed".into()
            }
            Op::CloseStdin => {
                transport.close_stdin();
                "closed".into()
            }
            Op::LoseConnection => {
                transport.lose_connection();
                "lost".into()
            }
            Op::Signal(signal) => short(transport.signal_process(*signal)),
            Op::Pause => {
                transport.pause_producing();
                "paused".into()
            }
            Op::Resume => {
                transport.resume_producing();
                "resumed".into()
            }
            Op::Register { streaming } => {
                short(transport.register_producer(RecordingProducer::new(), *streaming))
            }
            Op::Unregister => short(transport.unregister_producer()),
        };
        let ok = result == "Ok";
        results.push(result);

        // Settle: wait until the effect of the step is visible on the real side too.
        match op {
            Op::Write(_) | Op::WriteSequence(_) | Op::WriteTo(..)
                if ok && !wrote.is_empty() && !expect.exited =>
            {
                let (due, exits) = echo.feed(program, &wrote);
                if expect.stdout_open {
                    expect.echo += due;
                    if exits && !expect.paused {
                        // Everything due is printed before the exit.
                        let echo = expect.echo;
                        log.wait_until("the echo", |events| {
                            delivered(events, ChildFd::STDOUT) >= echo
                        })
                        .await
                        .unwrap();
                    }
                    if exits {
                        wait_exit(&log, &mut expect).await;
                    }
                } else if due > 0 || exits {
                    // It prints into a closed stdout and dies by SIGPIPE (or exits).
                    wait_exit(&log, &mut expect).await;
                }
            }
            Op::Close(ChildFd::STDOUT) | Op::LoseConnection if expect.stdout_open => {
                expect.stdout_open = false;
                expect.echo = delivered(&log.events(), ChildFd::STDOUT);
            }
            Op::Signal(signal) if ok && !program.ignores(*signal) => {
                wait_exit(&log, &mut expect).await;
            }
            Op::Pause => expect.paused = true,
            Op::Resume => expect.paused = false,
            _ => {}
        }
        let closes_stdin = matches!(
            op,
            Op::Close(ChildFd::STDIN) | Op::CloseStdin | Op::LoseConnection
        );
        if closes_stdin && expect.stdin_open && !expect.exited {
            // Every program ends at end of file, after printing what is due then.
            if expect.stdout_open {
                expect.echo += echo.at_eof(program);
            }
            wait_exit(&log, &mut expect).await;
        }
        if !expect.paused && expect.stdout_open {
            let echo = expect.echo;
            log.wait_until("the echo", |events| {
                delivered(events, ChildFd::STDOUT) >= echo
            })
            .await
            .unwrap();
        }
    }
    transport.resume_producing();
    transport.close_stdin();
    let end = guard(transport.ended()).await;
    let events = log.events();
    check_order(&events, &[ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR]).unwrap();
    let mut lost: Vec<ChildFd> = events
        .iter()
        .filter_map(|e| match e {
            Event::Lost(fd) => Some(*fd),
            _ => None,
        })
        .collect();
    lost.sort();
    Trace {
        results,
        stdout: log.bytes(ChildFd::STDOUT),
        stderr: log.bytes(ChildFd::STDERR),
        lost,
        end,
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// One program at a time: while another spawn of this process is between its fork and its
/// exec, the child of that spawn briefly holds a copy of every fd of this process, the read end
/// of a pipe just closed included. A child writing into that pipe then does not get `SIGPIPE`
/// (its bytes go nowhere), which a real machine does and no model predicts. The tests of this
/// file therefore never spawn concurrently.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check_program(program: Program) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(program), 0..24), |ops| {
            let (real, fake) = runtime.block_on(async {
                let real = run(&RealSpawner::new(), program, &ops).await;
                let fake = run(&program.reactor(), program, &ops).await;
                (real, fake)
            });
            prop_assert_eq!(real, fake, "{:?}, ops: {:?}", program, ops);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_fake_and_the_real_cat_give_equal_traces() {
    check_program(Program::Cat);
}

#[test]
fn the_fake_and_a_real_line_answering_shell_give_equal_traces() {
    check_program(Program::Lines);
}

#[test]
fn the_fake_and_the_real_head_give_equal_traces() {
    check_program(Program::Head);
}

#[test]
fn the_fake_and_a_real_shell_ignoring_term_give_equal_traces() {
    check_program(Program::TrapTerm);
}
