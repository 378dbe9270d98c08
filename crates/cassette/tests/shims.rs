//! Shims on `PATH`: code that starts its processes with plain `std::process::Command`, a
//! shell script and its children, recorded through shims and replayed through them, with no
//! change to the code.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use process_transport_cassette::{Cassette, CassetteError, Mode, Shims, ShimsBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_process-cassette");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pt-shims-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shims(path: &Path, mode: &str) -> ShimsBuilder {
    Shims::builder(path).binary(BIN).mode(mode)
}

/// Code the way a dependency writes it: `std::process::Command`, no spawner anywhere. The
/// program it runs leaves a mark in `log`, so a test sees whether it really ran.
fn describe(vars: &[(OsString, OsString)], log: &Path) -> io::Result<(String, String, i32)> {
    let out = Command::new("sh")
        .args([
            "-c",
            "echo ran >> \"$1\"; read name; echo \"hello $name\"; echo careful >&2; exit 3",
            "sh",
        ])
        .arg(log)
        .envs(vars.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"shim\n")?;
            child.wait_with_output()
        })?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

fn runs(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

#[test]
fn std_process_code_is_recorded_and_replayed_through_shims_unchanged(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("std");
    let (path, log) = (dir.join("describe.json"), dir.join("log"));
    let recording = shims(&path, "record").program("sh").open()?;
    assert_eq!(recording.mode(), Mode::Record);
    let recorded = describe(&recording.vars(), &log)?;
    assert_eq!(recorded, ("hello shim\n".into(), "careful\n".into(), 3));
    assert_eq!(runs(&log), 1);
    recording.finish()?;
    let cassette = Cassette::load(&path)?;
    assert_eq!(cassette.spawns.len(), 1);
    assert_eq!(cassette.spawns[0].command[0], "sh");

    let replaying = shims(&path, "replay").open()?;
    assert_eq!(describe(&replaying.vars(), &log)?, recorded);
    assert_eq!(runs(&log), 1, "the real program did not run again");
    replaying.finish()?;
    Ok(())
}

/// A shell script, run by its own interpreter path (not through `PATH`), whose children are
/// shimmed: grandchildren of the test.
///
/// Scripts are run as `/bin/sh SCRIPT`, not exec'd themselves: a file this multi-threaded
/// test process just wrote can still be open for writing in a child another test is forking,
/// and exec'ing it then fails with "text file busy".
fn script(dir: &Path) -> PathBuf {
    let script = dir.join("tally.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'b\\na\\n' | sort\nprintf 'z\\ny\\n' | sort -r\necho counted $(printf 'x\\ny\\n' | wc -l)\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_shell_scripts_children_are_recorded_and_replayed_in_order(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("script");
    let path = dir.join("tally.json");
    let script = script(&dir);
    let run = |shims: &Shims| {
        Command::new("/bin/sh")
            .arg(&script)
            .envs(shims.vars())
            .output()
            .map(|out| {
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                )
            })
    };
    let recording = shims(&path, "record").programs(["sort", "wc"]).open()?;
    let recorded = run(&recording)?;
    assert_eq!(recorded, (Some(0), "a\nb\nz\ny\ncounted 2\n".to_owned()));
    recording.finish()?;
    let commands: Vec<String> = Cassette::load(&path)?
        .spawns
        .iter()
        .map(|recording| recording.command_line())
        .collect();
    assert_eq!(commands, ["sort", "sort -r", "wc -l"]);

    // Every program the cassette holds is shimmed when none is named.
    let replaying = shims(&path, "replay").open()?;
    assert_eq!(run(&replaying)?, recorded);
    replaying.finish()?;
    Ok(())
}

#[test]
fn concurrent_shims_share_one_cassette_and_repeated_commands_are_served_in_order(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("concurrent");
    let path = dir.join("fan.json");
    let counter = dir.join("counter");
    std::fs::write(&counter, "")?;
    // Four at once, then one command twice in a row, whose answer changes.
    let fan = format!(
        "#!/bin/sh\nfor n in 1 2 3 4; do sh -c \"echo job $n\" > {out}.$n & done\nwait\n\
         cat {out}.1 {out}.2 {out}.3 {out}.4\n\
         sh -c 'echo x >> {counter}; wc -l < {counter}'\n\
         sh -c 'echo x >> {counter}; wc -l < {counter}'\n",
        out = dir.join("out").display(),
        counter = counter.display()
    );
    let script = dir.join("fan.sh");
    std::fs::write(&script, fan)?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let run = |shims: &Shims| {
        Command::new("/bin/sh")
            .arg(&script)
            .envs(shims.vars())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let recording = shims(&path, "record").program("sh").open()?;
    let recorded = run(&recording)?;
    assert_eq!(recorded, "job 1\njob 2\njob 3\njob 4\n1\n2\n");
    recording.finish()?;
    assert_eq!(Cassette::load(&path)?.spawns.len(), 6);

    for _ in 0..3 {
        std::fs::write(&counter, "")?;
        let replaying = shims(&path, "replay").open()?;
        assert_eq!(run(&replaying)?, recorded);
        assert_eq!(std::fs::read_to_string(&counter)?, "", "nothing real ran");
        replaying.finish()?;
    }
    Ok(())
}

#[test]
fn an_unrecorded_spawn_exits_127_naming_the_command_and_the_cassette_and_fails_finish(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("unrecorded");
    let path = dir.join("one.json");
    let recording = shims(&path, "record").program("sh").open()?;
    Command::new("sh")
        .args(["-c", "echo one"])
        .envs(recording.vars())
        .output()?;
    recording.finish()?;

    let replaying = shims(&path, "replay").open()?;
    let out = Command::new("sh")
        .args(["-c", "echo two"])
        .envs(replaying.vars())
        .output()?;
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "process-cassette shim: cannot run `sh -c echo two`: no recording in cassette {} matches",
            path.display()
        )),
        "{stderr}"
    );
    match replaying.finish() {
        Err(CassetteError::Unmatched { spawns, .. }) => {
            assert_eq!(spawns.len(), 1);
            assert!(spawns[0].starts_with("`sh -c echo two`"), "{spawns:?}");
        }
        other => panic!("not unmatched: {other:?}"),
    }

    // A recording never served is named too.
    let replaying = shims(&path, "replay").open()?;
    match replaying.finish() {
        Err(CassetteError::Unused { commands, .. }) => assert_eq!(commands, ["sh -c echo one"]),
        other => panic!("not unused: {other:?}"),
    }
    Ok(())
}

/// Starts `sh -c 'echo ready; exec sleep 30'`, waits for `ready`, sends SIGTERM.
fn terminated(shims: &Shims) -> io::Result<(String, Option<i32>)> {
    let mut child = Command::new("sh")
        .args(["-c", "echo ready; exec sleep 30"])
        .envs(shims.vars())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    line.push_str(&rest);
    Ok((line, child.wait()?.signal()))
}

/// Records `run` through a shim of `sh`, then replays it through one: it gives `expected`
/// both times, and the recording shows the SIGTERM sent and the death by it.
fn recorded_and_replayed_alike<T: PartialEq + std::fmt::Debug>(
    name: &str,
    run: impl Fn(&Shims) -> io::Result<T>,
    expected: T,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch(name);
    let path = dir.join("term.json");
    let recording = shims(&path, "record").program("sh").open()?;
    assert_eq!(run(&recording)?, expected, "recording");
    recording.finish()?;
    let transcript = Cassette::load(&path)?.transcript();
    assert!(
        transcript.contains("  -> signal TERM\n") && transcript.contains("  exited: signal 15\n"),
        "the signal is part of the recording: {transcript}"
    );
    let replaying = shims(&path, "replay").open()?;
    assert_eq!(run(&replaying)?, expected, "replaying");
    replaying.finish()?;
    Ok(())
}

#[test]
fn a_shim_that_gets_sigterm_mid_replay_dies_as_the_recorded_child_did(
) -> Result<(), Box<dyn std::error::Error>> {
    recorded_and_replayed_alike(
        "sigterm",
        terminated,
        ("ready\n".to_owned(), Some(libc::SIGTERM)),
    )
}

/// A child that closes its stdin and sleeps, its stdin kept open by the parent: the
/// parent waits to see the loss (the pipe's error), then ends the child with SIGTERM.
fn loses_stdin(shims: &Shims) -> io::Result<(bool, Option<i32>)> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut child = Command::new("sh")
        .args(["-c", "exec 0<&-; exec sleep 30"])
        .envs(shims.vars())
        .stdin(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().unwrap();
    let mut fds = [PollFd::new(&stdin, PollFlags::empty())];
    // Only a guard against a hang: the loss comes at once.
    let guard = Timespec {
        tv_sec: 60,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&guard))?;
    let lost = fds[0].revents().contains(PollFlags::ERR);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
    Ok((lost, child.wait()?.signal()))
}

/// Seen while the child runs (it is still there for the SIGTERM), as recorded and as
/// replayed.
#[test]
fn a_child_that_closes_its_stdin_shows_the_loss_through_its_shim_while_it_runs(
) -> Result<(), Box<dyn std::error::Error>> {
    recorded_and_replayed_alike("lost-stdin", loses_stdin, (true, Some(libc::SIGTERM)))
}

#[test]
fn a_shimmed_program_that_runs_another_is_served_with_it() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = scratch("nested");
    let path = dir.join("nested.json");
    let run = |shims: &Shims| {
        Command::new("sh")
            .args(["-c", "printf 'b\\na\\n' | sort"])
            .envs(shims.vars())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let recording = shims(&path, "record").programs(["sh", "sort"]).open()?;
    assert_eq!(run(&recording)?, "a\nb\n");
    recording.finish()?;
    let cassette = Cassette::load(&path)?;
    let shape: Vec<(String, Option<usize>)> = cassette
        .spawns
        .iter()
        .map(|recording| (recording.command_line(), recording.within))
        .collect();
    assert_eq!(
        shape,
        [
            ("sh -c printf 'b\\na\\n' | sort".to_owned(), None),
            ("sort".to_owned(), Some(0))
        ]
    );

    // The outer program is not run, so neither is the inner one: both are served.
    let replaying = shims(&path, "replay").open()?;
    assert_eq!(run(&replaying)?, "a\nb\n");
    replaying.finish()?;
    Ok(())
}

/// Runs `cat` once per input, all at once, each fed its own input: what each printed.
fn cats(shims: &Shims, inputs: &[String]) -> io::Result<Vec<String>> {
    let vars = shims.vars();
    std::thread::scope(|scope| {
        let runs: Vec<_> = inputs
            .iter()
            .map(|input| {
                let vars = vars.clone();
                scope.spawn(move || {
                    let mut child = Command::new("cat")
                        .envs(vars)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()?;
                    child.stdin.take().unwrap().write_all(input.as_bytes())?;
                    let out = child.wait_with_output()?;
                    assert_eq!(out.status.code(), Some(0), "{out:?}");
                    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_shims_of_one_command_each_get_the_recording_their_input_fits(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("same-command");
    let path = dir.join("cats.json");
    let inputs: Vec<String> = (1..=6).map(|n| format!("input {n}\n")).collect();
    let recording = shims(&path, "record").program("cat").open()?;
    assert_eq!(cats(&recording, &inputs)?, inputs);
    recording.finish()?;
    assert_eq!(Cassette::load(&path)?.spawns.len(), 6);

    // Six identical command lines start in any order; each is answered with what its own
    // input got when it was recorded, never another's.
    for _ in 0..5 {
        let replaying = shims(&path, "replay").open()?;
        assert_eq!(cats(&replaying, &inputs)?, inputs);
        replaying.finish()?;
    }
    Ok(())
}

#[test]
fn a_shim_whose_input_differs_from_the_recording_ends_with_125_and_fails_finish(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("input-differs");
    let path = dir.join("cat.json");
    let recording = shims(&path, "record").program("cat").open()?;
    assert_eq!(
        cats(&recording, &["recorded\n".to_owned()])?,
        ["recorded\n"]
    );
    recording.finish()?;

    let replaying = shims(&path, "replay").open()?;
    let mut child = Command::new("cat")
        .envs(replaying.vars())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(b"something else\n")?;
    // Ends on its own, stdin closed: it does not wait for input the recording still expects.
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(out.stdout, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("process-cassette shim: `cat`: "),
        "{stderr}"
    );
    match replaying.finish() {
        Err(CassetteError::Mismatch { failures, .. }) => assert_eq!(failures.len(), 1),
        other => panic!("not a mismatch: {other:?}"),
    }
    Ok(())
}
