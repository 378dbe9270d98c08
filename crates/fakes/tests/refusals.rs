//! Refused spawns leave a trace, and a registration can answer with a spawn failure.

use std::io;
use std::sync::Arc;

use process_transport_api::{
    ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};
use process_transport_fakes::{MemoryProcessReactor, Script, SpawnFailure};

struct Quiet;
impl ProcessProtocol for Quiet {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

fn spawn(reactor: &MemoryProcessReactor, spec: SpawnSpec) -> Result<(), SpawnError> {
    futures_executor::block_on(reactor.spawn_process(Box::new(Quiet), spec)).map(drop)
}

/// Code under test that probes for an optional tool and swallows the failure.
fn has_optional_tool(reactor: &MemoryProcessReactor) -> bool {
    spawn(reactor, SpawnSpec::new("ccache").arg("--version")).is_ok()
}

#[test]
fn a_refused_spawn_the_code_swallowed_is_listed_and_fails_the_sibling_assertion() {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["cc", "-c", "a.c"], Script::new().exit(0));
    assert!(!has_optional_tool(&reactor));
    spawn(&reactor, SpawnSpec::new("cc").args(["-c", "a.c"])).expect("registered");
    assert!(spawn(&reactor, SpawnSpec::new("bad\0name")).is_err());

    let refused = reactor.refused();
    let lines: Vec<(String, String)> = refused
        .iter()
        .map(|r| (r.command_line(), r.error().to_owned()))
        .collect();
    assert_eq!(
        lines[0],
        (
            "ccache --version".into(),
            "cannot spawn \"ccache\": executable not found".into()
        )
    );
    assert!(lines[1].1.starts_with("invalid spawn spec:"), "{lines:?}");
    assert_eq!(lines.len(), 2);
    assert_eq!(
        reactor.spawns().len(),
        1,
        "spawns() lists the children only"
    );
    reactor.assert_all_used();
    let failed = std::panic::catch_unwind(|| reactor.assert_no_refused()).expect_err("it fails");
    let message = failed.downcast_ref::<String>().expect("a message");
    assert!(
        message.starts_with(
            "MemoryProcessReactor: 2 spawn(s) refused: `ccache --version` (cannot spawn"
        ),
        "{message}"
    );
}

#[test]
fn a_registration_answers_with_each_kind_of_spawn_failure() {
    let reactor = MemoryProcessReactor::strict();
    let failures = [
        SpawnFailure::NotFound,
        SpawnFailure::PermissionDenied,
        SpawnFailure::InvalidSpec("fd 9 cannot be set up".into()),
        SpawnFailure::Io(io::ErrorKind::OutOfMemory),
    ];
    for failure in &failures {
        let registration = reactor
            .register(["tool"], Script::fail_spawn(failure.clone()))
            .times(1);
        let err = spawn(&reactor, SpawnSpec::new("tool")).expect_err("a scripted failure");
        let as_expected = match (failure, &err) {
            (SpawnFailure::NotFound, SpawnError::NotFound(exe))
            | (SpawnFailure::PermissionDenied, SpawnError::PermissionDenied(exe)) => exe == "tool",
            (SpawnFailure::InvalidSpec(_), SpawnError::InvalidSpec(text)) => {
                text == "cannot spawn \"tool\": fd 9 cannot be set up"
            }
            (SpawnFailure::Io(kind), SpawnError::Io(inner)) => inner.kind() == *kind,
            _ => false,
        };
        assert!(as_expected, "{failure:?} gave {err:?}");
        assert_eq!(registration.uses(), 1);
    }
    assert!(reactor.spawns().is_empty());
    reactor.assert_no_refused();
    reactor.assert_all_used();
}
