//! Section 4 on real processes: buffered writes, closes, producers, pause and resume.

use std::sync::{Arc, Mutex};

use process_transport_api::implement::ProducerCall::{Pause, Resume, Stop};
use process_transport_api::{
    Address, ChildFd, ChildFdMapping, ProcessEnd, ProcessSpawner, SpawnSpec, TransportError,
};
use process_transport_real::RealSpawner;
use process_transport_tests::{
    assert_bytes_eq, check_order, guard, run_real, Event, Recorder, RecordingProducer,
};

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stdin_flushes_everything_then_closes() {
    let data = pattern(3 * 1024 * 1024 + 17);
    let sent = data.clone();
    let (recorder, log) = Recorder::reacting(move |event, transport| {
        if *event == Event::Connected {
            transport.write(&sent[..1000]).unwrap();
            transport
                .write_sequence(&[&sent[1000..2000], &sent[2000..]])
                .unwrap();
            transport.close_stdin();
            assert!(matches!(
                transport.write(b"x"),
                Err(TransportError::ChildFdClosed(ChildFd(0)))
            ));
        }
    });
    let (_, end) = run_real(recorder, SpawnSpec::new("cat")).await;
    assert_eq!(end, ProcessEnd::Done);
    assert!(
        log.bytes(ChildFd::STDOUT) == data,
        "cat echoed every byte, in order"
    );
    check_order(&log.events(), &STD_PIPES).unwrap();
}

#[tokio::test]
async fn writes_to_fds_not_mapped_for_writing_are_unknown() {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let inside = answers.clone();
    let (recorder, _log) = Recorder::reacting(move |event, transport| {
        if *event == Event::Connected {
            for fd in [ChildFd::STDOUT, ChildFd(3), ChildFd(9)] {
                inside
                    .lock()
                    .unwrap()
                    .push(format!("{:?}", transport.write_to_child(fd, b"x")));
            }
            transport.close_stdin();
        }
    });
    let spec = SpawnSpec::new("cat").child_fd(ChildFd(3), ChildFdMapping::ParentReads);
    run_real(recorder, spec).await;
    assert_eq!(
        *answers.lock().unwrap(),
        [
            "Err(UnknownChildFd(ChildFd(1)))",
            "Err(UnknownChildFd(ChildFd(3)))",
            "Err(UnknownChildFd(ChildFd(9)))"
        ]
    );
}

#[tokio::test]
async fn closing_a_read_pipe_stops_reading_and_reports_its_loss_once() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.close_stderr();
            transport.close_stderr();
            transport.close_stdin();
        }
    });
    let spec = SpawnSpec::new("sh").args(["-c", "read x; echo done"]);
    let (_, end) = run_real(recorder, spec).await;
    assert_eq!(end, ProcessEnd::Done);
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"done\n");
    check_order(&log.events(), &STD_PIPES).unwrap();
    assert_eq!(log.milestones()[1], Event::Lost(ChildFd::STDERR));
}

#[tokio::test]
async fn lose_connection_closes_every_standard_pipe() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.write(b"bye\n").unwrap();
            transport.lose_connection();
            assert!(matches!(
                transport.write(b"x"),
                Err(TransportError::ChildFdClosed(ChildFd(0)))
            ));
        }
    });
    let (_, end) = run_real(recorder, SpawnSpec::new("cat")).await;
    let events = log.events();
    check_order(&events, &STD_PIPES).unwrap();
    // stderr and stdout are lost at once; stdin after its flush.
    assert_eq!(
        events[1..3],
        [Event::Lost(ChildFd::STDERR), Event::Lost(ChildFd::STDOUT)]
    );
    assert!(
        end == ProcessEnd::Done || end == ProcessEnd::from_signal(13),
        "{end:?}"
    );
}

#[tokio::test]
async fn host_and_peer_are_the_process() {
    let (recorder, _log) = Recorder::new();
    let (transport, _) = run_real(recorder, SpawnSpec::new("true")).await;
    assert_eq!(transport.host(), Address::Process);
    assert_eq!(transport.peer(), Address::Process);
}

#[tokio::test]
async fn producer_registration_rules() {
    let (recorder, _log) = Recorder::new();
    let spawner = RealSpawner::new();
    let transport = spawner
        .spawn_process(recorder, SpawnSpec::new("cat"))
        .await
        .unwrap();
    assert!(matches!(
        transport.unregister_producer(),
        Err(TransportError::NoProducerRegistered)
    ));
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    assert!(matches!(
        transport.register_producer(RecordingProducer::new(), true),
        Err(TransportError::ProducerAlreadyRegistered)
    ));
    transport.close_stdin();
    guard(transport.ended()).await;
    assert_eq!(producer.calls(), [Stop]);
}

#[tokio::test]
async fn a_producer_on_a_process_without_stdin_is_stopped_at_once() {
    let (recorder, _log) = Recorder::new();
    let spec = SpawnSpec::new("true").no_child_fd(ChildFd::STDIN);
    let transport = RealSpawner::new()
        .spawn_process(recorder, spec)
        .await
        .unwrap();
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    assert_eq!(producer.calls(), [Stop]);
    guard(transport.ended()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_producer_is_paused_above_the_mark_and_resumed_when_drained() {
    let (recorder, log) = Recorder::new();
    let transport = RealSpawner::new()
        .spawn_process(recorder, SpawnSpec::new("cat"))
        .await
        .unwrap();
    let producer = RecordingProducer::new();
    transport.register_producer(producer.clone(), true).unwrap();
    // More than the pipe takes at once (1 MiB at most) plus the 64 KiB mark.
    let data = pattern(4 * 1024 * 1024);
    transport.write(&data).unwrap();
    // The pause is delivered inside the write; the pump on the other worker may already have
    // drained the buffer and resumed the producer by the time the test looks.
    assert_eq!(
        producer.calls().first(),
        Some(&Pause),
        "what the pipe did not take is over the mark"
    );
    // Once cat echoed every byte, the buffer was drained before.
    log.wait_until("the whole echo", |events| {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Data(ChildFd::STDOUT, d) => Some(d.len()),
                _ => None,
            })
            .sum::<usize>()
            == data.len()
    })
    .await
    .unwrap();
    assert_eq!(producer.calls(), [Pause, Resume]);
    transport.close_stdin();
    // Deliveries are FIFO: once process_ended is delivered, so is the stop.
    assert_eq!(guard(transport.ended()).await, ProcessEnd::Done);
    assert_eq!(producer.calls(), [Pause, Resume, Stop]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_producer_is_resumed_each_time_the_buffer_drains() {
    let (recorder, log) = Recorder::new();
    let transport = RealSpawner::new()
        .spawn_process(recorder, SpawnSpec::new("cat"))
        .await
        .unwrap();
    let writer = transport.clone();
    let mut rounds = 0;
    let producer = RecordingProducer::on_resume(move || {
        rounds += 1;
        if rounds <= 5 {
            writer
                .write(format!("round {rounds}\n").as_bytes())
                .unwrap();
        } else {
            writer.close_stdin();
        }
    });
    transport
        .register_producer(producer.clone(), false)
        .unwrap();
    assert_eq!(guard(transport.ended()).await, ProcessEnd::Done);
    assert_bytes_eq!(
        log.bytes(ChildFd::STDOUT),
        b"round 1\nround 2\nround 3\nround 4\nround 5\n"
    );
    assert_eq!(
        producer.calls(),
        [Resume, Resume, Resume, Resume, Resume, Resume, Stop]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_holds_output_but_not_the_exit() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.pause_producing();
        }
    });
    let transport = RealSpawner::new()
        .spawn_process(
            recorder,
            SpawnSpec::new("sh").args(["-c", "echo held; echo held too >&2"]),
        )
        .await
        .unwrap();
    log.wait_for(Event::Exited(ProcessEnd::Done)).await.unwrap();
    assert!(
        log.events().iter().all(|e| !matches!(e, Event::Data(..))),
        "{:?}",
        log.events()
    );
    assert_eq!(transport.ended_now_hint(), None);
    transport.resume_producing();
    assert_eq!(guard(transport.ended()).await, ProcessEnd::Done);
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"held\n");
    assert_bytes_eq!(log.bytes(ChildFd::STDERR), b"held too\n");
    check_order(&log.events(), &STD_PIPES).unwrap();
}

trait EndedNow {
    fn ended_now_hint(&self) -> Option<ProcessEnd>;
}

impl EndedNow for Arc<dyn process_transport_api::ProcessTransport> {
    /// Whether `ended()` is already resolved, without waiting.
    fn ended_now_hint(&self) -> Option<ProcessEnd> {
        let mut ended = std::pin::pin!(self.ended());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(ended.as_mut(), &mut cx) {
            std::task::Poll::Ready(end) => Some(end),
            std::task::Poll::Pending => None,
        }
    }
}
