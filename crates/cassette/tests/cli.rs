//! The `process-cassette` binary: record, show, replay, and its errors.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use process_transport_api::SpawnSpec;
use process_transport_cassette::{Cassette, Event, Recording};

const BIN: &str = env!("CARGO_BIN_EXE_process-cassette");

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cassette-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn record_then_show_then_replay() {
    let file = scratch("round").join("run.json");
    let mut record = Command::new(BIN)
        .arg("record")
        .arg(&file)
        .args(["--", "sh", "-c", "cat; printf 'oops' >&2; exit 4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    record
        .stdin
        .take()
        .expect("piped")
        .write_all(b"line one\n")
        .expect("stdin");
    let recorded = record.wait_with_output().expect("the recording ends");
    assert_eq!(recorded.status.code(), Some(4));
    assert_eq!(recorded.stdout, b"line one\n");
    assert_eq!(recorded.stderr, b"oops");

    let shown = Command::new(BIN)
        .arg("show")
        .arg(&file)
        .output()
        .expect("show runs");
    assert!(shown.status.success());
    let text = String::from_utf8(shown.stdout).expect("text");
    assert!(
        text.starts_with("spawn 0: sh -c cat; printf 'oops' >&2; exit 4\n"),
        "{text}"
    );
    assert!(text.contains("  -> fd 0: b\"line one\\n\"\n"), "{text}");
    assert!(text.contains("  <- fd 2: b\"oops\"\n"), "{text}");
    // The exit may come before or after the losses of the pipes.
    assert!(text.contains("  exited: code 4\n"), "{text}");

    let replayed = Command::new(BIN)
        .arg("replay")
        .arg(&file)
        .output()
        .expect("replay runs");
    assert_eq!(replayed.status.code(), Some(4));
    assert_eq!(
        (replayed.stdout.as_slice(), replayed.stderr.as_slice()),
        (&b"line one\n"[..], &b"oops"[..])
    );
}

#[test]
fn a_missing_cassette_is_named_and_exits_2() {
    let file = scratch("missing").join("none.json");
    for action in ["show", "replay"] {
        let out = Command::new(BIN)
            .arg(action)
            .arg(&file)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cassette {}: no such file", file.display())),
            "{err}"
        );
    }
}

#[test]
fn a_command_that_cannot_start_writes_nothing_and_exits_2() {
    let file = scratch("nostart").join("run.json");
    let out = Command::new(BIN)
        .arg("record")
        .arg(&file)
        .args(["--", "no-such-program-cl1"])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program-cl1"));
    assert!(!file.exists());
}

#[test]
fn each_action_has_help() {
    for action in ["record", "show", "replay"] {
        let out = Command::new(BIN)
            .args([action, "--help"])
            .output()
            .expect("runs");
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: process-cassette"));
    }
}

#[test]
fn a_recording_that_runs_over_a_second_shows_its_progress_and_clears_it() {
    let file = scratch("progress").join("run.json");
    let script = "echo start; sleep 2; echo end";
    let out = Command::new(BIN)
        .arg("record")
        .arg(&file)
        .args(["--progress", "always", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"start\nend\n", "the output is untouched");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "\r\x1b[2Kprocess-cassette: recording `sh -c {script}`, "
        )),
        "{err:?}"
    );
    assert!(err.contains("s: 0 bytes in, 6 bytes out"), "{err:?}");
    assert!(
        err.ends_with("\r\x1b[2K"),
        "the line is cleared at the end: {err:?}"
    );
}

#[test]
fn without_a_terminal_or_with_never_there_is_no_progress_line() {
    let file = scratch("noprogress").join("run.json");
    for flag in [&["--progress", "never"][..], &[]] {
        let out = Command::new(BIN)
            .arg("record")
            .arg(&file)
            .args(flag)
            .args(["--", "sh", "-c", "sleep 1.2"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("runs");
        assert!(out.status.success());
        assert_eq!(out.stderr, b"", "{flag:?}");
    }
}

/// A cassette at `file` of one `sh` spawn with `events`.
fn cassette_of(file: &std::path::Path, events: Vec<Event>) {
    let mut recording = Recording::of(&SpawnSpec::new("sh"));
    recording.events = events;
    Cassette::new(vec![recording]).save(file).expect("saved");
}

fn output(fd: u32, data: &[u8]) -> Event {
    Event::Output {
        fd,
        data: data.into(),
    }
}

#[test]
fn a_cassette_that_cannot_be_written_is_reported_before_the_command_runs() {
    let dir = scratch("unwritable");
    let marker = dir.join("ran");
    std::fs::create_dir(dir.join("a-directory")).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling.json")).unwrap();
    let targets = [
        (dir.join("absent").join("run.json"), "No such file"),
        (dir.join("a-directory"), "is a directory"),
        (dir.join("dangling.json"), "symbolic link"),
        (
            "/proc/run.json".into(),
            "cannot create a temporary file in /proc",
        ),
    ];
    for (target, why) in targets {
        let out = Command::new(BIN)
            .arg("record")
            .arg(&target)
            .args(["--", "sh", "-c", "touch \"$0\"; exit 5"])
            .arg(&marker)
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target:?}: {err}");
        assert!(
            err.contains(&format!("cassette {}", target.display())) && err.contains(why),
            "{target:?}: {err}"
        );
        assert!(!marker.exists(), "{target:?}: the command ran");
    }
}

/// Starts `record` of a command that prints `started` and then waits for a signal, and
/// returns once it has printed it.
fn record_waiting_for_a_signal(file: &std::path::Path) -> (std::process::Child, Vec<u8>) {
    let mut record = Command::new(BIN)
        .arg("record")
        .arg(file)
        .args(["--", "sh", "-c", "echo started; exec sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut started = [0; 8];
    record
        .stdout
        .as_mut()
        .expect("piped")
        .read_exact(&mut started)
        .expect("the command starts");
    (record, started.to_vec())
}

#[test]
fn an_interrupted_recording_passes_the_signal_on_saves_it_and_exits_as_the_child_did() {
    for (signal, name, code) in [(libc::SIGTERM, "TERM", 143), (libc::SIGINT, "INT", 130)] {
        let file = scratch(&format!("interrupted-{name}")).join("run.json");
        let (record, started) = record_waiting_for_a_signal(&file);
        assert_eq!(started, b"started\n");
        let pid = i32::try_from(record.id()).unwrap();
        // SAFETY: a plain kill of the child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let out = record.wait_with_output().expect("the recording ends");
        assert_eq!(out.status.code(), Some(code), "{name}: {out:?}");
        let events = &Cassette::load(&file).expect("saved").spawns[0].events;
        assert!(
            events.contains(&output(1, b"started\n")),
            "{name}: {events:?}"
        );
        assert!(
            events.contains(&Event::Signal {
                signal: name.into()
            }),
            "{name}: {events:?}"
        );
        assert!(
            events.contains(&Event::Exited {
                code: None,
                signal: Some(signal)
            }),
            "{name}: {events:?}"
        );
    }
}

#[test]
fn show_ends_quietly_when_its_reader_goes_away_and_fails_on_a_full_disk() {
    let file = scratch("show-pipe").join("big.json");
    cassette_of(&file, vec![output(1, &vec![b'x'; 1 << 20])]);
    let mut show = Command::new(BIN)
        .arg("show")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("show runs");
    let mut first = [0; 1];
    let mut stdout = show.stdout.take().expect("piped");
    stdout.read_exact(&mut first).expect("a byte");
    drop(stdout);
    let out = show.wait_with_output().expect("show ends");
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stderr)),
        (Some(0), "".into())
    );

    for action in ["show", "replay"] {
        let out = Command::new(BIN)
            .arg(action)
            .arg(&file)
            .stdout(std::fs::File::create("/dev/full").expect("/dev/full"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{action}: {err}");
        assert!(
            err.starts_with("process-cassette: cannot write the output: No space left"),
            "{action}: {err}"
        );
    }
}

#[test]
fn replay_plays_stdout_and_stderr_in_the_recorded_order() {
    let dir = scratch("replay-order");
    let file = dir.join("run.json");
    cassette_of(
        &file,
        vec![
            output(1, b"prompt> "),
            output(2, b"warning\n"),
            output(1, b"answer\n"),
            Event::Exited {
                code: Some(0),
                signal: None,
            },
        ],
    );
    let both = std::fs::File::create(dir.join("both")).unwrap();
    let status = Command::new(BIN)
        .arg("replay")
        .arg(&file)
        .stdout(both.try_clone().unwrap())
        .stderr(both)
        .status()
        .expect("replay runs");
    assert!(status.success());
    assert_eq!(
        std::fs::read(dir.join("both")).unwrap(),
        b"prompt> warning\nanswer\n"
    );
}

#[test]
fn replay_of_a_hostile_signal_number_exits_1_without_overflowing() {
    let file = scratch("hostile-signal").join("run.json");
    for signal in [i32::MAX, i32::MIN, -1] {
        cassette_of(
            &file,
            vec![Event::Exited {
                code: None,
                signal: Some(signal),
            }],
        );
        let out = Command::new(BIN)
            .arg("replay")
            .arg(&file)
            .output()
            .expect("replay runs");
        assert_eq!(
            (out.status.code(), String::from_utf8_lossy(&out.stderr)),
            (Some(1), "".into()),
            "{signal}"
        );
    }
}

/// A script that answers a question, whose answer a test edits between record and verify.
fn answering_script(dir: &std::path::Path, answer: &str) -> std::path::PathBuf {
    let script = dir.join("answer.sh");
    std::fs::write(
        &script,
        format!("read question\necho \"asked: $question\"\necho \"answer: {answer}\"\n"),
    )
    .expect("the script is written");
    script
}

fn verify(file: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(file)
        .args(extra)
        .output()
        .expect("verify runs");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("text"),
    )
}

#[test]
fn verify_passes_on_an_unchanged_program_and_shows_a_diff_for_a_changed_one() {
    let dir = scratch("verify");
    let file = dir.join("answer.json");
    let script = answering_script(&dir, "42");
    let mut record = Command::new(BIN)
        .arg("record")
        .arg(&file)
        .arg("--")
        .arg("sh")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    record
        .stdin
        .take()
        .expect("piped")
        .write_all(b"what is it?\n")
        .expect("stdin");
    let recorded = record.wait_with_output().expect("the recording ends");
    assert_eq!(recorded.stdout, b"asked: what is it?\nanswer: 42\n");

    assert_eq!(
        verify(&file, &[]),
        (
            Some(0),
            "all 1 recorded spawn(s) do what they did\n".to_owned()
        ),
        "the recording:\n{}",
        Cassette::load(&file).expect("a cassette").transcript()
    );

    answering_script(&dir, "43");
    let line = Cassette::load(&file).expect("a cassette").spawns[0].command_line();
    assert_eq!(
        verify(&file, &[]),
        (
            Some(1),
            format!(
                "spawn 0: {line}\n  fd 1: the output differs (- recorded, + now):\n  \
                 (1 line(s) the same)\n  - answer: 42\n  + answer: 43\n\
                 1 of 1 recorded spawn(s) differ from the recording\n"
            )
        )
    );

    let (code, text) = verify(&file, &["--update"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.ends_with(&format!(
            "recorded 1 spawn(s) again into {}\n",
            file.display()
        )),
        "{text}"
    );
    assert_eq!(verify(&file, &[]).0, Some(0));
    let shown = Command::new(BIN)
        .arg("show")
        .arg(&file)
        .output()
        .expect("show runs");
    let text = String::from_utf8(shown.stdout).expect("text");
    assert!(text.contains("  -> fd 0: b\"what is it?\\n\"\n"), "{text}");
    assert!(text.contains("answer: 43"), "{text}");
}

#[test]
fn verify_names_a_bad_binding_and_a_missing_cassette() {
    let out = Command::new(BIN)
        .args(["verify", "absent.json", "--bind", "novalue"])
        .output()
        .expect("verify runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`novalue` is not NAME=VALUE"));
    let out = Command::new(BIN)
        .args(["verify", "absent.json"])
        .output()
        .expect("verify runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "process-cassette: cassette absent.json: no such file\n"
    );
}

#[test]
fn record_stores_a_pattern_as_a_placeholder_and_verify_accepts_a_new_value() {
    let file = scratch("pattern").join("pid.json");
    let recorded = Command::new(BIN)
        .arg("record")
        .arg(&file)
        .args([
            "--pattern",
            "<PID>=pid [0-9]+",
            "--",
            "sh",
            "-c",
            "echo pid $$",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(recorded.status.success());
    assert!(recorded.stdout.starts_with(b"pid "));

    let shown = Command::new(BIN)
        .arg("show")
        .arg(&file)
        .output()
        .expect("show runs");
    let text = String::from_utf8(shown.stdout).expect("text");
    assert!(
        text.starts_with("placeholder <PID>: pattern `pid [0-9]+`\nspawn 0: sh -c echo pid $$\n"),
        "{text}"
    );
    assert!(text.contains("  <- fd 1: b\"<PID>\\n\"\n"), "{text}");
    // Each run has another pid: the placeholder matches it.
    assert_eq!(
        verify(&file, &[]),
        (
            Some(0),
            "all 1 recorded spawn(s) do what they did\n".to_owned()
        )
    );

    let out = Command::new(BIN)
        .arg("record")
        .arg(&file)
        .args(["--pattern", "<N>=[0-9]*", "--", "true"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "process-cassette: pattern `[0-9]*` for placeholder <N>: it matches the empty string"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
