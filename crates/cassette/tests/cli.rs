//! The `process-cassette` binary: record, show, replay, and its errors.

use std::io::Write;
use std::process::{Command, Stdio};

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
