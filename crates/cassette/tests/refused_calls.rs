//! A call the transport refuses leaves no trace in the recording, and never moves another
//! call's event, however the calls of several threads overlap.

use std::sync::Arc;
use std::thread;

use process_transport_api::{ChildFd, Signal, TransportError};
use process_transport_cassette::{Event, RecordingSpawner};
use process_transport_command::{Command, Stdio};
use process_transport_real::RealSpawner;
use tokio::io::AsyncReadExt;

fn recorder() -> RecordingSpawner {
    RecordingSpawner::new(Arc::new(RealSpawner::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_refused_calls_after_the_end_leave_the_recording_as_it_was() {
    let recorder = recorder();
    let mut child = Command::new("true")
        .stdin(Stdio::piped())
        .spawner(Arc::new(recorder.clone()))
        .spawn()
        .expect("true starts");
    assert!(child.wait().await.expect("true ends").success());
    let transport = child.transport();
    // Every event delivered (the loss of stdin may follow the exit): nothing more can come.
    transport.ended().await;
    let before = recorder.cassette();

    let hammer = |call: fn(&dyn process_transport_api::ProcessTransport) -> TransportError| {
        let transport = transport.clone();
        thread::spawn(move || {
            for _ in 0..20_000 {
                let _ = call(&*transport);
            }
        })
    };
    let writes = hammer(|t| {
        t.write_to_child(ChildFd::STDIN, b"late")
            .expect_err("stdin is closed")
    });
    let signals = hammer(|t| {
        t.signal_process(Signal::Term)
            .expect_err("the child has exited")
    });
    writes.join().expect("no panic in the writing thread");
    signals.join().expect("no panic in the signalling thread");

    assert_eq!(recorder.cassette(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_beside_accepted_ones_record_every_accepted_byte_and_no_refused_one() {
    const WRITES: usize = 5_000;
    let recorder = recorder();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(Arc::new(recorder.clone()))
        .spawn()
        .expect("cat starts");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = tokio::spawn(async move {
        let mut echoed = Vec::new();
        stdout.read_to_end(&mut echoed).await.map(|_| echoed)
    });
    let transport = child.transport();

    let refusers: Vec<_> = (0..2)
        .map(|_| {
            let transport = transport.clone();
            thread::spawn(move || {
                for _ in 0..WRITES {
                    assert!(matches!(
                        transport.write_to_child(ChildFd(7), b"nowhere"),
                        Err(TransportError::UnknownChildFd(ChildFd(7)))
                    ));
                }
            })
        })
        .collect();
    let writer = {
        let transport = transport.clone();
        thread::spawn(move || {
            for _ in 0..WRITES {
                transport
                    .write_to_child(ChildFd::STDIN, b"abcdef")
                    .expect("cat's stdin is open");
            }
        })
    };
    writer.join().expect("no panic in the writer");
    for refuser in refusers {
        refuser.join().expect("no panic in a refusing thread");
    }
    transport.close_stdin();
    let echoed = reader
        .await
        .expect("the reader ends")
        .expect("cat's output");
    assert!(child.wait().await.expect("cat ends").success());
    assert_eq!(echoed.len(), WRITES * 6);

    let events = &recorder.cassette().spawns[0].events;
    let written: Vec<&Event> = events
        .iter()
        .filter(|event| matches!(event, Event::Write { .. }))
        .collect();
    assert_eq!(written.len(), WRITES);
    assert!(written
        .iter()
        .all(|event| matches!(event, Event::Write { fd: 0, data } if data.0 == b"abcdef")));
    let output: usize = events
        .iter()
        .map(|event| match event {
            Event::Output { fd: 1, data } => data.0.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(output, WRITES * 6);
    let last_write = events
        .iter()
        .rposition(|e| matches!(e, Event::Write { .. }));
    let first_close = events.iter().position(|e| *e == Event::Close { fd: 0 });
    assert!(last_write < first_close, "{events:?}");
}
