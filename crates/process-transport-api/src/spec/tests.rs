//! Tests of the spawn spec.

use super::*;

fn invalid(spec: SpawnSpec) -> String {
    match spec.validate() {
        Err(SpawnError::InvalidSpec(why)) => why,
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
}

#[test]
fn a_new_spec_has_the_default_fd_map_and_inherits_the_environment() {
    let spec = SpawnSpec::new("cat");
    assert_eq!(
        spec.get_child_fds().iter().collect::<Vec<_>>(),
        [
            (&ChildFd::STDIN, &ChildFdMapping::ParentWrites),
            (&ChildFd::STDOUT, &ChildFdMapping::ParentReads),
            (&ChildFd::STDERR, &ChildFdMapping::ParentReads),
        ]
    );
    assert!(spec.get_env().inherits());
    assert_eq!(spec.get_env().vars().count(), 0);
    assert_eq!(
        (
            spec.get_cwd(),
            spec.get_uid(),
            spec.get_gid(),
            spec.get_use_pty()
        ),
        (None, None, None, false)
    );
    assert_eq!(spec.validate().ok(), Some(()));
}

#[test]
fn the_environment_resolves_like_command() {
    let parent = [("HOME", "/root"), ("PATH", "/bin"), ("LANG", "C")]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    let spec = SpawnSpec::new("env")
        .env("LANG", "en")
        .env_remove("HOME")
        .env("NEW", "1");
    let resolved = spec.get_env().resolve(parent.clone());
    assert_eq!(
        resolved
            .iter()
            .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
            .collect::<Vec<_>>(),
        [("LANG", "en"), ("NEW", "1"), ("PATH", "/bin")]
    );
    let exact = SpawnSpec::new("env")
        .env("GONE", "x")
        .env_clear()
        .env("ONLY", "1");
    assert!(!exact.get_env().inherits());
    assert_eq!(
        exact
            .get_env()
            .resolve(parent)
            .into_iter()
            .collect::<Vec<_>>(),
        [(OsString::from("ONLY"), OsString::from("1"))]
    );
}

#[test]
fn validate_names_the_executable_and_what_is_wrong() {
    assert_eq!(
        invalid(SpawnSpec::new("")),
        r#"cannot spawn "": the executable is empty"#
    );
    assert_eq!(
        invalid(SpawnSpec::new("ca\0t")),
        r#"cannot spawn "ca\0t": the executable holds a NUL byte"#
    );
    assert_eq!(
        invalid(SpawnSpec::new("echo").args(["ok", "b\0d"])),
        r#"cannot spawn "echo": argument 2 ("b\0d") holds a NUL byte"#
    );
    assert_eq!(
        invalid(SpawnSpec::new("env").env("A=B", "1")),
        r#"cannot spawn "env": environment variable name "A=B" is empty or holds '=' or a NUL byte"#
    );
    assert_eq!(
        invalid(SpawnSpec::new("env").env("A", "x\0")),
        r#"cannot spawn "env": environment variable "A" holds a NUL byte"#
    );
    assert_eq!(
        invalid(SpawnSpec::new("ls").cwd("/t\0mp")),
        r#"cannot spawn "ls": the working directory holds a NUL byte"#
    );
    assert_eq!(
        invalid(SpawnSpec::new("cat").child_fd(ChildFd(3), ChildFdMapping::Inherit(-1))),
        r#"cannot spawn "cat": child fd 3 inherits a negative parent fd"#
    );
}

#[test]
fn the_command_line_quotes_what_a_shell_would_split_or_expand() {
    let spec =
        SpawnSpec::new("sh").args(["-c", "echo $HOME", "--name=a.b", "", "it's", "*", "ünïcode"]);
    assert_eq!(
        spec.command_line(),
        r"sh -c 'echo $HOME' --name=a.b '' 'it'\''s' '*' ünïcode"
    );
}
