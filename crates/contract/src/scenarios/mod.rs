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

mod shapes;
mod terminal;
mod unshown;

/// Every scenario, by name, in the order the suite runs them.
pub(crate) fn all() -> impl Iterator<Item = &'static (&'static str, Scenario)> {
    BASICS
        .iter()
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

/// Sends each of `numbers` to a running `Echo`, which must refuse each as
/// `InvalidSignal` and leave the child running to its normal end.
async fn refused_as_not_signals(ctx: &Ctx<'_>, numbers: &[i32]) -> Check {
    let (transport, _log) = ctx.spawn(Child::Echo).await?;
    let results: Vec<_> = numbers
        .iter()
        .map(|&n| (n, transport.signal_process(Signal::Number(n))))
        .collect();
    transport.close_stdin();
    let end = end(&transport).await?;
    for (n, result) in results {
        ensure!(
            matches!(result, Err(TransportError::InvalidSignal(Signal::Number(got))) if got == n),
            "signal {n}: expected Err(InvalidSignal(Number({n}))), got {result:?}"
        );
    }
    ensure!(end == ProcessEnd::Done, "end: {end:?}");
    Ok(())
}

/// Spawns `Talk` paused from inside `make_connection` and waits for its exit.
async fn spawn_paused_talk(ctx: &Ctx<'_>) -> Result<Spawned, String> {
    let (transport, log) = ctx
        .spawn_reacting(Child::Talk, |event, transport| {
            if *event == Event::Connected {
                transport.pause_producing();
            }
        })
        .await?;
    log.wait_until("process_exited", |events| {
        events.iter().any(|e| matches!(e, Event::Exited(_)))
    })
    .await?;
    Ok((transport, log))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

scenarios! {
    BASICS;
    make_connection_comes_first_and_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        let events = log.events();
        ensure!(events.first() == Some(&Event::Connected), "first event: {events:?}");
        ensure!(count(&events, &Event::Connected) == 1, "make_connection more than once: {events:?}");
        Ok(())
    }

    make_connection_is_delivered_during_the_spawn => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let first = log.events().first().cloned();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(first == Some(Event::Connected), "when spawn_process returned, the first event was {first:?}");
        Ok(())
    }

    stdout_is_delivered_exactly => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == TALK_STDOUT, "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    stderr_is_delivered_exactly => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDERR) == TALK_STDERR, "stderr: {:?}", joined(&log, ChildFd::STDERR));
        Ok(())
    }

    an_extra_fd_is_delivered_exactly => |ctx| {
        let (transport, log) = ctx.spawn(Child::ExtraFd).await?;
        end(&transport).await?;
        ensure!(joined(&log, ChildFd(3)) == EXTRA_FD_TEXT, "fd 3: {:?}", joined(&log, ChildFd(3)));
        check_order(&log.events(), &[ChildFd(0), ChildFd(1), ChildFd(2), ChildFd(3)])
    }

    every_pipe_is_lost_exactly_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        let events = log.events();
        for fd in STD_PIPES {
            ensure!(count(&events, &Event::Lost(fd)) == 1, "fd {fd} lost {} times: {events:?}", count(&events, &Event::Lost(fd)));
        }
        Ok(())
    }

    a_pipe_is_lost_after_its_last_data => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        check_order(&log.events(), &STD_PIPES)
    }

    process_exited_comes_exactly_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        let exits = log.events().iter().filter(|e| matches!(e, Event::Exited(_))).count();
        ensure!(exits == 1, "process_exited {exits} times");
        Ok(())
    }

    process_ended_comes_once_and_last => |ctx| {
        let (transport, log) = ctx.spawn(Child::Exit(3)).await?;
        end(&transport).await?;
        check_order(&log.events(), &STD_PIPES)
    }

    ended_resolves_with_the_reason_of_process_ended => |ctx| {
        let (transport, log) = ctx.spawn(Child::Exit(3)).await?;
        let end = end(&transport).await?;
        ensure!(log.ended() == Some(end), "ended() gave {end:?}, process_ended {:?}", log.ended());
        Ok(())
    }

    exit_code_zero_is_done => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        Ok(())
    }

    a_non_zero_exit_code_is_terminated_with_it => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(3)).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Terminated { exit_code: Some(3), signal: None }, "end: {end:?}");
        Ok(())
    }

    death_by_a_signal_is_terminated_with_it => |ctx| {
        let (transport, _log) = ctx.spawn(Child::DieBySignal).await?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(15), "end: {end:?}");
        Ok(())
    }

    no_callback_is_reentered => |ctx| {
        let (transport, log) = ctx
            .spawn_reacting(Child::Echo, |event, transport| match event {
                Event::Connected => {
                    let _ = transport.write(b"ping\n");
                }
                Event::Data(ChildFd::STDOUT, _) => {
                    transport.close_stdin();
                    transport.close_stderr();
                }
                Event::Lost(_) | Event::Exited(_) => {
                    let _ = transport.write(b"late");
                    transport.lose_connection();
                }
                _ => {}
            })
            .await?;
        end(&transport).await?;
        ensure!(log.reentered() == 0, "callbacks were re-entered {} times", log.reentered());
        check_order(&log.events(), &STD_PIPES)
    }

    a_failed_spawn_is_not_found_and_delivers_nothing => |ctx| {
        let (recorder, log) = Recorder::new();
        let spec = ctx.catalog.spec(Child::Missing);
        let expected = spec.get_executable().to_string_lossy().into_owned();
        match within("the spawn", ctx.spawner.spawn_process(recorder, spec)).await? {
            Err(SpawnError::NotFound(exe)) if exe == expected => {}
            Err(other) => return Err(format!("expected NotFound({expected:?}), got {other:?}")),
            Ok(_) => return Err("the spawn of a missing program succeeded".into()),
        }
        ensure!(log.events().is_empty(), "events after a failed spawn: {:?}", log.events());
        Ok(())
    }

    write_write_sequence_and_write_to_child_reach_stdin_in_order => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.write(b"one ").map_err(|e| e.to_string())?;
        transport.write_sequence(&[b"two ", b"three "]).map_err(|e| e.to_string())?;
        transport.write_to_child(ChildFd::STDIN, b"four").map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "one two three four", "echoed: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    a_large_write_arrives_whole_and_in_order => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let data = pattern(512 * 1024);
        transport.write(&data).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(log.bytes(ChildFd::STDOUT) == data, "the echo differs from the 512 KiB written");
        Ok(())
    }

    owned_and_lent_writes_arrive_whole_and_in_order => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        // An owned write larger than a pipe (what the pipe does not take is kept), a lent one
        // behind it, and an owned one onto a buffer that is not empty.
        let data = pattern(3 * 512 * 1024 + 7);
        let (first, rest) = data.split_at(1024 * 1024);
        let (second, third) = rest.split_at(100);
        transport.write_owned(first.to_vec()).map_err(|e| e.to_string())?;
        transport.write(second).map_err(|e| e.to_string())?;
        transport.write_owned(third.to_vec()).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(log.bytes(ChildFd::STDOUT) == data, "the echo differs from the 1.5 MiB written");
        Ok(())
    }

    writing_to_an_unmapped_fd_is_unknown_child_fd => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let result = transport.write_to_child(ChildFd(9), b"x");
        transport.close_stdin();
        end(&transport).await?;
        unknown(result, ChildFd(9))
    }

    writing_to_a_pipe_the_parent_reads_is_unknown_child_fd => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let result = transport.write_to_child(ChildFd::STDOUT, b"x");
        transport.close_stdin();
        end(&transport).await?;
        unknown(result, ChildFd::STDOUT)
    }

    writing_after_close_child_fd_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_child_fd(ChildFd::STDIN), |t| t.write_to_child(ChildFd::STDIN, b"x")).await
    }

    writing_after_close_stdin_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_stdin(), |t| t.write(b"x")).await
    }

    an_owned_write_after_close_stdin_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.close_stdin(), |t| t.write_owned(b"x".to_vec())).await
    }

    writing_after_lose_connection_is_child_fd_closed => |ctx| {
        write_after(ctx, |t| t.lose_connection(), |t| t.write_sequence(&[b"x"])).await
    }

    writing_after_the_child_end_was_lost_is_child_fd_closed => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        closed(transport.write(b"x"), ChildFd::STDIN)
    }

    close_stdin_delivers_the_buffered_bytes_before_end_of_file => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let data = pattern(3 * 1024 * 1024);
        transport.write(&data).map_err(|e| e.to_string())?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(log.bytes(ChildFd::STDOUT) == data, "not every buffered byte reached the child");
        Ok(())
    }

    close_stdin_stops_the_registered_producer => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    closing_an_unknown_fd_has_no_effect => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_child_fd(ChildFd(9));
        transport.write(b"still open").map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == "still open", "echoed: {:?}", joined(&log, ChildFd::STDOUT));
        check_order(&log.events(), &STD_PIPES)
    }

    closing_an_fd_twice_reports_one_loss => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_stderr();
        transport.close_stderr();
        transport.close_child_fd(ChildFd::STDERR);
        transport.close_stdin();
        end(&transport).await?;
        check_order(&log.events(), &STD_PIPES)
    }

    closing_a_read_pipe_reports_its_loss_at_once => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdout();
        log.wait_for(Event::Lost(ChildFd::STDOUT)).await?;
        let milestones = log.milestones();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(milestones == [Event::Connected, Event::Lost(ChildFd::STDOUT)], "before stdin closed: {milestones:?}");
        Ok(())
    }

    lose_connection_closes_every_standard_pipe => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        transport.lose_connection();
        let end = end(&transport).await?;
        // cat ends by itself at end of file, or by SIGPIPE if it wrote after stdout closed.
        ensure!(end == ProcessEnd::Done || end == ProcessEnd::from_signal(13), "end: {end:?}");
        check_order(&log.events(), &STD_PIPES)
    }

    a_signal_to_a_running_process_is_delivered => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Term).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(15), "end: {end:?}");
        Ok(())
    }

    a_signal_by_number_is_delivered => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Number(9)).map_err(|e| e.to_string())?;
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::from_signal(9), "end: {end:?}");
        Ok(())
    }

    signal_number_zero_is_refused_as_not_a_signal => |ctx| {
        refused_as_not_signals(ctx, &[0]).await
    }

    a_negative_or_too_high_signal_number_is_refused_as_not_a_signal => |ctx| {
        refused_as_not_signals(ctx, &[-1, Signal::MAX_NUMBER + 1, i32::MIN, i32::MAX]).await
    }

    a_signal_ignored_by_default_leaves_the_child_running => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        for name in ["CHLD", "URG", "WINCH"] {
            let signal: Signal = name.parse().map_err(|e| format!("{e}"))?;
            if let Err(err) = transport.signal_process(signal) {
                transport.close_stdin();
                return Err(format!("SIG{name} was refused: {err}"));
            }
        }
        transport.write(b"alive\n").map_err(|e| e.to_string())?;
        echoed(&log, 6).await?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == "alive\n", "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    a_signal_after_the_exit_is_process_exited_already => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        match transport.signal_process(Signal::Term) {
            Err(TransportError::ProcessExitedAlready) => Ok(()),
            other => Err(format!("expected Err(ProcessExitedAlready), got {other:?}")),
        }
    }

    a_signal_inside_process_exited_is_process_exited_already => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, _log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if let Event::Exited(_) = event {
                    inside.add(format!("{:?}", transport.signal_process(Signal::Kill)));
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["Err(ProcessExitedAlready)"], "inside process_exited: {:?}", notes.all());
        Ok(())
    }

    the_pid_is_known_while_the_process_runs => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let pid = transport.pid();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(pid.is_some_and(|pid| pid > 0), "pid while running: {pid:?}");
        Ok(())
    }

    the_pid_is_none_inside_process_exited => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, _log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if let Event::Exited(_) = event {
                    inside.add(format!("{:?}", transport.pid()));
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["None"], "pid inside process_exited: {:?}", notes.all());
        Ok(())
    }

    the_pid_is_none_after_the_end => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        ensure!(transport.pid().is_none(), "pid after the end: {:?}", transport.pid());
        Ok(())
    }

    registering_a_second_producer_is_producer_already_registered => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        transport.register_producer(RecordingProducer::new(), true).map_err(|e| e.to_string())?;
        let second = transport.register_producer(RecordingProducer::new(), false);
        transport.close_stdin();
        end(&transport).await?;
        ensure!(matches!(second, Err(TransportError::ProducerAlreadyRegistered)), "second register: {second:?}");
        Ok(())
    }

    unregistering_without_a_producer_is_no_producer_registered => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let result = transport.unregister_producer();
        transport.close_stdin();
        end(&transport).await?;
        ensure!(matches!(result, Err(TransportError::NoProducerRegistered)), "unregister: {result:?}");
        Ok(())
    }

    a_producer_on_a_process_without_stdin_is_stopped_at_once => |ctx| {
        let spec = ctx.catalog.spec(Child::Exit(0)).no_child_fd(ChildFd::STDIN);
        let (transport, log) = ctx.spawn_spec(spec).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        check_order(&log.events(), &[ChildFd::STDOUT, ChildFd::STDERR])
    }

    a_producer_registered_after_close_stdin_is_stopped_at_once => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdin();
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), false).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    a_pull_producer_is_resumed_at_once => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), false).map_err(|e| e.to_string())?;
        transport.close_stdin();
        end(&transport).await?;
        ensure!(producer.calls() == [ProducerCall::Resume, ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    a_push_producer_is_paused_above_the_high_water_mark => |ctx| {
        let (transport, log) = ctx.spawn(Child::WaitForSignal).await?;
        wait_ready(&log).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        // More than any pipe takes at once, so that the rest is buffered past the mark.
        transport.write(&pattern(4 * 1024 * 1024)).map_err(|e| e.to_string())?;
        let after_write = producer.calls();
        transport.signal_process(Signal::Kill).map_err(|e| e.to_string())?;
        end(&transport).await?;
        ensure!(after_write == [ProducerCall::Pause], "after the write: {after_write:?}");
        ensure!(producer.calls() == [ProducerCall::Pause, ProducerCall::Stop], "producer calls: {:?}", producer.calls());
        Ok(())
    }

    a_push_producer_is_resumed_when_the_buffer_drains => |ctx| {
        let (transport, log) = ctx.spawn(Child::Echo).await?;
        let producer = RecordingProducer::new();
        transport.register_producer(producer.clone(), true).map_err(|e| e.to_string())?;
        let data = pattern(4 * 1024 * 1024);
        transport.write(&data).map_err(|e| e.to_string())?;
        echoed(&log, data.len()).await?;
        transport.close_stdin();
        end(&transport).await?;
        let calls = producer.calls();
        ensure!(calls == [ProducerCall::Pause, ProducerCall::Resume, ProducerCall::Stop], "producer calls: {calls:?}");
        Ok(())
    }

    pausing_holds_output_but_not_the_exit => |ctx| {
        let (transport, log) = spawn_paused_talk(ctx).await?;
        let before = log.events();
        transport.resume_producing();
        end(&transport).await?;
        ensure!(before.iter().all(|e| !matches!(e, Event::Data(..))), "output while paused: {before:?}");
        Ok(())
    }

    held_output_follows_on_resume => |ctx| {
        let (transport, log) = spawn_paused_talk(ctx).await?;
        transport.resume_producing();
        end(&transport).await?;
        ensure!(joined(&log, ChildFd::STDOUT) == TALK_STDOUT, "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        ensure!(joined(&log, ChildFd::STDERR) == TALK_STDERR, "stderr: {:?}", joined(&log, ChildFd::STDERR));
        check_order(&log.events(), &STD_PIPES)
    }

    a_process_transport_is_addressed_as_a_process => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Exit(0)).await?;
        end(&transport).await?;
        ensure!(transport.host() == Address::Process, "host: {:?}", transport.host());
        ensure!(transport.peer() == Address::Process, "peer: {:?}", transport.peer());
        Ok(())
    }

    an_ignored_term_leaves_the_child_running => |ctx| {
        let (transport, log) = ctx.spawn(Child::IgnoreTerm).await?;
        wait_ready(&log).await?;
        transport.signal_process(Signal::Term).map_err(|e| e.to_string())?;
        transport.write(b"still here\n").map_err(|e| e.to_string())?;
        echoed(&log, READY.len() + "still here\n".len()).await?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "end: {end:?}");
        ensure!(joined(&log, ChildFd::STDOUT) == format!("{READY}still here\n"), "stdout: {:?}", joined(&log, ChildFd::STDOUT));
        Ok(())
    }

    the_child_sees_end_of_file_when_stdin_closes => |ctx| {
        let (transport, _log) = ctx.spawn(Child::Echo).await?;
        transport.close_stdin();
        let end = end(&transport).await?;
        ensure!(end == ProcessEnd::Done, "cat did not end at end of file: {end:?}");
        Ok(())
    }

    calls_inside_process_ended_are_answered_and_deliver_nothing => |ctx| {
        let notes = Notes::default();
        let inside = notes.clone();
        let (transport, log) = ctx
            .spawn_reacting(Child::Exit(0), move |event, transport| {
                if let Event::Ended(_) = event {
                    inside.add(format!("{:?}", transport.write(b"late")));
                    transport.lose_connection();
                    transport.close_child_fd(ChildFd::STDOUT);
                }
            })
            .await?;
        end(&transport).await?;
        ensure!(notes.all() == ["Err(ChildFdClosed(ChildFd(0)))"], "inside process_ended: {:?}", notes.all());
        check_order(&log.events(), &STD_PIPES)
    }

    data_is_delivered_before_the_exit_that_follows_it => |ctx| {
        let (transport, log) = ctx.spawn(Child::Talk).await?;
        end(&transport).await?;
        let events = log.events();
        let last_data = events.iter().rposition(|e| matches!(e, Event::Data(..)));
        let ended = events.iter().position(|e| matches!(e, Event::Ended(_)));
        ensure!(last_data < ended, "data after process_ended: {events:?}");
        Ok(())
    }
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
