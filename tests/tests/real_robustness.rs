//! The real transport under stress: dead readers, full pipes in every direction, fd isolation.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use process_transport_api::{
    ChildFd, ChildFdMapping, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport,
    SpawnSpec, TransportError,
};
use process_transport_real::RealSpawner;
use process_transport_tests::{assert_bytes_eq, check_order, guard, run_real, Event, Recorder};

const STD_PIPES: [ChildFd; 3] = [ChildFd::STDIN, ChildFd::STDOUT, ChildFd::STDERR];
const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_without_reading_loses_stdin_without_sigpipe() {
    let (recorder, log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            // The write is buffered, or finds the pipe already broken: either way no panic,
            // no SIGPIPE, and the bytes are not claimed as sent.
            match transport.write(&vec![b'x'; 10 * MIB]) {
                Ok(()) | Err(TransportError::ChildFdClosed(ChildFd(0))) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    });
    let (transport, end) = run_real(recorder, SpawnSpec::new("true")).await;
    assert_eq!(end, ProcessEnd::Done);
    check_order(&log.events(), &STD_PIPES).unwrap();
    let err = transport.write(b"more").unwrap_err();
    assert!(
        matches!(err, TransportError::ChildFdClosed(ChildFd(0))),
        "{err:?}"
    );
}

/// Counts bytes per fd instead of keeping them.
struct Count {
    stdout: Arc<AtomicUsize>,
    stderr: Arc<AtomicUsize>,
    input: usize,
}

impl ProcessProtocol for Count {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        let chunk = vec![b'i'; MIB];
        for _ in 0..self.input / MIB {
            transport.write(&chunk).unwrap();
        }
        transport.close_stdin();
    }
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        let counter = if fd == ChildFd::STDOUT {
            &self.stdout
        } else {
            &self.stderr
        };
        counter.fetch_add(data.len(), Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mib_each_way_at_once_never_deadlocks() {
    let stdout = Arc::new(AtomicUsize::new(0));
    let stderr = Arc::new(AtomicUsize::new(0));
    let protocol = Count {
        stdout: stdout.clone(),
        stderr: stderr.clone(),
        input: 50 * MIB,
    };
    // cat echoes 50 MiB of stdin to stdout while head writes 50 MiB to stderr.
    let script = "head -c 52428800 /dev/zero >&2 & cat; wait";
    let (_, end) = run_real(
        Box::new(protocol),
        SpawnSpec::new("sh").args(["-c", script]),
    )
    .await;
    assert_eq!(end, ProcessEnd::Done);
    assert_eq!(stdout.load(Ordering::SeqCst), 50 * MIB);
    assert_eq!(stderr.load(Ordering::SeqCst), 50 * MIB);
}

/// Lists which of fds 0 to 5 and a leaked parent fd the child of `spec` (plus the script)
/// has open.
async fn open_fds_in_child(configure: impl FnOnce(SpawnSpec) -> SpawnSpec) -> String {
    // A parent fd without close-on-exec, numbered above the map so the check cannot mistake
    // it for a mapped fd: a careless library could have opened it.
    let null = std::fs::File::open("/dev/null").unwrap();
    let leaked = rustix::io::fcntl_dupfd_cloexec(&null, 100).unwrap();
    rustix::io::fcntl_setfd(&leaked, rustix::io::FdFlags::empty()).unwrap();
    let leaked_fd = leaked.as_raw_fd();

    let (recorder, log) = Recorder::new();
    let script = format!(
        "for fd in 0 1 2 3 4 5 {leaked_fd}; do [ -e /proc/self/fd/$fd ] && printf '%s ' $fd; done; true"
    );
    let spec = configure(
        SpawnSpec::new("sh")
            .args(["-c", &script])
            .child_fd(ChildFd(5), ChildFdMapping::ParentReads),
    );
    let (_, end) = run_real(recorder, spec).await;
    drop(leaked);
    assert_eq!(end, ProcessEnd::Done);
    String::from_utf8(log.bytes(ChildFd::STDOUT)).unwrap()
}

#[tokio::test]
async fn a_child_sees_only_the_fds_of_its_map() {
    assert_eq!(open_fds_in_child(|spec| spec).await, "0 1 2 5 ");
}

#[tokio::test]
async fn a_child_spawned_with_a_uid_change_sees_only_the_fds_of_its_map() {
    // A uid or gid change takes the fork path rather than posix_spawn.
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: changing uid and gid needs root");
        return;
    }
    assert_eq!(
        open_fds_in_child(|spec| spec.uid(0).gid(0)).await,
        "0 1 2 5 "
    );
}

#[tokio::test]
async fn a_child_without_stdin_in_its_map_starts_with_fd_0_closed() {
    let (recorder, log) = Recorder::new();
    let spec = SpawnSpec::new("sh")
        .args(["-c", "[ -e /proc/self/fd/0 ] && echo open || echo closed"])
        .no_child_fd(ChildFd::STDIN);
    run_real(recorder, spec).await;
    assert_bytes_eq!(log.bytes(ChildFd::STDOUT), b"closed\n");
    check_order(&log.events(), &[ChildFd::STDOUT, ChildFd::STDERR]).unwrap();
}

#[tokio::test]
async fn a_child_starts_with_default_signal_dispositions() {
    // SIGPIPE kills a child writing into a closed pipe, as under any shell.
    let (recorder, _log) = Recorder::reacting(|event, transport| {
        if *event == Event::Connected {
            transport.close_stdout();
        }
    });
    let spec = SpawnSpec::new("sh").args(["-c", "while :; do echo y; done"]);
    let (_, end) = run_real(recorder, spec).await;
    assert_eq!(end, ProcessEnd::from_signal(13));
}

#[tokio::test]
async fn the_transport_can_be_dropped_by_everyone_while_the_child_runs() {
    let (recorder, log) = Recorder::new();
    let transport = RealSpawner::new()
        .spawn_process(recorder, SpawnSpec::new("sh").args(["-c", "echo bye"]))
        .await
        .unwrap();
    drop(transport);
    log.wait_until("process_ended", |events| {
        matches!(events.last(), Some(Event::Ended(_)))
    })
    .await
    .unwrap();
    check_order(&log.events(), &STD_PIPES).unwrap();
}

/// Keeps the transport it is given, as protocols do, and nothing else.
struct Keeper(Option<Arc<dyn ProcessTransport>>);

impl ProcessProtocol for Keeper {
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        transport.close_stdin();
        self.0 = Some(transport);
    }
}

#[tokio::test]
async fn a_protocol_that_keeps_its_transport_is_freed_when_the_process_ends() {
    let transport = RealSpawner::new()
        .spawn_process(Box::new(Keeper(None)), SpawnSpec::new("cat"))
        .await
        .unwrap();
    let weak = Arc::downgrade(&transport);
    assert_eq!(guard(transport.ended()).await, ProcessEnd::Done);
    drop(transport);
    assert!(
        weak.upgrade().is_none(),
        "the protocol still holds the transport after process_ended"
    );
}
