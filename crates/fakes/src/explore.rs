//! The explorer: fake children whose output, fd losses, exit and reactions are held, and
//! released one at a time in an order chosen from outside, so that a test can run through
//! every order of events a real child could produce (section 5), deterministically.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use process_transport_api::{ChildFd, ProcessEnd, Signal};

use crate::CallLog;

/// What an explorer asks of a child whose events it holds (the fake transport's state).
pub(crate) trait HeldChild: Send + Sync {
    /// Shows the child's protocol `event`, which the explorer held.
    fn release(self: Arc<Self>, event: Pending);
    /// Whether `signal`, reaching the child while it runs, ends it at once.
    fn signal_ends_child(self: Arc<Self>, signal: Signal) -> bool;
    /// The child's end, not shown yet, becomes `end`: a signal reached it before it exited.
    fn end_instead(self: Arc<Self>, end: ProcessEnd);
}

/// A held child, as the explorer keeps it: weakly, so that a child nobody holds is dropped.
pub(crate) type Child = Weak<dyn HeldChild>;

/// Something a child's script must react to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ScriptEvent {
    /// The child started.
    Start,
    /// The parent wrote to this fd.
    Written(ChildFd),
    /// The parent closed this fd.
    Closed(ChildFd),
    /// The parent sent this signal.
    Signalled(Signal),
}

/// Something a child did that its protocol has not been shown yet.
pub(crate) enum Pending {
    /// Output on a parent-reads fd, not yet read.
    Output(ChildFd, Vec<u8>),
    /// The child's end of an fd closed.
    Closed(ChildFd),
    /// The child exited.
    Exited(ProcessEnd),
    /// Something the child's script must react to (its start, input, a close, a signal).
    Script(ScriptEvent),
}

/// The lanes of one child: events on one lane keep their order (the bytes of one fd and then
/// its loss; the reactions of the script); the lanes interleave as the choices say.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    Fd(ChildFd),
    Exit,
    Script,
}

struct Queue {
    child: Child,
    /// The child's number ([`Head::child`]).
    number: usize,
    lane: Lane,
    /// (order of production, event)
    events: VecDeque<(u64, Pending)>,
    /// Events of this lane released whole so far, and bytes of the head released so far.
    released: (usize, usize),
}

#[derive(Default)]
struct State {
    queues: Vec<Queue>,
    produced: u64,
    /// Every child explored, in the order of its spawn, with its call log.
    children: Vec<(Child, CallLog)>,
}

impl State {
    /// The lanes with an event, oldest head first: the order of [`Explorer::step`]'s choice.
    fn arrange(&mut self) {
        self.queues.retain(|queue| !queue.events.is_empty());
        self.queues.sort_by_key(|queue| queue.events[0].0);
    }
}

/// What a held event is, as [`Explorer::heads`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeldKind {
    /// Output on a fd the parent reads, of this many bytes (a step may release part of it).
    Output(ChildFd, usize),
    /// The loss of a fd (the child's end closed).
    Closed(ChildFd),
    /// The child's exit.
    Exited(ProcessEnd),
    /// A reaction of the child's script (to its start, input, a close, a signal): the
    /// protocol sees only what the script does then.
    Script,
}

/// One event [`Explorer::step`] can release now: the head of its lane. Two runs of the same
/// test that reach the same point name the same event the same way, so a search over
/// schedules can tell the events apart across runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    /// The child, numbered from 0 in the order the explorer's reactors spawned them.
    pub child: usize,
    /// What the event is.
    pub kind: HeldKind,
    /// How many events of its lane were released before it, and how many of its bytes.
    pub released_before: (usize, usize),
}

/// What the children have shown and been asked so far: per child (numbered as
/// [`Head::child`]), the calls made on its transport and the events delivered to its protocol
/// and producer. Two snapshots tell what happened between them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity(pub Vec<(usize, usize)>);

/// Holds the events of every child of the reactors it explores, and releases them one
/// [`step`](Self::step) at a time, in the order a chooser picks. Clones share it.
///
/// The order always stays one a real child could produce (section 5): the bytes of one fd
/// arrive in order, split into chunks as chosen, down to one byte, and before that fd's loss;
/// the fds of a child and the children interleave freely; `process_exited` may come before,
/// between or after the losses (and before output not yet read); a script reacts to input,
/// closes and signals in the order they came, but as late as chosen, so that the parent sees
/// how much of its input the child has read (a push producer is paused and resumed on that).
/// A signal sent while the exit is held may have come before it: when the script's reaction
/// to it is released with the exit still held and the signal ends a running child, a second
/// choice says whether the exit stands (0) or the child died by the signal instead (1).
///
/// A chooser is asked `choose(n)` for a number below `n`; choice 0 is always the natural
/// order (the oldest event first, output whole), so a chooser that always answers 0 plays as
/// the fakes do without an explorer.
///
/// ```
/// use process_transport_api::{ChildFd, ProcessEnd, ProcessTransport, SpawnSpec};
/// use process_transport_fakes::{DeliveredEvent, Explorer, MemoryProcessReactor, Script};
/// # struct P; impl process_transport_api::ProcessProtocol for P { fn make_connection(&mut self, _: std::sync::Arc<dyn ProcessTransport>) {} }
///
/// let reactor = MemoryProcessReactor::strict();
/// let explorer = Explorer::new();
/// reactor.explored_by(&explorer);
/// reactor.register(["greet"], Script::new().stdout("hi").exit(0));
/// let child = reactor.spawn(Box::new(P), SpawnSpec::new("greet")).unwrap();
/// assert!(explorer.pending() > 0, "nothing is shown until released");
/// // Always the last choice: the newest event first, output one byte at a time.
/// while explorer.step(&mut |n| n - 1) {}
/// let events = child.transport().call_log().events();
/// assert_eq!(events[1], DeliveredEvent::ProcessExited(ProcessEnd::Done));
/// let stdout: Vec<_> = events
///     .iter()
///     .filter_map(|e| match e {
///         DeliveredEvent::ChildDataReceived(ChildFd::STDOUT, data) => Some(data.clone()),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(stdout, [b"h".to_vec(), b"i".to_vec()]);
/// assert_eq!(events.last(), Some(&DeliveredEvent::ProcessEnded(ProcessEnd::Done)));
/// ```
#[derive(Clone, Default)]
pub struct Explorer(Arc<Mutex<State>>);

impl fmt::Debug for Explorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Explorer")
            .field("pending", &self.pending())
            .finish()
    }
}

impl Explorer {
    /// An explorer with nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many events are held.
    pub fn pending(&self) -> usize {
        self.lock()
            .queues
            .iter()
            .map(|queue| queue.events.len())
            .sum()
    }

    /// Numbers `child` (in spawn order) and keeps its log for [`activity`](Self::activity)
    /// and [`transcript`](Self::transcript).
    pub(crate) fn adopt(&self, child: Child, log: CallLog) {
        self.lock().children.push((child, log));
    }

    /// The events a [`step`](Self::step) chooses among now, in the order of its choice
    /// (`choose(heads.len())` picks one of these).
    pub fn heads(&self) -> Vec<Head> {
        let mut state = self.lock();
        state.arrange();
        state
            .queues
            .iter()
            .map(|queue| Head {
                child: queue.number,
                kind: match &queue.events[0].1 {
                    Pending::Output(fd, data) => HeldKind::Output(*fd, data.len()),
                    Pending::Closed(fd) => HeldKind::Closed(*fd),
                    Pending::Exited(end) => HeldKind::Exited(*end),
                    Pending::Script(_) => HeldKind::Script,
                },
                released_before: queue.released,
            })
            .collect()
    }

    /// The calls and events of every child so far.
    pub fn activity(&self) -> Activity {
        Activity(
            self.lock()
                .children
                .iter()
                .map(|(_, log)| log.counts())
                .collect(),
        )
    }

    /// Every child's call log, in spawn order: what the run did, byte for byte, for telling
    /// whether two runs of one schedule were the same.
    pub fn transcript(&self) -> String {
        let state = self.lock();
        let mut text = String::new();
        for (number, (_, log)) in state.children.iter().enumerate() {
            text.push_str(&format!("child {number}:\n{log}"));
        }
        text
    }

    /// Holds `event` of the child `child` until a step releases it.
    pub(crate) fn hold(&self, child: &Child, event: Pending) {
        let lane = match &event {
            Pending::Output(fd, _) | Pending::Closed(fd) => Lane::Fd(*fd),
            Pending::Exited(_) => Lane::Exit,
            Pending::Script(_) => Lane::Script,
        };
        let mut state = self.lock();
        state.produced += 1;
        let order = state.produced;
        let at = state
            .queues
            .iter()
            .position(|queue| queue.lane == lane && Weak::ptr_eq(&queue.child, child));
        let queue = match at {
            Some(at) => &mut state.queues[at],
            None => {
                let number = state
                    .children
                    .iter()
                    .position(|(known, _)| Weak::ptr_eq(known, child))
                    .unwrap_or(usize::MAX);
                state.queues.push(Queue {
                    child: child.clone(),
                    number,
                    lane,
                    events: VecDeque::new(),
                    released: (0, 0),
                });
                state.queues.last_mut().expect("just pushed")
            }
        };
        queue.events.push_back((order, event));
    }

    /// Releases one held event, as `choose` picks: first which of the events at the head of
    /// their lane (oldest first), then, for output, how much of it (`choose(len)`: 0 is all of
    /// it, `len - 1` one byte). Returns `false` when nothing is held.
    ///
    /// The event is delivered before this returns, with whatever it causes (a script's
    /// answer, the protocol's reaction); what a script does is held in its turn.
    pub fn step(&self, choose: &mut dyn FnMut(usize) -> usize) -> bool {
        let (child, event) = {
            let mut state = self.lock();
            state.arrange();
            if state.queues.is_empty() {
                return false;
            }
            let count = state.queues.len();
            let pick = choose(count).min(count - 1);
            let queue = &mut state.queues[pick];
            let child = queue.child.clone();
            let event = match &mut queue.events[0].1 {
                Pending::Output(fd, data) if data.len() > 1 => {
                    // How many bytes stay for later: 0 (all go now) to all but one.
                    match choose(data.len()).min(data.len() - 1) {
                        0 => None,
                        keep => {
                            let rest = data.split_off(data.len() - keep);
                            queue.released.1 += data.len();
                            Some(Pending::Output(*fd, std::mem::replace(data, rest)))
                        }
                    }
                }
                _ => None,
            };
            let event = event.unwrap_or_else(|| {
                queue.released = (queue.released.0 + 1, 0);
                queue
                    .events
                    .pop_front()
                    .expect("a lane at the head has an event")
                    .1
            });
            (child, event)
        };
        if let Some(held) = child.upgrade() {
            if let Pending::Script(ScriptEvent::Signalled(signal)) = event {
                self.race_with_exit(&child, &held, signal, choose);
            }
            held.release(event);
        }
        true
    }

    /// A signal the parent sent while the child's exit was held reaches the child's script:
    /// the child may have exited before the signal came (the exit stands: choice 0) or not
    /// (choice 1: the signal ends it instead, when that is what it does to a running child).
    fn race_with_exit(
        &self,
        child: &Child,
        alive: &Arc<dyn HeldChild>,
        signal: Signal,
        choose: &mut dyn FnMut(usize) -> usize,
    ) {
        if !alive.clone().signal_ends_child(signal) {
            return;
        }
        let killed = ProcessEnd::from_signal(signal.linux_number());
        let mut state = self.lock();
        let held = state
            .queues
            .iter_mut()
            .find(|queue| queue.lane == Lane::Exit && Weak::ptr_eq(&queue.child, child))
            .and_then(|queue| queue.events.front_mut());
        let Some((_, Pending::Exited(end))) = held else {
            return;
        };
        if *end == killed || choose(2) == 0 {
            return;
        }
        *end = killed;
        drop(state);
        alive.clone().end_instead(killed);
    }
}
