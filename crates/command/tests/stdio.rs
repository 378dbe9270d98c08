//! `Stdio` from files, fds and other children's pipes: the same bytes on real processes and
//! on the fakes, where the command copies them through a pipe.

#![cfg(unix)]

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::Arc;

use process_transport_api::{ChildFd, ChildFdMapping, ProcessSpawner};
use process_transport_command::{with_default, Command, Stdio};
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;

const HELLO: &str = "printf 'hello\\nworld\\n'";

/// Scripted twins of the programs the tests run.
fn twins() -> MemoryProcessReactor {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(
        ["sh", "-c", HELLO],
        Script::new().stdout("hello\nworld\n").exit(0),
    );
    reactor.register(["cat"], Script::cat());
    reactor
}

/// Runs `test` on real processes, then on the twins, with a guard against a hang.
async fn on_real_and_fake<F, Fut>(test: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let guard = std::time::Duration::from_secs(60);
    for (name, spawner) in [
        (
            "real",
            Arc::new(RealSpawner::new()) as Arc<dyn ProcessSpawner>,
        ),
        ("fake", Arc::new(twins()) as Arc<dyn ProcessSpawner>),
    ] {
        tokio::time::timeout(guard, with_default(spawner, test(name)))
            .await
            .unwrap_or_else(|_| panic!("the {name} run did not finish within {guard:?}"))
            .unwrap_or_else(|err| panic!("the {name} run failed: {err}"));
    }
}

fn hello() -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", HELLO]);
    command
}

fn read(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .expect("the file reads");
    bytes
}

#[tokio::test]
async fn stdout_into_a_file_holds_every_byte_once_status_returns() {
    on_real_and_fake(|name| async move {
        let file = tempfile::NamedTempFile::new()?;
        let status = hello().stdout(file.reopen()?).status().await?;
        assert!(status.success(), "{name}");
        assert_eq!(read(file.path()), b"hello\nworld\n", "{name}");
        Ok(())
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_owned_fd_is_a_file_too() {
    on_real_and_fake(|name| async move {
        let file = tempfile::NamedTempFile::new()?;
        let fd = std::os::fd::OwnedFd::from(file.reopen()?);
        let out = hello().stdout(fd).output().await?;
        assert!(out.stdout.is_empty(), "{name}: stdout went to the fd");
        assert_eq!(read(file.path()), b"hello\nworld\n", "{name}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn stdin_from_a_file_is_read_to_its_end() {
    on_real_and_fake(|name| async move {
        // Larger than a pipe and than the command's read buffer.
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile()?;
        file.write_all(&data)?;
        std::io::Seek::rewind(&mut file)?;
        let out = Command::new("cat").stdin(file).output().await?;
        assert!(out.status.success(), "{name}");
        assert!(
            out.stdout == data,
            "{name}: {} bytes of {}",
            out.stdout.len(),
            data.len()
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_childs_stdout_is_the_next_childs_stdin() {
    on_real_and_fake(|name| async move {
        let mut first = hello().stdout(Stdio::piped()).spawn()?;
        let pipe: Stdio = first.stdout.take().expect("piped").try_into()?;
        let second = Command::new("cat").stdin(pipe).output().await?;
        assert!(first.wait().await?.success(), "{name}");
        assert!(second.status.success(), "{name}");
        assert_eq!(second.stdout, b"hello\nworld\n", "{name}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_childs_output_goes_into_another_childs_stdin() {
    on_real_and_fake(|name| async move {
        let mut sink = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin: Stdio = sink.stdin.take().expect("piped").try_into()?;
        assert!(hello().stdout(stdin).status().await?.success(), "{name}");
        let out = sink.wait_with_output().await?;
        assert_eq!(out.stdout, b"hello\nworld\n", "{name}");
        Ok(())
    })
    .await;
}

/// `hello` spawned on `reactor`, and its stdout as a `Stdio` for the next child.
fn hello_with_its_stdout(
    reactor: &Arc<MemoryProcessReactor>,
) -> io::Result<(process_transport_command::Child, Stdio)> {
    let mut first = hello()
        .stdout(Stdio::piped())
        .spawner(reactor.clone())
        .spawn()?;
    let pipe = first.stdout.take().expect("piped").try_into()?;
    Ok((first, pipe))
}

#[tokio::test]
async fn a_pipe_end_in_the_wrong_place_is_refused_by_name() -> io::Result<()> {
    let reactor = Arc::new(twins());
    let (mut first, pipe) = hello_with_its_stdout(&reactor)?;
    let err = Command::new("cat")
        .stdout(pipe)
        .spawner(reactor.clone())
        .spawn()
        .expect_err("two readers");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "child fd 1 (stdout) was given another child's stdout or stderr: both ends would read"
    );
    // Nothing was started for the refused spawn.
    assert_eq!(reactor.spawns().len(), 1);
    first.wait().await?;
    Ok(())
}

#[tokio::test]
async fn a_pipe_end_serves_one_spawn() -> io::Result<()> {
    let reactor = Arc::new(twins());
    let (mut first, pipe) = hello_with_its_stdout(&reactor)?;
    let mut second = Command::new("cat");
    second
        .stdin(pipe)
        .stdout(Stdio::piped())
        .spawner(reactor.clone());
    let mut again = second.clone();
    assert_eq!(second.output().await?.stdout, b"hello\nworld\n");
    let err = again.spawn().expect_err("the pipe was taken");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("an earlier spawn"), "{err}");
    first.wait().await?;
    Ok(())
}

#[test]
fn a_file_on_a_fake_outside_a_runtime_is_refused_before_anything_starts() {
    let reactor = Arc::new(twins());
    let err = hello()
        .stdout(tempfile::tempfile().expect("a temp file"))
        .spawner(reactor.clone())
        .spawn()
        .expect_err("no runtime to copy on");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("needs a tokio runtime"), "{err}");
    assert!(reactor.spawns().is_empty());
}

#[test]
fn parent_fds_and_files_map_as_a_real_spawner_takes_them() {
    let file = tempfile::tempfile().expect("a temp file");
    let raw = {
        use std::os::fd::AsRawFd;
        file.as_raw_fd()
    };
    let spec = Command::new("x")
        .stdin(file)
        .stdout(io::stderr())
        .stderr(io::stdout())
        .to_spec();
    let fds = spec.get_child_fds();
    assert_eq!(fds[&ChildFd::STDIN], ChildFdMapping::Inherit(raw));
    assert_eq!(fds[&ChildFd::STDOUT], ChildFdMapping::Inherit(2));
    assert_eq!(fds[&ChildFd::STDERR], ChildFdMapping::Inherit(1));
}

#[cfg(unix)]
#[tokio::test]
async fn a_std_childs_stdout_is_this_childs_stdin() {
    on_real_and_fake(|name| async move {
        let mut first = std::process::Command::new("sh")
            .args(["-c", HELLO])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let pipe = first.stdout.take().expect("piped");
        let out = Command::new("cat").stdin(pipe).output().await?;
        assert!(first.wait()?.success(), "{name}");
        assert_eq!(out.stdout, b"hello\nworld\n", "{name}");
        Ok(())
    })
    .await;
}
