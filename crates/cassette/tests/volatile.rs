//! Volatile values on real processes: a dialogue whose arguments and stdin carry a temporary
//! directory and a pid, recorded once and replayed in another directory with another pid;
//! and match rules.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use process_transport_api::{ProcessSpawner, SpawnError};
use process_transport_cassette::{Cassette, CassetteError, Mode, Session, SessionBuilder};
use process_transport_command::{Command, ExitStatus, Stdio};
use tokio::io::AsyncWriteExt;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pt-volatile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `text` with the characters a regular expression gives a meaning escaped.
fn escaped(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
            | '#' | '&' | '-' | '~' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// The code under test: a compiler probe in a fresh temporary directory, and a request that
/// carries the caller's pid, the way a language-server client sends its own.
async fn probe(
    spawner: Arc<dyn ProcessSpawner>,
    dir: &Path,
    pid: u32,
) -> io::Result<(Vec<u8>, ExitStatus)> {
    let mut child = Command::new("sh")
        .args([
            "-c",
            r#"read request; echo "answer to $request"; echo "compiled $1""#,
            "sh",
        ])
        .arg(dir.join("testfile.c"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(format!("{{\"processId\": {pid}}}\n").as_bytes())
        .await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    Ok((out.stdout, out.status))
}

fn probe_session(path: &Path, mode: &str) -> SessionBuilder {
    let temp = std::env::temp_dir();
    let temp = temp.to_str().expect("a UTF-8 temporary directory");
    Session::builder(path)
        .mode(mode)
        .pattern(
            &format!(
                "{}/pt-probe[A-Za-z0-9]+",
                escaped(temp.trim_end_matches('/'))
            ),
            "<PROBE_DIR>",
        )
        .pattern(r#""processId": *[0-9]+"#, "<PID>")
}

fn probe_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pt-probe")
        .tempdir()
        .unwrap()
}

#[tokio::test]
async fn a_dialogue_with_a_temporary_path_and_a_pid_replays_in_a_new_directory_with_a_new_pid(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("probe").join("probe.json");
    let recorded_dir = probe_dir();
    let session = probe_session(&path, "record").open()?;
    let (recorded, status) = probe(session.spawner(), recorded_dir.path(), 12345).await?;
    assert!(status.success());
    assert_eq!(
        recorded,
        format!(
            "answer to {{\"processId\": 12345}}\ncompiled {}/testfile.c\n",
            recorded_dir.path().display()
        )
        .as_bytes()
    );
    session.finish()?;

    // The cassette holds the placeholders and their patterns, never the values.
    let json = std::fs::read_to_string(&path)?;
    let recorded_name = recorded_dir.path().file_name().unwrap().to_str().unwrap();
    assert!(!json.contains(recorded_name), "{json}");
    assert!(!json.contains("12345"), "{json}");
    assert!(json.contains("\"<PROBE_DIR>/testfile.c\""), "{json}");
    assert!(json.contains("\"{<PID>}\\n\""), "{json}");
    let cassette = Cassette::load(&path)?;
    assert_eq!(
        cassette.placeholders.keys().collect::<Vec<_>>(),
        ["<PID>", "<PROBE_DIR>"]
    );
    drop(recorded_dir);

    // Another run: another directory, a pid with another number of digits.
    let replayed_dir = probe_dir();
    let session = probe_session(&path, "replay").open()?;
    assert_eq!(session.mode(), Mode::Replay);
    let (replayed, status) = probe(session.spawner(), replayed_dir.path(), 7).await?;
    assert!(status.success());
    assert_eq!(
        String::from_utf8(replayed)?,
        format!(
            "answer to {{\"processId\": 7}}\ncompiled {}/testfile.c\n",
            replayed_dir.path().display()
        )
    );
    session.finish()?;
    Ok(())
}

fn not_found(err: io::Error) -> String {
    match err.get_ref().and_then(|e| e.downcast_ref::<SpawnError>()) {
        Some(SpawnError::NotFound(text)) => text.clone(),
        other => panic!("not a NotFound: {other:?}"),
    }
}

#[tokio::test]
async fn a_live_value_outside_the_pattern_is_refused_naming_the_placeholder_and_its_pattern(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("outside").join("probe.json");
    let dir = probe_dir();
    let session = probe_session(&path, "record").open()?;
    probe(session.spawner(), dir.path(), 12345).await?;
    session.finish()?;

    // An argument the pattern does not match: no recording serves it.
    let session = probe_session(&path, "replay").open()?;
    let elsewhere = scratch("outside-elsewhere");
    let err = probe(session.spawner(), &elsewhere, 1).await.unwrap_err();
    let text = not_found(err);
    assert!(
        text.contains("the closest recorded command is `sh -c")
            && text.contains("<PROBE_DIR> (pattern `"),
        "{text}"
    );
    assert!(matches!(
        session.finish(),
        Err(CassetteError::Unused { .. })
    ));

    // A request whose pid is not digits: the stdin mismatch names the placeholder.
    let session = probe_session(&path, "replay").open()?;
    let spawner = session.spawner();
    let dir = probe_dir();
    let file = dir.path().join("testfile.c");
    let run = tokio::spawn(async move {
        let mut child = Command::new("sh")
            .args([
                "-c",
                r#"read request; echo "answer to $request"; echo "compiled $1""#,
                "sh",
            ])
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawner(spawner)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"{\"processId\": none}\n").await.unwrap();
        drop(stdin);
        child.wait_with_output().await
    });
    let panic = run
        .await
        .expect_err("the mismatch is a fake's misuse check");
    let text = panic
        .into_panic()
        .downcast::<String>()
        .map(|text| *text)
        .unwrap_or_default();
    assert!(
        text.contains("stdin (fd 0) at offset 1 differs from the recording")
            && text.contains("<PID> (pattern `\"processId\": *[0-9]+`) not bound yet")
            && text.contains("rule: stdin compared exactly"),
        "{text}"
    );
    match session.finish() {
        Err(CassetteError::Mismatch { failures, .. }) => assert_eq!(failures, [text]),
        other => panic!("not a mismatch: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn one_value_in_two_spawns_binds_once_and_must_repeat(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("twice").join("twice.json");
    let run = |spawner: Arc<dyn ProcessSpawner>, dirs: [PathBuf; 2]| async move {
        let mut outputs = Vec::new();
        for dir in dirs {
            let out = Command::new("sh")
                .args(["-c", "echo in $1", "sh"])
                .arg(&dir)
                .spawner(spawner.clone())
                .output()
                .await?;
            outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        io::Result::Ok(outputs)
    };
    let dir = probe_dir();
    let session = probe_session(&path, "record").open()?;
    run(session.spawner(), [dir.path().into(), dir.path().into()]).await?;
    session.finish()?;

    let (first, second) = (probe_dir(), probe_dir());
    let session = probe_session(&path, "replay").open()?;
    assert_eq!(
        run(
            session.spawner(),
            [first.path().into(), first.path().into()]
        )
        .await?,
        [
            format!("in {}\n", first.path().display()),
            format!("in {}\n", first.path().display())
        ]
    );
    session.finish()?;

    // The recording used one directory twice; a run with two is another dialogue.
    let session = probe_session(&path, "replay").open()?;
    let err = run(
        session.spawner(),
        [first.path().into(), second.path().into()],
    )
    .await
    .unwrap_err();
    let text = not_found(err);
    assert!(
        text.contains(&format!("bound to b\"{}\"", first.path().display())),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_pattern_is_reported_when_the_session_opens() {
    let err = Session::builder("unused.json")
        .pattern("(unclosed", "<X>")
        .open()
        .unwrap_err();
    match &err {
        CassetteError::BadPattern { error, .. } => assert_eq!(error.pattern, "(unclosed"),
        other => panic!("not a BadPattern: {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("cassette unused.json: pattern `(unclosed` for placeholder <X>: "),
        "{err}"
    );
}

#[tokio::test]
async fn rules_ignore_the_cwd_or_stdin_content_and_match_arguments_by_pattern(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("rules").join("rules.json");
    let session = Session::builder(&path).mode("record").open()?;
    let out = Command::new("sh")
        .args(["-c", "read x; echo seeded", "sh", "--seed=17"])
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(session.spawner())
        .spawn()?;
    let mut out = out;
    out.stdin.take().unwrap().write_all(b"first\n").await?;
    assert_eq!(out.wait_with_output().await?.stdout, b"seeded\n");
    session.finish()?;

    let spawn_with =
        |spawner: Arc<dyn ProcessSpawner>, seed: &'static str, input: &'static [u8]| async move {
            let mut child = Command::new("sh")
                .args(["-c", "read x; echo seeded", "sh", seed])
                .current_dir("/tmp")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawner(spawner)
                .spawn()?;
            child.stdin.take().unwrap().write_all(input).await?;
            io::Result::Ok(child.wait_with_output().await?.stdout)
        };
    // Exact: the cwd differs, and the rule that refused it is named.
    let exact = Session::builder(&path).mode("replay").open()?;
    let text = not_found(
        spawn_with(exact.spawner(), "--seed=17", b"first\n")
            .await
            .unwrap_err(),
    );
    assert!(
        text.contains("recorded with cwd `/` (rule: the cwd is compared where recorded"),
        "{text}"
    );
    // Lenient: another seed, another cwd, other input of the same length.
    let lenient = Session::builder(&path)
        .mode("replay")
        .ignore_cwd()
        .lenient_stdin()
        .args_matching("--seed=[0-9]+")
        .open()?;
    assert_eq!(
        spawn_with(lenient.spawner(), "--seed=99", b"other\n").await?,
        b"seeded\n"
    );
    lenient.finish()?;
    Ok(())
}

async fn ask(spawner: Arc<dyn ProcessSpawner>, script: &Path) -> io::Result<Vec<u8>> {
    let mut child = Command::new("sh")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"what is it?\n")
        .await?;
    Ok(child.wait_with_output().await?.stdout)
}

#[tokio::test]
async fn a_verifying_session_replays_then_checks_the_fixture_against_the_real_program(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("verify-session");
    let (path, script) = (dir.join("answer.json"), dir.join("answer.sh"));
    let answer = |text: &str| {
        std::fs::write(
            &script,
            format!("read question\necho \"asked: $question\"\necho \"answer: {text}\"\n"),
        )
    };
    answer("42")?;
    let session = Session::builder(&path).mode("record").open()?;
    assert_eq!(
        ask(session.spawner(), &script).await?,
        b"asked: what is it?\nanswer: 42\n"
    );
    session.finish()?;

    let session = Session::builder(&path).mode("verify").open()?;
    assert_eq!(session.mode(), Mode::Verify);
    ask(session.spawner(), &script).await?;
    session.finish()?;

    answer("43")?;
    let session = Session::builder(&path).mode("verify").open()?;
    // The test still runs on the fixture ...
    assert_eq!(
        ask(session.spawner(), &script).await?,
        b"asked: what is it?\nanswer: 42\n"
    );
    // ... and the fixture is found stale.
    match session.finish() {
        Err(CassetteError::Stale { report, .. }) => assert!(
            report.contains("  fd 1: the output differs (- recorded, + now):\n  (1 line(s) the same)\n  - answer: 42\n  + answer: 43\n"),
            "{report}"
        ),
        other => panic!("not stale: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_verification_feeds_the_program_the_values_the_replay_bound(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("verify-bound").join("probe.json");
    let dir = probe_dir();
    let session = probe_session(&path, "record").open()?;
    probe(session.spawner(), dir.path(), 12345).await?;
    session.finish()?;

    let other = probe_dir();
    let session = probe_session(&path, "verify").open()?;
    let (out, _) = probe(session.spawner(), other.path(), 7).await?;
    assert!(out.starts_with(b"answer to {\"processId\": 7}\n"));
    session.finish()?;
    Ok(())
}

/// A language server in `sh`: one request framed by `Content-Length`, one framed answer that
/// echoes it.
const FRAMED_SERVER: &str = r#"IFS= read -r header
IFS= read -r blank
len=${header#Content-Length: }
len=${len%?}
body=$(head -c "$len")
reply="{\"echo\": $body}"
printf 'Content-Length: %d\r\n\r\n%s' "${#reply}" "$reply""#;

/// The client: the header and the body in two writes, as clients write them, then the
/// answer, checked to be framed true.
async fn framed_request(
    spawner: Arc<dyn ProcessSpawner>,
    dir: &Path,
    pid: u32,
) -> io::Result<String> {
    let mut child = Command::new("sh")
        .args(["-c", FRAMED_SERVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawner(spawner)
        .spawn()?;
    let body = format!(
        "{{\"processId\": {pid}, \"rootUri\": \"file://{}\"}}",
        dir.display()
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await?;
    stdin.write_all(body.as_bytes()).await?;
    let out = child.wait_with_output().await?;
    let text = String::from_utf8(out.stdout).expect("text");
    let (header, answer) = text.split_once("\r\n\r\n").expect("a header block");
    let declared: usize = header
        .strip_prefix("Content-Length: ")
        .and_then(|digits| digits.parse().ok())
        .expect("a length header");
    assert_eq!(
        declared,
        answer.len(),
        "the answer is framed true: {text:?}"
    );
    Ok(answer.to_owned())
}

#[tokio::test]
async fn content_length_framing_stays_true_when_a_placeholder_changes_a_bodys_length(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("framed").join("lsp.json");
    let dir = probe_dir();
    let framed = |mode: &str| probe_session(&path, mode).framed_by_content_length();
    let session = framed("record").open()?;
    assert_eq!(
        framed_request(session.spawner(), dir.path(), 12345).await?,
        format!(
            "{{\"echo\": {{\"processId\": 12345, \"rootUri\": \"file://{}\"}}}}",
            dir.path().display()
        )
    );
    session.finish()?;
    // The stored headers name the stored bodies' lengths.
    let cassette = Cassette::load(&path)?;
    assert_eq!(
        cassette.framing,
        Some(process_transport_cassette::Framing::ContentLength)
    );
    let transcript = cassette.transcript();
    assert!(
        transcript.contains(r#"-> fd 0: b"Content-Length: 40\r\n\r\n""#)
            && transcript.contains(r#"-> fd 0: b"{<PID>, \"rootUri\": \"file://<PROBE_DIR>\"}""#)
            && transcript.contains(r#"<- fd 1: b"Content-Length: 50\r\n\r\n{\"echo\": {<PID>, "#),
        "{transcript}"
    );

    let other = probe_dir();
    let session = framed("replay").open()?;
    assert_eq!(
        framed_request(session.spawner(), other.path(), 7).await?,
        format!(
            "{{\"echo\": {{\"processId\": 7, \"rootUri\": \"file://{}\"}}}}",
            other.path().display()
        )
    );
    session.finish()?;

    // The same cassette, verified: the verifier writes the bound values with their lengths.
    let session = framed("verify").open()?;
    framed_request(session.spawner(), other.path(), 7).await?;
    session.finish()?;
    Ok(())
}

#[tokio::test]
async fn a_secret_env_value_is_stored_as_a_digest_and_matched_by_it(
) -> Result<(), Box<dyn std::error::Error>> {
    let path = scratch("digest").join("deploy.json");
    let deploy = |spawner: Arc<dyn ProcessSpawner>, token: &'static str| async move {
        Command::new("sh")
            .args(["-c", "echo deployed"])
            .env("API_TOKEN", token)
            .spawner(spawner)
            .output()
            .await
    };
    let session = Session::builder(&path)
        .mode("record")
        .match_env_digests(["API_TOKEN"])
        .open()?;
    deploy(session.spawner(), "s3cr3t").await?;
    session.finish()?;
    let json = std::fs::read_to_string(&path)?;
    assert!(!json.contains("s3cr3t"), "{json}");
    assert!(
        json.contains(
            "\"API_TOKEN\": \"sha256:4e738ca5563c06cfd0018299933d58db1dd8bf97f6973dc99bf6cdc64b5550bd\""
        ),
        "{json}"
    );

    let session = Session::builder(&path).mode("replay").open()?;
    assert_eq!(
        deploy(session.spawner(), "s3cr3t").await?.stdout,
        b"deployed\n"
    );
    session.finish()?;

    let session = Session::builder(&path).mode("replay").open()?;
    let text = not_found(deploy(session.spawner(), "other").await.unwrap_err());
    assert!(
        text.contains("is recorded, but it was recorded with env `API_TOKEN`")
            && text.contains("rule: the names set, kept values and digests are compared"),
        "{text}"
    );
    Ok(())
}
