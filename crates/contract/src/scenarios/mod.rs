//! The scenarios: every rule of the order of events and of the shared behaviour table,
//! each checked on a fresh child.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use process_transport_api::{
    implement::ProducerCall, Address, ChildFd, ChildFdMapping, ProcessEnd, ProcessSpawner,
    ProcessTransport, Signal, SpawnError, SpawnSpec, TransportError,
};

use crate::catalog::{Catalog, Child, ENV_NAME, EXTRA_FD_TEXT, READY, TALK_STDERR, TALK_STDOUT};
use crate::recorder::{check_order, Event, Log, Recorder, RecordingProducer};
use crate::HANG_GUARD;

type Check = Result<(), String>;
type Scenario = for<'a> fn(&'a Ctx<'a>) -> Pin<Box<dyn Future<Output = Check> + 'a>>;

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

macro_rules! scenarios {
    ($list:ident; $($name:ident => |$ctx:ident| $body:block)*) => {
        $(
            fn $name<'a>($ctx: &'a Ctx<'a>) -> Pin<Box<dyn Future<Output = Check> + 'a>> {
                Box::pin(async move $body)
            }
        )*
        /// The scenarios of this module, by name, in order.
        pub(crate) const $list: &[(&str, Scenario)] = &[$((stringify!($name), $name)),*];
    };
}

mod events;
mod producers;
mod shapes;
mod signals;
mod terminal;
mod unshown;
mod writes;

/// Every scenario, by name, in the order the suite runs them.
pub(crate) fn all() -> impl Iterator<Item = &'static (&'static str, Scenario)> {
    events::EVENTS
        .iter()
        .chain(writes::WRITES)
        .chain(signals::SIGNALS)
        .chain(producers::PRODUCERS)
        .chain(unshown::UNSHOWN)
        .chain(shapes::SHAPES)
        .chain(terminal::TERMINALS)
}

/// What a scenario runs against.
pub(crate) struct Ctx<'a> {
    pub(crate) spawner: &'a dyn ProcessSpawner,
    pub(crate) catalog: &'a dyn Catalog,
}

type Spawned = (Arc<dyn ProcessTransport>, Log);

impl Ctx<'_> {
    async fn spawn(&self, child: Child) -> Result<Spawned, String> {
        let (recorder, log) = Recorder::new();
        self.start(recorder, self.catalog.spec(child), log).await
    }

    async fn spawn_reacting(
        &self,
        child: Child,
        reaction: impl FnMut(&Event, &Arc<dyn ProcessTransport>) + Send + 'static,
    ) -> Result<Spawned, String> {
        let (recorder, log) = Recorder::reacting(reaction);
        self.start(recorder, self.catalog.spec(child), log).await
    }

    async fn spawn_spec(&self, spec: SpawnSpec) -> Result<Spawned, String> {
        let (recorder, log) = Recorder::new();
        self.start(recorder, spec, log).await
    }

    async fn start(
        &self,
        recorder: Box<Recorder>,
        spec: SpawnSpec,
        log: Log,
    ) -> Result<Spawned, String> {
        let command = spec.command_line();
        let transport = within("the spawn", self.spawner.spawn_process(recorder, spec))
            .await?
            .map_err(|err| format!("spawning {command} failed: {err}"))?;
        Ok((transport, log))
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .map_err(|_| format!("{what} did not happen within {HANG_GUARD:?}"))
}

async fn end(transport: &Arc<dyn ProcessTransport>) -> Result<ProcessEnd, String> {
    within("the end (ended())", transport.ended()).await
}

fn joined(log: &Log, fd: ChildFd) -> String {
    String::from_utf8_lossy(&log.bytes(fd)).into_owned()
}

fn count(events: &[Event], wanted: &Event) -> usize {
    events.iter().filter(|e| *e == wanted).count()
}

fn closed(result: Result<(), TransportError>, fd: ChildFd) -> Check {
    match result {
        Err(TransportError::ChildFdClosed(got)) if got == fd => Ok(()),
        other => Err(format!("expected Err(ChildFdClosed({fd})), got {other:?}")),
    }
}

fn unknown(result: Result<(), TransportError>, fd: ChildFd) -> Check {
    match result {
        Err(TransportError::UnknownChildFd(got)) if got == fd => Ok(()),
        other => Err(format!("expected Err(UnknownChildFd({fd})), got {other:?}")),
    }
}

/// Records what calls made inside callbacks returned, for checks after the run.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<String>>>);

impl Notes {
    fn add(&self, note: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(note.into());
    }

    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn echoed(log: &Log, expected: usize) -> Check {
    log.wait_until(&format!("{expected} bytes echoed"), |events| {
        events
            .iter()
            .map(|e| match e {
                Event::Data(ChildFd::STDOUT, data) => data.len(),
                _ => 0,
            })
            .sum::<usize>()
            >= expected
    })
    .await
}

/// Closes stdin of a running `Echo` with `close`, then checks that `write` is refused.
async fn write_after(
    ctx: &Ctx<'_>,
    close: impl FnOnce(&dyn ProcessTransport),
    write: impl FnOnce(&dyn ProcessTransport) -> Result<(), TransportError>,
) -> Check {
    let (transport, _log) = ctx.spawn(Child::Echo).await?;
    close(transport.as_ref());
    let result = write(transport.as_ref());
    end(&transport).await?;
    closed(result, ChildFd::STDIN)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Every byte on stdout so far, joined.
fn stdout_of(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(ChildFd::STDOUT, data) => Some(data.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// Waits until the child wrote [`READY`] on stdout.
async fn wait_ready(log: &Log) -> Check {
    log.wait_until("the child's ready line", |events| {
        stdout_of(events).starts_with(READY.as_bytes())
    })
    .await
}
