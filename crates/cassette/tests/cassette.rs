//! Cassettes: the file, recording real runs, and replaying them.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;

use process_transport_api::{ChildFd, ProcessSpawner, Signal, SpawnError, TransportError};
use process_transport_cassette::{
    Bytes, Cassette, CassetteError, Event, RecordingSpawner, ReplaySpawner,
};
use process_transport_command::{Command, Output, Stdio};
use process_transport_real::RealSpawner;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cassette-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn recorder() -> RecordingSpawner {
    RecordingSpawner::new(Arc::new(RealSpawner::new()))
}

async fn output_on(
    spawner: Arc<dyn ProcessSpawner>,
    program: &str,
    args: &[&str],
) -> io::Result<Output> {
    Command::new(program)
        .args(args)
        .spawner(spawner)
        .output()
        .await
}

#[test]
fn bytes_are_text_when_utf8_and_base64_otherwise_and_read_back_the_same() {
    for data in [&b"plain text\n"[..], &[0, 159, 146, 150, 255][..], b""] {
        let json = serde_json::to_string(&Bytes(data.to_vec())).unwrap();
        assert_eq!(
            std::str::from_utf8(data).is_ok(),
            json.starts_with('"'),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap().0, data);
    }
}

#[tokio::test]
async fn a_recorded_run_replays_with_the_same_output_and_status() -> io::Result<()> {
    let recorder = recorder();
    let args = ["-c", "printf 'out\\n'; printf 'err' >&2; exit 3"];
    let real = output_on(Arc::new(recorder.clone()), "sh", &args).await?;
    let replay = ReplaySpawner::new(recorder.cassette());
    let replayed = output_on(Arc::new(replay.clone()), "sh", &args).await?;
    assert_eq!(replayed, real);
    assert_eq!(replayed.status.code(), Some(3));
    replay.assert_all_used();
    Ok(())
}

#[tokio::test]
async fn the_json_is_stable_and_survives_a_save_and_a_load(
) -> Result<(), Box<dyn std::error::Error>> {
    let recorder = recorder();
    output_on(
        Arc::new(recorder.clone()),
        "sh",
        &["-c", "printf '\\377\\000bin'; echo text"],
    )
    .await?;
    let cassette = recorder.cassette();
    assert_eq!(cassette.to_json(), cassette.to_json());
    let path = scratch("stable").join("run.json");
    cassette.save(&path)?;
    let loaded = Cassette::load(&path)?;
    assert_eq!(loaded, cassette);
    assert_eq!(std::fs::read_to_string(&path)?, cassette.to_json());
    assert!(cassette.to_json().contains("\"base64\""));
    Ok(())
}

#[test]
fn a_saved_cassette_is_private_and_no_temporary_file_is_left() {
    let dir = scratch("private");
    let path = dir.join("c.json");
    Cassette::new(Vec::new()).save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("c.json")]);
}

#[test]
fn concurrent_saves_of_one_path_all_succeed_and_the_last_rename_wins() {
    let dir = scratch("concurrent-saves");
    let path = dir.join("c.json");
    // A temporary file a crashed process with this pid left behind.
    std::fs::write(
        dir.join(format!(".c.json.{}.tmp", std::process::id())),
        "stale",
    )
    .unwrap();
    let cassettes: Vec<Cassette> = ["one", "two"]
        .iter()
        .map(|name| {
            let mut recording = process_transport_cassette::Recording::of(
                &process_transport_api::SpawnSpec::new(name),
            );
            recording.events.push(Event::Lost { fd: 1 });
            Cassette::new(vec![recording])
        })
        .collect();
    std::thread::scope(|scope| {
        for cassette in &cassettes {
            let path = &path;
            scope.spawn(move || {
                for _ in 0..20 {
                    cassette.save(path).expect("every save succeeds");
                }
            });
        }
    });
    let saved = Cassette::load(&path).unwrap();
    assert!(cassettes.contains(&saved), "{saved:?}");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!(".c.json.{}.tmp", std::process::id()),
            "c.json".into()
        ]
    );
}

#[test]
fn a_save_into_a_missing_directory_names_the_cassette_and_the_directory() {
    let dir = scratch("save-missing-dir").join("absent");
    let path = dir.join("c.json");
    let err = Cassette::new(Vec::new()).save(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, CassetteError::Io { path: ref named, .. } if *named == path),
        "{text}"
    );
    assert!(text.contains(&dir.display().to_string()), "{text}");
}

#[test]
fn a_cassette_is_never_written_through_a_symbolic_link() {
    let dir = scratch("symlink");
    let target = dir.join("elsewhere.json");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.join("c.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = Cassette::new(Vec::new()).save(&link).unwrap_err();
    assert!(
        matches!(err, CassetteError::Symlink { ref path } if *path == link),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn a_missing_cassette_is_named() {
    let path = scratch("missing").join("none.json");
    let err = Cassette::load(&path).unwrap_err();
    assert!(matches!(err, CassetteError::Missing { .. }));
    assert_eq!(
        err.to_string(),
        format!("cassette {}: no such file", path.display())
    );
}

#[test]
fn a_truncated_cassette_names_the_file_and_the_place() {
    let text = Cassette::new(Vec::new()).to_json();
    let err = Cassette::from_json(&text[..text.len() - 3], "cut.json").unwrap_err();
    match err {
        CassetteError::Malformed { ref path, line, .. } => {
            assert_eq!(path, &PathBuf::from("cut.json"));
            assert!(line >= 1);
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with("cassette cut.json: line "),
        "{err}"
    );
}

#[test]
fn a_cassette_of_another_version_or_no_cassette_at_all_is_refused() {
    let err = Cassette::from_json(r#"{"version": 9, "spawns": []}"#, "v9.json").unwrap_err();
    assert!(
        matches!(err, CassetteError::UnknownVersion { found: 9, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("format version 9"));
    let err = Cassette::from_json("[1, 2]", "list.json").unwrap_err();
    assert!(matches!(err, CassetteError::Malformed { .. }), "{err}");
}

#[tokio::test]
async fn replayed_output_waits_for_the_input_it_answered() -> io::Result<()> {
    let script = "read a; echo got $a; read b; echo got $b";
    let dialogue = |spawner: Arc<dyn ProcessSpawner>| async move {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawner(spawner)
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut heard = Vec::new();
        for word in ["one", "two"] {
            stdin.write_all(format!("{word}\n").as_bytes()).await?;
            heard.push(lines.next_line().await?.unwrap_or_default());
        }
        drop(stdin);
        assert!(child.wait().await?.success());
        io::Result::Ok(heard)
    };
    let recorder = recorder();
    let real = dialogue(Arc::new(recorder.clone())).await?;
    assert_eq!(real, ["got one", "got two"]);

    // On replay, nothing is printed before the first line is sent.
    let replay = ReplaySpawner::new(recorder.cassette());
    let transport = replay
        .spawn_process(
            Box::new(Quiet),
            Command::new("sh")
                .args(["-c", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .to_spec(),
        )
        .await
        .map_err(io::Error::other)?;
    let events = recorder.cassette().spawns[0].events.clone();
    let first_output = events
        .iter()
        .position(|e| matches!(e, Event::Output { .. }))
        .expect("output");
    assert!(
        events[..first_output]
            .iter()
            .any(|e| matches!(e, Event::Write { .. })),
        "{events:?}"
    );
    drop(transport);
    assert_eq!(
        dialogue(Arc::new(ReplaySpawner::new(recorder.cassette()))).await?,
        real
    );
    Ok(())
}

struct Quiet;
impl process_transport_api::ProcessProtocol for Quiet {
    fn make_connection(&mut self, _: Arc<dyn process_transport_api::ProcessTransport>) {}
}

async fn cat_with(spawner: Arc<dyn ProcessSpawner>, input: &[u8]) -> io::Result<Vec<u8>> {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(input)
        .await?;
    Ok(child.wait_with_output().await?.stdout)
}

/// The message of the panic that ended a task.
fn panic_text(err: tokio::task::JoinError) -> String {
    let message = err.into_panic();
    message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Records a real `cat` given `input` into a cassette at `path`.
async fn recorded_cat(path: PathBuf, input: &[u8]) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let recorder = recorder();
    cat_with(Arc::new(recorder.clone()), input).await?;
    recorder.save(&path)?;
    Ok(path)
}

#[tokio::test]
async fn strict_replay_names_the_spawn_fd_and_offset_of_bytes_that_differ() -> io::Result<()> {
    let recorder = recorder();
    cat_with(Arc::new(recorder.clone()), b"hello").await?;
    let replay = Arc::new(ReplaySpawner::new(recorder.cassette()));
    let text = panic_text(
        tokio::spawn(async move { cat_with(replay, b"jello").await })
            .await
            .expect_err("a mismatch panics"),
    );
    assert!(
        text.contains("spawn 0 (`cat`): stdin (fd 0) at offset 0 differs"),
        "{text}"
    );
    assert!(text.contains("jello") && text.contains("hello"), "{text}");
    Ok(())
}

#[tokio::test]
async fn replay_of_input_that_ends_short_fails_at_the_close_naming_both_sides() -> io::Result<()> {
    let recorder = recorder();
    cat_with(Arc::new(recorder.clone()), b"abc\n").await?;
    for replay in [
        ReplaySpawner::new(recorder.cassette()),
        ReplaySpawner::lenient(recorder.cassette()),
    ] {
        let replay = Arc::new(replay);
        let text = panic_text(
            tokio::time::timeout(
                std::time::Duration::from_secs(60),
                tokio::spawn(async move { cat_with(replay, b"ab\n").await }),
            )
            .await
            .expect("the replay fails instead of hanging")
            .expect_err("short input panics"),
        );
        assert!(
            text.contains("spawn 0 (`cat`): stdin (fd 0) at offset 0 was closed 1 byte(s) short of the recording"),
            "{text}"
        );
        assert!(
            text.contains(r#"b"ab\n""#) && text.contains(r#"b"abc\n""#),
            "{text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_replay_the_protocol_never_finished_is_reported_at_finish_with_what_it_awaited(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = recorded_cat(scratch("stalled").join("cat.json"), b"abc\n").await?;
    let session = process_transport_cassette::Session::open_with(&path, "replay")?;
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(session.spawner())
        .spawn()?;
    // Writes part of the input and neither writes the rest nor closes.
    child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(b"ab")
        .await?;
    let err = session.finish().expect_err("the replay stopped short");
    let text = err.to_string();
    assert!(matches!(err, CassetteError::Stalled { .. }), "{text}");
    assert!(
        text.contains("spawn 0 (`cat`): still waits for 2 more byte(s) on fd 0 (it got 2 of the 4 recorded at offset 0: b\"abc\\n\")"),
        "{text}"
    );
    child.start_kill()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatch_in_a_task_whose_panic_nobody_sees_fails_finish_and_the_replays_drop(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = recorded_cat(scratch("unseen-mismatch").join("cat.json"), b"hello").await?;

    // Code under test that runs its process work in a task and ignores how the task ended.
    let swallow = |spawner: Arc<dyn ProcessSpawner>| async move {
        let _ = tokio::spawn(async move { cat_with(spawner, b"jello").await }).await;
    };
    let session = process_transport_cassette::Session::open_with(&path, "replay")?;
    swallow(session.spawner()).await;
    let err = session.finish().expect_err("the mismatch reaches finish");
    assert!(matches!(err, CassetteError::Mismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("spawn 0 (`cat`): stdin (fd 0) at offset 0 differs from the recording"),
        "{err}"
    );

    let replay = ReplaySpawner::load(&path)?;
    swallow(Arc::new(replay.clone())).await;
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(replay)))
        .expect_err("the drop on the test's thread raises it");
    let text = dropped
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.starts_with("ReplaySpawner: the replay of cassette ")
            && text.contains("failed where the test did not see it")
            && text.contains("stdin (fd 0) at offset 0 differs"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn lenient_replay_ignores_stdin_content_but_not_its_length() -> io::Result<()> {
    let recorder = recorder();
    cat_with(Arc::new(recorder.clone()), b"hello").await?;
    let replayed = cat_with(
        Arc::new(ReplaySpawner::lenient(recorder.cassette())),
        b"jello",
    )
    .await?;
    assert_eq!(replayed, b"hello");
    Ok(())
}

#[tokio::test]
async fn recordings_of_one_command_are_served_in_order_and_unused_ones_are_reported(
) -> io::Result<()> {
    let recorder = recorder();
    for input in [&b"first"[..], b"second", b"third"] {
        cat_with(Arc::new(recorder.clone()), input).await?;
    }
    let replay = ReplaySpawner::new(recorder.cassette());
    assert_eq!(
        cat_with(Arc::new(replay.clone()), b"first").await?,
        b"first"
    );
    assert_eq!(
        cat_with(Arc::new(replay.clone()), b"second").await?,
        b"second"
    );
    assert_eq!(replay.unused(), ["cat"]);
    let unused =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| replay.assert_all_used()))
            .expect_err("one is unused");
    assert!(unused
        .downcast_ref::<String>()
        .is_some_and(|m| m.contains("`cat` (used 0 of 1 times)")));
    Ok(())
}

#[tokio::test]
async fn an_unrecorded_spawn_is_not_found_naming_the_cassette_and_the_closest_recording(
) -> Result<(), Box<dyn std::error::Error>> {
    let not_found = |err: io::Error| {
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        match err.get_ref().and_then(|e| e.downcast_ref::<SpawnError>()) {
            Some(SpawnError::NotFound(text)) => text.clone(),
            other => panic!("not a NotFound: {other:?}"),
        }
    };
    let empty = ReplaySpawner::new(Cassette::new(Vec::new()));
    let err = output_on(Arc::new(empty), "git", &["status"])
        .await
        .unwrap_err();
    assert_eq!(
        not_found(err),
        "`git status`: no recording in cassette (in memory) matches; it holds no recordings"
    );
    let err = SpawnError::NotFound(
        "`git status`: no recording in cassette (in memory) matches; it holds no recordings".into(),
    );
    assert_eq!(
        err.to_string(),
        "cannot spawn `git status`: no recording in cassette (in memory) matches; \
         it holds no recordings",
        "the message reads once, not nested in itself"
    );

    let path = scratch("unmatched").join("status.json");
    let recorder = recorder();
    output_on(Arc::new(recorder.clone()), "sh", &["-c", "echo status"]).await?;
    recorder.save(&path)?;
    let replay = Arc::new(ReplaySpawner::load(&path)?);
    let err = output_on(replay.clone(), "sh", &["-c", "echo statsu"])
        .await
        .unwrap_err();
    assert_eq!(
        not_found(err),
        format!(
            "`sh -c echo statsu`: no recording in cassette {} matches; \
             the closest recorded command is `sh -c echo status`",
            path.display()
        )
    );
    output_on(replay.clone(), "sh", &["-c", "echo status"]).await?;
    let err = output_on(replay, "sh", &["-c", "echo status"])
        .await
        .unwrap_err();
    assert!(not_found(err)
        .ends_with("`sh -c echo status` is recorded, but each recording of it was served already"),);
    Ok(())
}

#[tokio::test]
async fn a_signal_and_the_death_it_caused_are_recorded_and_replayed() -> io::Result<()> {
    let run = |spawner: Arc<dyn ProcessSpawner>| async move {
        let mut child = Command::new("sh")
            .args(["-c", "echo ready; exec sleep 600"])
            .stdout(Stdio::piped())
            .spawner(spawner)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        assert_eq!(lines.next_line().await?.as_deref(), Some("ready"));
        child.signal(Signal::Term)?;
        child.wait().await
    };
    let recorder = recorder();
    assert_eq!(run(Arc::new(recorder.clone())).await?.signal(), Some(15));
    let events = &recorder.cassette().spawns[0].events;
    assert!(
        events.contains(&Event::Signal {
            signal: "TERM".into()
        }),
        "{events:?}"
    );
    assert_eq!(
        run(Arc::new(ReplaySpawner::new(recorder.cassette())))
            .await?
            .signal(),
        Some(15)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawns_all_go_into_one_cassette_in_start_order() -> io::Result<()> {
    let recorder = recorder();
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let spawner: Arc<dyn ProcessSpawner> = Arc::new(recorder.clone());
            tokio::spawn(
                async move { output_on(spawner, "sh", &["-c", &format!("echo {i}")]).await },
            )
        })
        .collect();
    for run in runs {
        run.await.map_err(io::Error::other)??;
    }
    let cassette = recorder.cassette();
    assert_eq!(cassette.spawns.len(), 8);
    let mut lines: Vec<String> = cassette.spawns.iter().map(|r| r.command_line()).collect();
    lines.sort();
    assert_eq!(
        lines,
        (0..8)
            .map(|i| format!("sh -c echo {i}"))
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_spawn_is_recorded_with_its_error_and_replays_failing_the_same_way() {
    let recorder = recorder();
    let spawn = |spawner: Arc<dyn ProcessSpawner>| async move {
        let err = output_on(spawner, "no-such-program-c4ss", &["-v"])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        match err.get_ref().and_then(|e| e.downcast_ref::<SpawnError>()) {
            Some(SpawnError::NotFound(exe)) => exe.clone(),
            other => panic!("not a NotFound: {other:?}"),
        }
    };
    assert_eq!(
        spawn(Arc::new(recorder.clone())).await,
        "no-such-program-c4ss"
    );
    let cassette = recorder.cassette();
    assert_eq!(
        cassette.transcript(),
        "spawn 0: no-such-program-c4ss -v\n  refused: cannot spawn \"no-such-program-c4ss\": executable not found\n"
    );
    let replay = ReplaySpawner::new(cassette);
    assert_eq!(replay.unused(), ["no-such-program-c4ss -v"]);
    assert_eq!(
        spawn(Arc::new(replay.clone())).await,
        "no-such-program-c4ss"
    );
    replay.assert_all_used();
}

#[tokio::test]
async fn replay_keeps_the_shared_rules_a_write_after_close_is_child_fd_closed() -> io::Result<()> {
    let recorder = recorder();
    cat_with(Arc::new(recorder.clone()), b"x").await?;
    let replay = ReplaySpawner::lenient(recorder.cassette());
    let child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(Arc::new(replay))
        .spawn()?;
    let transport = child.transport();
    transport.write(b"x").map_err(io::Error::other)?;
    transport.close_stdin();
    assert!(matches!(
        transport.write(b"y"),
        Err(TransportError::ChildFdClosed(ChildFd::STDIN))
    ));
    Ok(())
}

mod sessions {
    use super::*;
    use process_transport_cassette::{Mode, Session};

    async fn greet(session: &Session) -> io::Result<Vec<u8>> {
        Ok(output_on(session.spawner(), "sh", &["-c", "echo hello"])
            .await?
            .stdout)
    }

    #[tokio::test]
    async fn a_session_records_when_the_cassette_is_missing_then_replays_it(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let path = scratch("session").join("greet.json");
        let first = Session::open_with(&path, "auto")?;
        assert_eq!(first.mode(), Mode::Record);
        assert_eq!(greet(&first).await?, b"hello\n");
        first.finish()?;
        assert!(path.exists());

        let second = Session::open_with(&path, "")?;
        assert_eq!(second.mode(), Mode::Replay);
        assert_eq!(greet(&second).await?, b"hello\n");
        second.finish()?;
        Ok(())
    }

    #[tokio::test]
    async fn record_mode_re_records_and_replay_mode_refuses_to_record(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let path = scratch("modes").join("greet.json");
        let err = Session::open_with(&path, "replay").unwrap_err();
        assert!(matches!(err, CassetteError::Missing { .. }), "{err}");
        Cassette::new(Vec::new()).save(&path)?;
        let forced = Session::open_with(&path, "record")?;
        assert_eq!(forced.mode(), Mode::Record);
        greet(&forced).await?;
        forced.finish()?;
        assert_eq!(Cassette::load(&path)?.spawns.len(), 1);
        Ok(())
    }

    #[test]
    fn an_unknown_mode_is_named() {
        let err = Session::open_with("x.json", "sometimes").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"cassette x.json: PROCESS_CASSETTE="sometimes" is not a mode; use record, replay, verify or auto"#
        );
    }

    #[tokio::test]
    async fn a_replay_that_leaves_recordings_unserved_fails_at_finish(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let path = scratch("unserved").join("two.json");
        let recording = Session::open_with(&path, "record")?;
        greet(&recording).await?;
        greet(&recording).await?;
        recording.finish()?;
        let replay = Session::open_with(&path, "replay")?;
        greet(&replay).await?;
        let err = replay.finish().unwrap_err();
        assert!(
            matches!(err, CassetteError::Unused { ref commands, .. } if commands == &["sh -c echo hello".to_string()]),
            "{err}"
        );
        Ok(())
    }
}

/// A child may close its stdin before the protocol does (a shell whose background job holds
/// the pipe): the protocol's later close of the lost pipe does nothing the child can see, and
/// the replay must not wait for it.
#[tokio::test]
async fn a_close_of_a_stdin_the_child_already_closed_does_not_hold_the_replay() {
    use process_transport_api::{ProcessEnd, SpawnSpec};
    use process_transport_cassette::Recording;

    let mut recording = Recording::of(&SpawnSpec::new("server"));
    recording.events = vec![
        Event::Lost { fd: 0 },
        Event::Output {
            fd: 1,
            data: (&b"ready\n"[..]).into(),
        },
        Event::Close { fd: 0 },
        Event::Close { fd: 2 },
        Event::Close { fd: 1 },
        Event::Lost { fd: 2 },
        Event::Lost { fd: 1 },
        Event::Exited {
            code: Some(0),
            signal: None,
        },
    ];
    let replay = ReplaySpawner::new(Cassette::new(vec![recording]));
    let transport = replay
        .spawn_process(Box::new(Quiet), SpawnSpec::new("server"))
        .await
        .expect("recorded");
    transport.lose_connection();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), transport.ended()).await;
    assert_eq!(end.ok(), Some(ProcessEnd::Done));
}

/// A protocol that sends what the child prints down a channel.
struct Heard(tokio::sync::mpsc::UnboundedSender<(u32, Vec<u8>)>);
impl process_transport_api::ProcessProtocol for Heard {
    fn make_connection(&mut self, _: Arc<dyn process_transport_api::ProcessTransport>) {}
    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        let _ = self.0.send((fd.0, data.to_vec()));
    }
}

#[tokio::test]
async fn output_answering_a_write_to_another_fd_waits_for_that_write() -> io::Result<()> {
    use process_transport_api::{ChildFdMapping, SpawnSpec};
    let spec = || {
        SpawnSpec::new("sh")
            .args(["-c", "read job <&3; echo \"got $job\""])
            .child_fd(ChildFd(3), ChildFdMapping::ParentWrites)
    };
    let run = |spawner: Arc<dyn ProcessSpawner>| async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let transport = spawner
            .spawn_process(Box::new(Heard(tx)), spec())
            .await
            .map_err(io::Error::other)?;
        let early = rx.try_recv().ok();
        transport
            .write_to_child(ChildFd(3), b"job\n")
            .map_err(io::Error::other)?;
        transport.close_child_fd(ChildFd(3));
        transport.close_stdin();
        transport.ended().await;
        let mut heard = Vec::new();
        while let Ok((fd, data)) = rx.try_recv() {
            assert_eq!(fd, 1);
            heard.extend(data);
        }
        io::Result::Ok((early, heard))
    };
    let recorder = recorder();
    let (_, real) = run(Arc::new(recorder.clone())).await?;
    assert_eq!(real, b"got job\n");
    let replay = ReplaySpawner::new(recorder.cassette());
    let (early, replayed) = run(Arc::new(replay.clone())).await?;
    assert_eq!(
        early, None,
        "nothing is printed before the job is sent on fd 3"
    );
    assert_eq!(replayed, real);
    replay.assert_all_used();

    // Bytes that differ on fd 3 are named as such.
    let replay = ReplaySpawner::new(recorder.cassette());
    let transport = replay
        .spawn_process(Box::new(Quiet), spec())
        .await
        .map_err(io::Error::other)?;
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = transport.write_to_child(ChildFd(3), b"jab\n");
    }))
    .expect_err("a mismatch panics");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains(
            "spawn 0 (`sh -c read job <&3; echo \"got $job\"`): fd 3 at offset 0 differs"
        ),
        "{text}"
    );
    // Seen here, and acknowledged, so the replay's drop does not raise it again.
    assert_eq!(replay.take_failures(), [text]);
    Ok(())
}

#[tokio::test]
async fn a_spawn_recorded_in_another_directory_is_named_as_such() -> io::Result<()> {
    let recorder = recorder();
    Command::new("true")
        .current_dir("/")
        .spawner(Arc::new(recorder.clone()))
        .status()
        .await?;
    let replay = Arc::new(ReplaySpawner::new(recorder.cassette()));
    let err = Command::new("true")
        .current_dir("/tmp")
        .spawner(replay.clone())
        .status()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`true` is recorded, but it was recorded with cwd `/`"),
        "{err}"
    );
    Command::new("true")
        .current_dir("/")
        .spawner(replay)
        .status()
        .await?;
    Ok(())
}

/// std-shaped code: a line to `cat` under `Write`, read back under `Read`.
fn blocking_dialogue(spawner: Arc<dyn ProcessSpawner>) -> io::Result<String> {
    use process_transport_command::blocking;
    use std::io::{Read, Write};
    let mut child = blocking::Command::new("cat")
        .stdin(blocking::Stdio::piped())
        .stdout(blocking::Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(b"ping\n")?;
    drop(stdin);
    let mut text = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut text)?;
    assert!(child.wait()?.success());
    Ok(text)
}

#[test]
fn a_blocking_dialogue_is_recorded_and_replayed_under_write_and_read() -> io::Result<()> {
    let recorder = recorder();
    assert_eq!(blocking_dialogue(Arc::new(recorder.clone()))?, "ping\n");
    let replay = ReplaySpawner::new(recorder.cassette());
    assert_eq!(blocking_dialogue(Arc::new(replay.clone()))?, "ping\n");
    replay.assert_all_used();
    Ok(())
}

#[tokio::test]
async fn a_file_given_as_stdio_is_recorded_through_and_filled_again_at_replay() -> io::Result<()> {
    let file_of = |dir: &tempfile::TempDir, name: &str| dir.path().join(name);
    let dir = tempfile::tempdir()?;
    let input = file_of(&dir, "input");
    std::fs::write(&input, "sorted?\n")?;
    let run = |spawner: Arc<dyn ProcessSpawner>, out: PathBuf| {
        let input = input.clone();
        async move {
            Command::new("cat")
                .stdin(std::fs::File::open(input)?)
                .stdout(std::fs::File::create(out)?)
                .spawner(spawner)
                .status()
                .await
        }
    };
    let recorder = recorder();
    assert!(run(Arc::new(recorder.clone()), file_of(&dir, "recorded"))
        .await?
        .success());
    assert_eq!(std::fs::read(file_of(&dir, "recorded"))?, b"sorted?\n");
    // The recording holds the bytes both ways: the recorder is no fd-passing spawner.
    let cassette = recorder.cassette();
    assert_eq!(
        cassette.spawns[0].fds[&0],
        process_transport_cassette::FdKind::ParentWrites
    );
    let replay = ReplaySpawner::new(cassette);
    assert!(run(Arc::new(replay.clone()), file_of(&dir, "replayed"))
        .await?
        .success());
    assert_eq!(std::fs::read(file_of(&dir, "replayed"))?, b"sorted?\n");
    replay.assert_all_used();
    Ok(())
}

#[tokio::test]
#[allow(unsafe_code)]
async fn the_process_group_arg0_and_hooks_are_recorded_and_the_first_two_matched() -> io::Result<()>
{
    let recorder = recorder();
    let mut command = Command::new("sh");
    command.args(["-c", "exit 0"]).process_group(0).arg0("job");
    // SAFETY: the hook makes no call.
    unsafe {
        command.pre_exec(|| Ok(()));
    }
    command.spawner(Arc::new(recorder.clone())).status().await?;
    let cassette = recorder.cassette();
    let recording = &cassette.spawns[0];
    assert_eq!(
        (
            recording.process_group,
            recording.arg0.as_deref(),
            recording.pre_exec
        ),
        (Some(0), Some("job"), 1)
    );
    let text = cassette.to_json();
    assert_eq!(
        Cassette::from_json(&text, "inline").expect("reads back"),
        cassette
    );

    let replay = Arc::new(ReplaySpawner::new(cassette));
    let err = Command::new("sh")
        .args(["-c", "exit 0"])
        .spawner(replay.clone())
        .status()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("recorded with process group Some(0), arg0 Some(\"job\")"),
        "{err}"
    );
    // A replay runs no hook, and does not ask for one.
    let status = Command::new("sh")
        .args(["-c", "exit 0"])
        .process_group(0)
        .arg0("job")
        .spawner(replay)
        .status()
        .await?;
    assert!(status.success());
    Ok(())
}

mod redaction {
    use super::*;
    use process_transport_api::SpawnSpec;
    use process_transport_cassette::{Recording, Redactions};

    #[test]
    fn a_secret_split_across_pieces_of_output_is_redacted_and_restored() {
        let mut recording = Recording::of(&SpawnSpec::new("login"));
        let piece = |data: &[u8]| Event::Output {
            fd: 1,
            data: data.into(),
        };
        recording.events = vec![piece(b"pass: hun"), piece(b"ter2"), piece(b"!\n")];
        let redactions = Redactions::none().secret("hunter2", "<PASSWORD>");
        let redacted = Cassette::new(vec![recording.clone()]).redacted(&redactions);
        assert_eq!(
            redacted.spawns[0].events,
            [piece(b"pass: <PASSWORD>"), piece(b"!\n")],
            "a piece wholly inside the secret is dropped"
        );
        let restored = redacted.restored(&redactions);
        assert_eq!(
            restored.spawns[0].events,
            [piece(b"pass: hunter2"), piece(b"!\n")]
        );
    }

    #[test]
    fn an_empty_placeholder_still_keeps_the_secret_out_and_restores_it() {
        let redactions = Redactions::none().secret("hunter2", "");
        assert_eq!(redactions.restore(b"xxx"), b"xxx");
        assert_eq!(redactions.redact(b"pass hunter2"), b"pass <REDACTED>");
        assert_eq!(redactions.restore(b"pass <REDACTED>"), b"pass hunter2");

        let dir = scratch("empty-placeholder");
        let path = dir.join("run.json");
        let mut recording = Recording::of(&SpawnSpec::new("login"));
        recording.events = vec![Event::Output {
            fd: 1,
            data: (&b"pass <REDACTED>"[..]).into(),
        }];
        Cassette::new(vec![recording]).save(&path).unwrap();
        let session =
            process_transport_cassette::Session::open_redacting(&path, "replay", &redactions)
                .expect("the session opens");
        drop(session);
    }

    #[test]
    fn values_are_replaced_longest_first_and_tiny_values_are_ignored() {
        let redactions = Redactions::none()
            .secret("/home/me", "<HOME>")
            .secret("/home/me/tmp", "<TMPDIR>")
            .secret("/", "<ROOT>")
            .secret("x", "<X>");
        assert_eq!(
            redactions.redact(b"/home/me/tmp/a /home/me/b x /"),
            b"<TMPDIR>/a <HOME>/b x /"
        );
        assert_eq!(
            redactions.restore(b"<TMPDIR>/a <HOME>/b"),
            b"/home/me/tmp/a /home/me/b"
        );
    }

    #[tokio::test]
    async fn machine_paths_are_stored_as_placeholders_and_replay_on_this_machine(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = scratch("paths");
        let dir_text = dir.to_string_lossy().into_owned();
        let args = ["-c", "pwd; printf '%s\\n' \"$1\"", "sh", &dir_text];
        let run = |spawner: Arc<dyn ProcessSpawner>| {
            let dir = dir.clone();
            async move {
                Command::new("sh")
                    .args(args)
                    .current_dir(dir)
                    .spawner(spawner)
                    .output()
                    .await
            }
        };
        let recorder = recorder();
        let real = run(Arc::new(recorder.clone())).await?;
        assert_eq!(
            real.stdout,
            format!("{dir_text}\n{dir_text}\n").into_bytes()
        );
        let json = recorder.cassette().to_json();
        let temp = std::env::temp_dir();
        let temp = temp.to_string_lossy();
        let temp = temp.trim_end_matches('/');
        assert!(!json.contains(temp), "{json}");
        assert!(json.contains("<TMPDIR>/cassette-test-"), "{json}");

        let path = dir.join("paths.json");
        recorder.save(&path)?;
        let replay = ReplaySpawner::load(&path)?;
        assert_eq!(run(Arc::new(replay.clone())).await?, real);
        replay.assert_all_used();
        Ok(())
    }

    #[tokio::test]
    async fn a_secret_never_reaches_the_file_and_replay_restores_it(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let redactions = Redactions::new().secret("hunter2", "<PASSWORD>");
        let recorder = recorder().redacting(redactions.clone());
        let args = ["-c", "read p; echo \"token for $1: $p\"", "sh", "hunter2"];
        let login = |spawner: Arc<dyn ProcessSpawner>| async move {
            let mut child = Command::new("sh")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawner(spawner)
                .spawn()?;
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(b"hunter2\n").await?;
            drop(stdin);
            io::Result::Ok(child.wait_with_output().await?.stdout)
        };
        assert_eq!(
            login(Arc::new(recorder.clone())).await?,
            b"token for hunter2: hunter2\n"
        );
        let cassette = recorder.cassette();
        let json = cassette.to_json();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("token for <PASSWORD>: <PASSWORD>"), "{json}");

        let replay = ReplaySpawner::new(cassette).restoring(&redactions);
        assert_eq!(
            login(Arc::new(replay.clone())).await?,
            b"token for hunter2: hunter2\n"
        );
        replay.assert_all_used();
        Ok(())
    }

    #[tokio::test]
    async fn env_values_are_stored_only_when_asked_and_then_matched(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let recorder = recorder().keep_env_values(["GREETING"]);
        let greet = |spawner: Arc<dyn ProcessSpawner>, greeting: &'static str| async move {
            Command::new("sh")
                .args(["-c", "echo \"$GREETING\""])
                .env("GREETING", greeting)
                .env("API_TOKEN", "t0ps3cret")
                .spawner(spawner)
                .output()
                .await
        };
        greet(Arc::new(recorder.clone()), "bonjour").await?;
        let cassette = recorder.cassette();
        let json = cassette.to_json();
        assert!(!json.contains("t0ps3cret"), "{json}");
        assert!(json.contains("\"API_TOKEN\""), "names are stored: {json}");
        assert_eq!(
            cassette.spawns[0].env_values,
            [("GREETING".to_string(), "bonjour".to_string())].into()
        );

        let replay = Arc::new(ReplaySpawner::new(cassette));
        let err = greet(replay.clone(), "hallo").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string()
                .contains("recorded with env `API_TOKEN GREETING`"),
            "{err}"
        );
        assert_eq!(greet(replay, "bonjour").await?.stdout, b"bonjour\n");
        Ok(())
    }
}

/// The file costs at most 1.05 bytes per recorded byte of text and 1.4 per byte of binary
/// data, with the pieces a pipe gives (64 KiB here).
#[test]
fn the_file_size_per_recorded_byte_is_near_one_for_text_and_under_1_4_for_binary() {
    use process_transport_api::SpawnSpec;
    use process_transport_cassette::Recording;
    for (text, limit) in [(true, 1.05), (false, 1.4)] {
        let piece: Vec<u8> = (0..65536usize)
            .map(|i| match (text, i % 64) {
                (true, 63) => b'\n',
                (true, n) => b'a' + (n % 26) as u8,
                (false, _) => (i.wrapping_mul(151) % 256) as u8,
            })
            .collect();
        let mut recording = Recording::of(&SpawnSpec::new("cat"));
        for _ in 0..16 {
            recording.events.push(Event::Write {
                fd: 0,
                data: Bytes(piece.clone()),
            });
            recording.events.push(Event::Output {
                fd: 1,
                data: Bytes(piece.clone()),
            });
        }
        let size = Cassette::new(vec![recording]).to_json().len() as f64;
        let ratio = size / (32.0 * 65536.0);
        assert!(ratio <= limit, "text {text}: {ratio:.3} bytes per byte");
    }
}

mod spawn_fields {
    use super::*;
    use process_transport_api::{ProcessProtocol, ProcessTransport, PtySize, SpawnSpec};
    use process_transport_cassette::Recording;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    struct Quiet;
    impl ProcessProtocol for Quiet {
        fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
    }

    /// A replay of one recording of `recorded` (which exits 0).
    fn replay_of(recorded: &SpawnSpec) -> ReplaySpawner {
        let mut recording = Recording::of(recorded);
        recording.events = vec![
            Event::Lost { fd: 0 },
            Event::Lost { fd: 1 },
            Event::Lost { fd: 2 },
            Event::Exited {
                code: Some(0),
                signal: None,
            },
        ];
        ReplaySpawner::new(Cassette::new(vec![recording]))
    }

    fn spawn(replay: &ReplaySpawner, spec: SpawnSpec) -> Result<(), SpawnError> {
        futures_executor::block_on(replay.spawn_process(Box::new(Quiet), spec)).map(drop)
    }

    #[test]
    fn a_spawn_that_differs_in_a_field_the_recording_keeps_is_refused_naming_it() {
        let base = || SpawnSpec::new("tool").arg("x");
        let pty = |rows, cols| {
            SpawnSpec::new("stty")
                .arg("size")
                .use_pty(true)
                .pty_size(PtySize::new(rows, cols))
        };
        let odd_arg = |byte: u8| SpawnSpec::new("tool").arg(OsStr::from_bytes(&[byte]));
        let cases = [
            (pty(33, 99), pty(5, 5), "terminal size 33x99"),
            (base().env_clear(), base(), "env_clear"),
            (base().env_remove("HOME"), base(), "env_remove `HOME`"),
            (base().uid(1000), base(), "uid Some(1000)"),
            (base().gid(1000), base().gid(1001), "gid Some(1000)"),
            (odd_arg(0xff), odd_arg(0xfe), "other argument bytes"),
        ];
        for (recorded, asked, named) in cases {
            let replay = replay_of(&recorded);
            match spawn(&replay, asked.clone()) {
                Err(SpawnError::NotFound(why)) => assert!(
                    why.contains("is recorded, but it was recorded with") && why.contains(named),
                    "{asked:?}: {why}"
                ),
                other => panic!("{asked:?} was served a recording of {recorded:?}: {other:?}"),
            }
            spawn(&replay, recorded.clone()).unwrap_or_else(|err| panic!("{recorded:?}: {err}"));
            replay.assert_all_used();
        }
    }

    #[test]
    fn fields_and_non_utf8_words_survive_the_file_exactly() {
        let spec = SpawnSpec::new("tool")
            .arg(OsStr::from_bytes(b"\xff\xfe"))
            .env_clear()
            .env_remove("HOME")
            .uid(7)
            .gid(8)
            .use_pty(true)
            .pty_size(PtySize::new(33, 99));
        let cassette = Cassette::new(vec![Recording::of(&spec)]);
        let json = cassette.to_json();
        assert_eq!(Cassette::from_json(&json, "inline").unwrap(), cassette);
        let recording = &cassette.spawns[0];
        assert_eq!(
            recording.command_bytes.as_deref(),
            Some(&[Bytes(b"tool".to_vec()), Bytes(b"\xff\xfe".to_vec())][..])
        );
        assert!(json.contains(r#""base64": "//4=""#), "{json}");
    }
}
