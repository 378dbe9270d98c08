//! `blocking`, the mirror of `std::process`: std-shaped code on real processes and on the
//! fakes, on plain threads and inside tokio runtimes.

#![cfg(unix)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;

use process_transport_api::ProcessSpawner;
use process_transport_command::blocking::{self as process, Command, Stdio};
use process_transport_command::set_default;
use process_transport_fakes::{MemoryProcessReactor, Script};
use process_transport_real::RealSpawner;

const LINES: &str = "printf 'one\\ntwo\\nthree\\n'";

fn twins() -> MemoryProcessReactor {
    let reactor = MemoryProcessReactor::strict();
    for _ in 0..64 {
        reactor.register(
            ["sh", "-c", LINES],
            Script::new().stdout("one\ntwo\nthree\n").exit(0),
        );
    }
    reactor.register(["cat"], Script::cat());
    reactor
}

/// Runs `test` with real processes and then with the twins, each named.
fn on_real_and_fake(test: impl Fn(&str, Arc<dyn ProcessSpawner>) -> io::Result<()>) {
    for (name, spawner) in [
        (
            "real",
            Arc::new(RealSpawner::new()) as Arc<dyn ProcessSpawner>,
        ),
        ("fake", Arc::new(twins()) as Arc<dyn ProcessSpawner>),
    ] {
        test(name, spawner).unwrap_or_else(|err| panic!("the {name} run failed: {err}"));
    }
}

fn lines(spawner: Arc<dyn ProcessSpawner>) -> io::Result<Vec<String>> {
    let mut child = Command::new("sh")
        .args(["-c", LINES])
        .stdout(Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    let words = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .collect::<Result<Vec<_>, _>>()?;
    assert!(child.wait()?.success());
    Ok(words)
}

#[test]
fn a_spawned_childs_stdout_is_read_line_by_line() {
    on_real_and_fake(|name, spawner| {
        assert_eq!(lines(spawner)?, ["one", "two", "three"], "{name}");
        Ok(())
    });
}

#[test]
fn a_mib_written_on_one_thread_is_read_back_on_another() {
    on_real_and_fake(|name, spawner| {
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawner(spawner)
            .spawn()?;
        let mut stdin = cat.stdin.take().expect("piped");
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&sent));
        let mut back = Vec::new();
        cat.stdout.take().expect("piped").read_to_end(&mut back)?;
        writer.join().expect("the writer")?;
        assert!(
            back == data,
            "{name}: {} bytes of {}",
            back.len(),
            data.len()
        );
        assert!(cat.wait()?.success(), "{name}");
        Ok(())
    });
}

#[test]
fn output_has_std_defaults_and_the_pid_stays_after_the_wait() {
    on_real_and_fake(|name, spawner| {
        let out = Command::new("cat").spawner(spawner.clone()).output()?;
        // stdin is the null device: cat ends at once.
        assert!(out.status.success() && out.stdout.is_empty(), "{name}");
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .spawner(spawner)
            .spawn()?;
        let pid = child.id();
        assert!(child.wait()?.success(), "{name}");
        assert_eq!(child.id(), pid, "{name}");
        child.kill()?;
        Ok(())
    });
}

#[test]
fn a_pipeline_of_two_blocking_children() {
    on_real_and_fake(|name, spawner| {
        let mut first = Command::new("sh")
            .args(["-c", LINES])
            .stdout(Stdio::piped())
            .spawner(spawner.clone())
            .spawn()?;
        let out = Command::new("cat")
            .stdin(first.stdout.take().expect("piped"))
            .spawner(spawner)
            .output()?;
        assert!(first.wait()?.success(), "{name}");
        assert_eq!(out.stdout, b"one\ntwo\nthree\n", "{name}");
        Ok(())
    });
}

#[test]
fn many_threads_at_once() {
    let spawner: Arc<dyn ProcessSpawner> = Arc::new(twins());
    let threads: Vec<_> = (0..8)
        .flat_map(|_| {
            [
                Arc::new(RealSpawner::new()) as Arc<dyn ProcessSpawner>,
                spawner.clone(),
            ]
        })
        .map(|spawner| std::thread::spawn(move || lines(spawner)))
        .collect();
    for thread in threads {
        assert_eq!(
            thread.join().expect("a thread").expect("lines"),
            ["one", "two", "three"]
        );
    }
}

#[tokio::test]
async fn from_async_code_it_blocks_the_task_and_never_panics() -> io::Result<()> {
    assert_eq!(
        lines(Arc::new(RealSpawner::new()))?,
        ["one", "two", "three"]
    );
    assert_eq!(lines(Arc::new(twins()))?, ["one", "two", "three"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_spawn_blocking_and_block_in_place() -> io::Result<()> {
    let real = tokio::task::spawn_blocking(|| lines(Arc::new(RealSpawner::new())))
        .await
        .expect("the task")?;
    assert_eq!(real, ["one", "two", "three"]);
    let fake = tokio::task::block_in_place(|| lines(Arc::new(twins())))?;
    assert_eq!(fake, ["one", "two", "three"]);
    Ok(())
}

#[test]
fn the_scoped_default_reaches_blocking_children() -> io::Result<()> {
    let reactor = MemoryProcessReactor::strict();
    reactor.register(["who"], Script::new().stdout("scoped\n").exit(0));
    let _guard = set_default(Arc::new(reactor));
    let mut child = Command::new("who").stdout(Stdio::piped()).spawn()?;
    let mut text = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut text)?;
    assert_eq!(text, "scoped\n");
    assert!(child.wait()?.success());
    Ok(())
}

#[cfg(unix)]
#[test]
fn the_unix_command_ext_sets_the_group() -> io::Result<()> {
    use process_transport_command::blocking::unix::CommandExt;
    let out = Command::new("sh")
        .args([
            "-c",
            "read -r p c s pp group rest < /proc/$$/stat; [ \"$group\" = $$ ] && echo leader",
        ])
        .process_group(0)
        .output()?;
    assert_eq!(out.stdout, b"leader\n");
    Ok(())
}

#[test]
fn debug_prints_what_std_prints() {
    let mut ours = Command::new("sh");
    ours.args(["-c", "echo hi"])
        .env("A", "1")
        .current_dir("/tmp");
    let mut std = std::process::Command::new("sh");
    std.args(["-c", "echo hi"])
        .env("A", "1")
        .current_dir("/tmp");
    assert_eq!(format!("{ours:?}"), format!("{std:?}"));
}

#[test]
fn the_module_stands_in_for_std_process() {
    // `use ... blocking as process;` keeps std's free functions and types.
    let _exit: fn(i32) -> ! = process::exit;
    let _abort: fn() -> ! = process::abort;
    assert_eq!(process::id(), std::process::id());
    let _code: process::ExitCode = process::ExitCode::SUCCESS;
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Command>();
    send_sync::<process::Child>();
}

#[test]
fn an_anonymous_pipe_carries_the_childs_output() {
    on_real_and_fake(|name, spawner| {
        let (mut reader, writer) = io::pipe()?;
        let mut child = Command::new("sh")
            .args(["-c", LINES])
            .stdout(writer)
            .spawner(spawner)
            .spawn()?;
        // The command above was a temporary: its copy of the write end is closed, as std's.
        assert!(child.wait()?.success(), "{name}");
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        assert_eq!(text, "one\ntwo\nthree\n", "{name}");
        Ok(())
    });
}

#[test]
fn a_strict_mock_serves_the_same_std_shaped_code() {
    use process_transport_api::{ChildFd, ProcessEnd, ProcessTransport};
    use process_transport_mocks::{MockProcessSpawner, MockProcessTransport};

    let mut spawner = MockProcessSpawner::new();
    spawner
        .expect_spawn_process()
        .withf(|_, spec| spec.command_line() == format!("sh -c {}", shell_quoted(LINES)))
        .times(1)
        .returning(|mut protocol, _| {
            let mut mock = MockProcessTransport::new();
            mock.expect_pid().times(1).return_const(Some(4242));
            let transport: Arc<dyn ProcessTransport> = Arc::new(mock);
            protocol.make_connection(transport.clone());
            protocol.child_data_received(ChildFd::STDOUT, b"one\ntwo\nthree\n");
            protocol.child_connection_lost(ChildFd::STDOUT);
            protocol.process_exited(ProcessEnd::Done);
            protocol.process_ended(ProcessEnd::Done);
            Ok(transport)
        });
    assert_eq!(
        lines(Arc::new(spawner)).expect("lines"),
        ["one", "two", "three"]
    );
}

/// `word` as `SpawnSpec::command_line` quotes it.
fn shell_quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A fake `outer` whose script runs `inner`, blocking code, and prints what it printed.
fn outer_running(
    inner: impl Fn() -> process::Output + Send + Sync + 'static,
) -> MemoryProcessReactor {
    let outer = MemoryProcessReactor::strict();
    outer.register(
        ["outer"],
        Script::new()
            .start_with(move |child| {
                let _ = child.write(process_transport_api::ChildFd::STDOUT, inner().stdout);
            })
            .exit(0),
    );
    outer
}

#[test]
fn a_blocking_call_made_inside_another_ones_run_finishes() {
    // A fake's script that itself runs blocking code (as a fake standing in for a program
    // that runs another one might): the inner call runs while the outer one drives its run.
    let inner = Arc::new(MemoryProcessReactor::strict());
    inner.register(["inner"], Script::new().stdout("from inside\n").exit(0));
    let on_a_fake = outer_running(move || {
        Command::new("inner")
            .spawner(inner.clone())
            .output()
            .expect("the inner run")
    });
    let out = Command::new("outer")
        .spawner(Arc::new(on_a_fake))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"from inside\n");
    // And with a real child inside.
    let on_real = outer_running(|| {
        Command::new("sh")
            .args(["-c", LINES])
            .spawner(Arc::new(RealSpawner::new()))
            .output()
            .expect("the inner run")
    });
    let out = Command::new("outer")
        .spawner(Arc::new(on_real))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"one\ntwo\nthree\n");
}
