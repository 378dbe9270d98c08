//! Fuzzing the fakes: random operation sequences on `MemoryProcessReactor` children (scripts,
//! chunk sizes, pauses, producers, calls made from inside callbacks and from inside
//! `with_protocol`) and on the `StringTransport` family. Nothing may panic but the documented
//! misuse checks, the order of events must stay legal, no call may fail for a change the
//! protocol was not shown, and an unregistered producer must hear nothing more.
//!
//! A few thousand sequences by default; `FUZZ_CASES=100000 cargo test --release --test
//! fake_fuzz` for an on-demand run.

use std::collections::{BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use process_transport_api::{
    ChildFd, CloseReason, ProcessTransport, Protocol, PushProducer, Signal, SpawnSpec, Transport,
    TransportError,
};
use process_transport_fakes::{
    FakeChild, MemoryProcessReactor, Script, StringTransport, StringTransportWithDisconnection,
};
use process_transport_tests::{check_order, panic_message, Event, Log, Recorder};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

/// A call the protocol's side makes on the transport: from the test, from inside a callback,
/// or from inside `with_protocol`.
#[derive(Clone, Debug)]
enum Call {
    Write(usize),
    WriteToFd(u32, usize),
    CloseFd(u32),
    Lose,
    Abort,
    Signal(Signal),
    Pause,
    Resume,
    Register(bool),
    Unregister,
    StopProducing,
}

/// What the test does to the child, or through the protocol.
#[derive(Clone, Debug)]
enum Op {
    Call(Call),
    InsideWithProtocol(Call),
    /// Queues calls that the protocol makes from inside its next callbacks.
    React(Vec<Call>),
    ChildWrite(u32, usize),
    ChildClose(u32),
    ChildRead(usize),
    ChildExit(i32),
    ChildKill(Signal),
    Chunk(usize),
}

fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        Just(Signal::Term),
        Just(Signal::Kill),
        Just(Signal::Hup),
        Just(Signal::Stop),
        Just(Signal::Number(10)),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (0usize..200_000).prop_map(Call::Write),
        1 => (0u32..4, 0usize..64).prop_map(|(fd, n)| Call::WriteToFd(fd, n)),
        2 => (0u32..4).prop_map(Call::CloseFd),
        1 => Just(Call::Lose),
        1 => Just(Call::Abort),
        2 => signal().prop_map(Call::Signal),
        1 => Just(Call::Pause),
        1 => Just(Call::Resume),
        2 => any::<bool>().prop_map(Call::Register),
        2 => Just(Call::Unregister),
        1 => Just(Call::StopProducing),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => call().prop_map(Op::Call),
        2 => call().prop_map(Op::InsideWithProtocol),
        2 => proptest::collection::vec(call(), 1..4).prop_map(Op::React),
        4 => (1u32..3, 0usize..300).prop_map(|(fd, n)| Op::ChildWrite(fd, n)),
        1 => (0u32..3).prop_map(Op::ChildClose),
        2 => (0usize..100_000).prop_map(Op::ChildRead),
        1 => (0i32..3).prop_map(Op::ChildExit),
        1 => signal().prop_map(Op::ChildKill),
        1 => (1usize..9).prop_map(Op::Chunk),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Cat,
    Lines,
    Holds,
    Silent,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Cat),
        Just(Kind::Lines),
        Just(Kind::Holds),
        Just(Kind::Silent)
    ]
}

/// What the protocol was shown and what the checks found, shared with the test.
#[derive(Default)]
struct Seen {
    lost: BTreeSet<ChildFd>,
    exited: bool,
    /// Fds the protocol's side closed itself.
    closed: BTreeSet<ChildFd>,
    violations: Vec<String>,
    reactions: VecDeque<Call>,
    /// The producer registered last, whoever registered it.
    producer: Option<Arc<FuzzProducer>>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Seen>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A producer that reports any call it gets once unregistered.
struct FuzzProducer {
    unregistered: AtomicBool,
    shared: Shared,
}

impl FuzzProducer {
    fn heard(&self, call: &str) {
        if self.unregistered.load(Ordering::SeqCst) {
            self.shared
                .lock()
                .violations
                .push(format!("{call} reached an unregistered producer"));
        }
    }
}

impl PushProducer for FuzzProducer {
    fn pause_producing(&self) {
        self.heard("pause_producing");
    }
    fn resume_producing(&self) {
        self.heard("resume_producing");
    }
    fn stop_producing(&self) {
        self.heard("stop_producing");
    }
}

/// The protocol: the contract's `Recorder`, noting what it was shown and making, from inside
/// each callback, the calls queued for it.
fn fuzz_protocol(shared: &Shared) -> (Box<Recorder>, Log) {
    let shared = shared.clone();
    Recorder::reacting(move |event, transport| {
        let reactions: Vec<Call> = {
            let mut seen = shared.lock();
            match event {
                Event::Lost(fd) => drop(seen.lost.insert(*fd)),
                Event::Exited(_) => seen.exited = true,
                _ => {}
            }
            seen.reactions.drain(..).collect()
        };
        for call in reactions {
            perform(&shared, &call, transport);
        }
    })
}

/// Makes `call` and checks its result against what the protocol had been shown when it made
/// the call.
fn perform(shared: &Shared, call: &Call, transport: &Arc<dyn ProcessTransport>) {
    let (lost, exited, closed) = {
        let seen = shared.lock();
        (seen.lost.clone(), seen.exited, seen.closed.clone())
    };
    let closes = |fds: &[u32]| fds.iter().map(|&fd| ChildFd(fd)).collect::<Vec<_>>();
    let (result, closing) = match call {
        Call::Write(n) => (transport.write(&vec![b'w'; *n]), vec![]),
        Call::WriteToFd(fd, n) => (
            transport.write_to_child(ChildFd(*fd), &vec![b'w'; *n]),
            vec![],
        ),
        Call::CloseFd(fd) => {
            transport.close_child_fd(ChildFd(*fd));
            (Ok(()), closes(&[*fd]))
        }
        Call::Lose => {
            transport.lose_connection();
            (Ok(()), closes(&[0, 1, 2]))
        }
        Call::Abort => {
            transport.abort_connection();
            (Ok(()), closes(&[0, 1, 2]))
        }
        Call::StopProducing => {
            transport.stop_producing();
            (Ok(()), closes(&[0, 1, 2]))
        }
        Call::Signal(signal) => (transport.signal_process(*signal), vec![]),
        Call::Pause => {
            transport.pause_producing();
            (Ok(()), vec![])
        }
        Call::Resume => {
            transport.resume_producing();
            (Ok(()), vec![])
        }
        Call::Register(streaming) => {
            let producer = Arc::new(FuzzProducer {
                unregistered: AtomicBool::new(false),
                shared: shared.clone(),
            });
            let result = transport.register_producer(producer.clone(), *streaming);
            if result.is_ok() {
                shared.lock().producer = Some(producer);
            }
            (result, vec![])
        }
        Call::Unregister => {
            let result = transport.unregister_producer();
            if result.is_ok() {
                if let Some(producer) = shared.lock().producer.take() {
                    producer.unregistered.store(true, Ordering::SeqCst);
                }
            }
            (result, vec![])
        }
    };
    let stdin_shown_closed = lost.contains(&ChildFd::STDIN) || closed.contains(&ChildFd::STDIN);
    let fine = match (call, &result) {
        (Call::Write(_) | Call::WriteToFd(0, _), Ok(())) => true,
        (
            Call::Write(_) | Call::WriteToFd(0, _),
            Err(TransportError::ChildFdClosed(ChildFd(0))),
        ) => stdin_shown_closed,
        (Call::WriteToFd(fd, _), Err(TransportError::UnknownChildFd(got))) => {
            *fd != 0 && got.0 == *fd
        }
        (Call::Signal(_), Ok(())) => !exited,
        (Call::Signal(_), Err(TransportError::ProcessExitedAlready)) => exited,
        (Call::Register(_), Err(TransportError::ProducerAlreadyRegistered)) => true,
        (Call::Unregister, Err(TransportError::NoProducerRegistered)) => true,
        (_, Ok(())) => true,
        _ => false,
    };
    let mut seen = shared.lock();
    if !fine {
        let note = format!("{call:?} gave {result:?} (shown: lost {lost:?}, exited {exited})");
        seen.violations.push(note);
    }
    seen.closed.extend(closing);
}

fn play(child: &FakeChild, shared: &Shared, op: &Op) {
    let exited = child.transport().exited().is_some();
    match op {
        Op::Call(call) => {
            let transport: Arc<dyn ProcessTransport> = Arc::new(child.transport());
            perform(shared, call, &transport);
        }
        Op::InsideWithProtocol(call) => {
            child.with_protocol(|protocol: &mut Recorder| {
                let transport = protocol.transport().expect("connected").clone();
                perform(shared, call, &transport);
            });
        }
        Op::React(calls) => shared.lock().reactions.extend(calls.iter().cloned()),
        Op::ChildWrite(fd, n) => {
            let _ = child.write(ChildFd(*fd), vec![b'o'; *n]);
        }
        Op::ChildClose(fd) => child.close(ChildFd(*fd)),
        Op::ChildRead(n) => drop(child.read_at_most(ChildFd::STDIN, *n)),
        Op::ChildExit(code) if !exited => child.exit(*code),
        Op::ChildKill(signal) if !exited => child.kill(*signal),
        Op::ChildExit(_) | Op::ChildKill(_) => {}
        Op::Chunk(n) => child.transport().set_chunk_size(Some(*n)),
    }
}

fn run_process(kind: Kind, ops: &[Op]) -> Result<(), TestCaseError> {
    let reactor = MemoryProcessReactor::new();
    let script = match kind {
        Kind::Cat => Some(Script::cat()),
        Kind::Lines => Some(Script::answer_lines(|l| format!("{l}\n"))),
        Kind::Holds => Some(Script::new().stdout("hi\n").holds_stdin()),
        Kind::Silent => None,
    };
    if let Some(script) = script {
        reactor.register(["child"], script);
    }
    let shared = Shared::default();
    let (protocol, log) = fuzz_protocol(&shared);
    let child = reactor
        .spawn(protocol, SpawnSpec::new("child"))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for op in ops {
        play(&child, &shared, op);
    }
    // Whatever happened, the child can be made to end, and then everything was delivered.
    if child.transport().exited().is_none() {
        child.exit(0);
    }
    child.transport().resume_producing();
    child.transport().lose_connection();
    // The protocol keeps its transport and the last producer keeps the record: break both
    // cycles, or every case's child (and every byte it was sent) stays in memory.
    drop(child.take_protocol::<Recorder>());
    let producer = shared.lock().producer.take();
    drop(producer);
    let seen = shared.lock();
    prop_assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    prop_assert_eq!(log.reentered(), 0, "callbacks were re-entered");
    let events = log.events();
    prop_assert!(
        matches!(events.last(), Some(Event::Ended(_))),
        "no process_ended: {:?}",
        events
    );
    check_order(&events, &STD_PIPES).map_err(TestCaseError::fail)?;
    Ok(())
}

#[test]
fn random_sequences_on_memory_process_reactor_children_keep_every_rule() {
    let strategy = (kind(), proptest::collection::vec(op(), 0..40));
    runner()
        .run(&strategy, |(kind, ops)| run_process(kind, &ops))
        .unwrap();
}

/// What the test does to a `StringTransport` or its protocol.
#[derive(Clone, Debug)]
enum StringOp {
    Write(Vec<u8>),
    WriteSequence(Vec<Vec<u8>>),
    Clear,
    Lose,
    Abort,
    Pause,
    Resume,
    Stop,
    Register(bool),
    Unregister,
    Data(Vec<u8>),
    LoseInsideWithProtocol,
}

fn string_op() -> impl Strategy<Value = StringOp> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..16);
    prop_oneof![
        4 => bytes().prop_map(StringOp::Write),
        2 => proptest::collection::vec(bytes(), 0..3).prop_map(StringOp::WriteSequence),
        1 => Just(StringOp::Clear),
        1 => Just(StringOp::Lose),
        1 => Just(StringOp::Abort),
        1 => Just(StringOp::Pause),
        1 => Just(StringOp::Resume),
        1 => Just(StringOp::Stop),
        1 => any::<bool>().prop_map(StringOp::Register),
        1 => Just(StringOp::Unregister),
        2 => bytes().prop_map(StringOp::Data),
        1 => Just(StringOp::LoseInsideWithProtocol),
    ]
}

#[derive(Default)]
struct Peer {
    transport: Option<Arc<dyn Transport>>,
    data: Vec<u8>,
    lost: Vec<CloseReason>,
}

impl Protocol for Peer {
    fn make_connection(&mut self, transport: Arc<dyn Transport>) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }
    fn connection_lost(&mut self, reason: CloseReason) {
        self.lost.push(reason);
    }
}

struct Null;

impl PushProducer for Null {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {}
    fn stop_producing(&self) {}
}

/// Runs `f`; a panic is allowed only as one of the documented misuse checks.
fn allowing_misuse(f: impl FnOnce()) -> Result<bool, TestCaseError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => Ok(false),
        Err(payload) => {
            let text = panic_message(&*payload);
            prop_assert!(text.contains(" misuse: "), "an undocumented panic: {text}");
            Ok(true)
        }
    }
}

fn run_string(lenient: bool, ops: &[StringOp]) -> Result<(), TestCaseError> {
    let transport = StringTransportWithDisconnection::wrapping(
        StringTransport::builder().lenient(lenient).build(),
    );
    transport.connect(Box::new(Peer::default()));
    let mut expected = Vec::new();
    let mut data = Vec::new();
    let mut closed = false;
    for op in ops {
        match op {
            StringOp::Write(bytes) => {
                let result = transport.write(bytes);
                prop_assert_eq!(result.is_err(), closed, "{:?}", result);
                if !closed {
                    expected.extend_from_slice(bytes);
                }
            }
            StringOp::WriteSequence(pieces) => {
                let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
                let result = transport.write_sequence(&pieces);
                prop_assert_eq!(result.is_err(), closed, "{:?}", result);
                if !closed {
                    pieces.iter().for_each(|p| expected.extend_from_slice(p));
                }
            }
            StringOp::Clear => {
                transport.clear();
                expected.clear();
            }
            StringOp::Lose => {
                transport.lose_connection();
                closed = true;
            }
            StringOp::Abort => {
                transport.abort_connection();
                closed = true;
            }
            StringOp::LoseInsideWithProtocol => {
                transport.with_protocol(|peer: &mut Peer| {
                    peer.transport
                        .as_ref()
                        .expect("connected")
                        .lose_connection();
                });
                closed = true;
            }
            StringOp::Pause => drop(allowing_misuse(|| transport.pause_producing())?),
            StringOp::Resume => drop(allowing_misuse(|| transport.resume_producing())?),
            StringOp::Stop => transport.stop_producing(),
            StringOp::Register(streaming) => {
                let _ = transport.register_producer(Arc::new(Null), *streaming);
            }
            StringOp::Unregister => {
                let _ = transport.unregister_producer();
            }
            StringOp::Data(bytes) => {
                if !allowing_misuse(|| transport.data_received(bytes))? {
                    data.extend_from_slice(bytes);
                }
            }
        }
    }
    prop_assert_eq!(transport.value(), expected);
    let (got, lost) =
        transport.with_protocol(|peer: &mut Peer| (peer.data.clone(), peer.lost.clone()));
    prop_assert_eq!(got, data);
    prop_assert!(lost.len() <= 1, "connection_lost {} times", lost.len());
    prop_assert_eq!(lost.len() == 1, closed);
    Ok(())
}

#[test]
fn random_sequences_on_the_string_transport_family_keep_every_rule() {
    let strategy = (any::<bool>(), proptest::collection::vec(string_op(), 0..30));
    runner()
        .run(&strategy, |(lenient, ops)| run_string(lenient, &ops))
        .unwrap();
}
