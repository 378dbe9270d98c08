//! Inheriting a parent fd that is not open is refused, even when its number is the lowest
//! free one, which the spawn's own pipes would otherwise take. One test in this binary, so
//! that no other test opens the free number meanwhile.

use std::os::fd::AsRawFd;

use process_transport_api::{ChildFd, ChildFdMapping, ProcessSpawner, SpawnError, SpawnSpec};
use process_transport_real::RealSpawner;
use process_transport_tests::Recorder;

/// The lowest fd number not open in this process.
fn lowest_free_fd() -> i32 {
    let probe = std::fs::File::open("/dev/null").unwrap();
    probe.as_raw_fd()
}

#[tokio::test]
async fn inheriting_the_lowest_free_fd_is_refused_not_handed_a_pipe_of_the_spawn() {
    let free = lowest_free_fd();
    let spec = SpawnSpec::new("sh")
        .args(["-c", "cat >/dev/null"])
        .child_fd(ChildFd(5), ChildFdMapping::Inherit(free));
    let (recorder, log) = Recorder::new();
    let result = RealSpawner::new().spawn_process(recorder, spec).await;
    match result {
        Err(SpawnError::InvalidSpec(why)) => assert_eq!(
            why,
            format!("cannot spawn \"sh\": child fd 5 inherits parent fd {free}, which is not open")
        ),
        Err(other) => panic!("unexpected {other:?}"),
        Ok(transport) => {
            transport
                .signal_process(process_transport_api::Signal::Kill)
                .ok();
            panic!("the spawn succeeded: parent fd {free} was one of its own pipes");
        }
    }
    assert_eq!(log.events(), []);
}
