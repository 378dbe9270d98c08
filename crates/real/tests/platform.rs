//! What each platform's real transport refuses or does differently: on Windows (run under
//! Wine in CI) its programs, `.bat` files, exit codes, `TerminateProcess` and the refusals of
//! what Windows cannot do; on unix, the refusal of Windows-only settings.

use std::sync::{Arc, Mutex};

use process_transport_api::{
    ChildFd, ProcessProtocol, ProcessSpawner, ProcessTransport, SpawnError, SpawnSpec,
};
use process_transport_real::RealSpawner;

#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl ProcessProtocol for Output {
    fn make_connection(&mut self, _transport: Arc<dyn ProcessTransport>) {}

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        if fd == ChildFd::STDOUT {
            self.0.lock().unwrap().extend_from_slice(data);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn spawn(spec: SpawnSpec) -> Result<(Arc<dyn ProcessTransport>, Output), SpawnError> {
    let output = Output::default();
    let transport = RealSpawner::new()
        .spawn_process(Box::new(output.clone()), spec)
        .await?;
    Ok((transport, output))
}

fn refusal(spec: SpawnSpec) -> String {
    match runtime().block_on(spawn(spec)) {
        Err(SpawnError::InvalidSpec(why)) => why,
        Err(other) => panic!("not InvalidSpec: {other}"),
        Ok(_) => panic!("spawned"),
    }
}

#[cfg(unix)]
#[test]
fn a_unix_child_cannot_have_windows_creation_flags() {
    let why = refusal(SpawnSpec::new("true").creation_flags(0x0800_0000));
    assert_eq!(
        why,
        "cannot spawn \"true\": creation_flags 0x8000000 are Windows process creation flags, \
         which a unix child cannot have"
    );
}

#[cfg(windows)]
mod windows {
    use process_transport_api::{ChildFdMapping, ProcessEnd, Signal, TransportError};

    use super::*;

    #[test]
    fn a_program_on_path_runs_and_its_exit_code_is_kept() {
        runtime().block_on(async {
            let spec = SpawnSpec::new("cmd").args(["/c", "echo hello& exit 3"]);
            let (transport, output) = spawn(spec).await.unwrap();
            assert_eq!(transport.ended().await, ProcessEnd::from_exit_code(3));
            assert_eq!(*output.0.lock().unwrap(), b"hello\r\n");
        });
    }

    #[test]
    fn a_bat_file_runs_through_cmd_with_its_arguments() {
        let dir = std::env::temp_dir().join(format!("pt-bat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("greet.bat");
        std::fs::write(&script, "@echo off\r\necho hi %1\r\n").unwrap();
        runtime().block_on(async {
            let (transport, output) = spawn(SpawnSpec::new(&script).arg("there")).await.unwrap();
            assert_eq!(transport.ended().await, ProcessEnd::Done);
            assert_eq!(*output.0.lock().unwrap(), b"hi there\r\n");
        });
    }

    #[test]
    fn kill_is_terminate_process_and_other_signals_are_refused() {
        runtime().block_on(async {
            let spec = SpawnSpec::new("cmd").args(["/c", "pause"]);
            let (transport, _output) = spawn(spec).await.unwrap();
            assert!(matches!(
                transport.signal_process(Signal::Term),
                Err(TransportError::NoSuchSignalOnWindows(Signal::Term))
            ));
            transport.signal_process(Signal::Kill).unwrap();
            assert_eq!(transport.ended().await, ProcessEnd::from_exit_code(1));
        });
    }

    #[test]
    fn what_windows_cannot_do_is_refused_naming_it() {
        let cases = [
            (SpawnSpec::new("cmd").uid(0), "uid sets the child's user id"),
            (
                SpawnSpec::new("cmd").process_group(0),
                "process_group puts the child in a unix process group",
            ),
            (
                SpawnSpec::new("cmd").child_fd(ChildFd(3), ChildFdMapping::ParentReads),
                "child fd 3 is mapped, and a Windows child has only fds 0, 1 and 2",
            ),
            (
                SpawnSpec::new("cmd").no_child_fd(ChildFd::STDERR),
                "child fd 2 is left closed, and a Windows child always has fds 0, 1 and 2 \
                 (map it to Null)",
            ),
            (
                SpawnSpec::new("cmd").use_pty(true),
                "use_pty asks for a pseudo-terminal, which this transport does not make on \
                 Windows",
            ),
        ];
        for (spec, why) in cases {
            assert_eq!(
                refusal(spec),
                format!("cannot spawn \"cmd\": {why}; Windows cannot do it")
            );
        }
    }
}
