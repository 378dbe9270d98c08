//! The children the contract needs, and the catalog that says how to start each.

use process_transport_api::{ChildFd, ChildFdMapping, PtySize, SpawnSpec};

/// What `Child::Talk` writes on stdout.
pub const TALK_STDOUT: &str = "out\n";
/// What `Child::Talk` writes on stderr.
pub const TALK_STDERR: &str = "err\n";
/// What `Child::ExtraFd` writes on fd 3.
pub const EXTRA_FD_TEXT: &str = "extra\n";
/// What `Child::IgnoreTerm`, `Child::WaitForSignal` and `Child::Grandchild` write on stdout
/// once ready.
pub const READY: &str = "ready\n";
/// The variable `Child::PrintEnv` prints.
pub const ENV_NAME: &str = "PROCESS_TRANSPORT_CONTRACT";
/// The terminal size `Child::TerminalSize` is spawned with.
pub const TERMINAL_SIZE: PtySize = PtySize::new(33, 101);

/// A child the contract starts. A [`Catalog`] says how to start each on a given spawner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Child {
    /// Copies stdin to stdout as it arrives; exits 0 at end of file (`cat`).
    Echo,
    /// Exits at once with this code.
    Exit(i32),
    /// Writes [`TALK_STDOUT`] on stdout and [`TALK_STDERR`] on stderr, then exits 0.
    Talk,
    /// Kills itself with `TERM`.
    DieBySignal,
    /// Writes [`READY`] once `TERM` is ignored, then copies stdin to stdout like
    /// [`Echo`](Child::Echo); `TERM` does nothing to it.
    IgnoreTerm,
    /// Writes [`EXTRA_FD_TEXT`] on fd 3 (a pipe the parent reads), then exits 0.
    ExtraFd,
    /// Writes [`READY`], then waits, reading nothing, until a signal ends it.
    WaitForSignal,
    /// A program that does not exist.
    Missing,
    /// Child fds 0 (written), 1 (read), 2 (inherited), 3 (written), 4 (read), 5 (written):
    /// copies fd 3 to fd 4 until end of file and closes fd 4, then copies fd 5 and then
    /// stdin to stdout; exits 0.
    StagedFds,
    /// Closes its fds 2, 1 and 0, in that order, then waits, until a signal ends it.
    CloseAllAndWait,
    /// Copies stdin to stderr as it arrives; exits 0 at end of file.
    EchoToStderr,
    /// Leaves a grandchild holding its pipes (it exits at the end of stdin), writes
    /// [`READY`] on stdout and exits 0.
    Grandchild,
    /// Writes the value of [`ENV_NAME`] on stdout, without a newline; exits 0.
    PrintEnv,
    /// Writes its working directory and a newline on stdout; exits 0.
    PrintCwd,
    /// Writes `leader` and a newline on stdout when it leads its own process group (else
    /// `member`), then its `argv[0]` and a newline; exits 0.
    PrintGroupAndArgv0,
    /// On a terminal: writes `tty` and a newline on stdout and `err` and a newline on stderr
    /// if fds 0, 1 and 2 are all terminals; exits 0.
    TerminalCheck,
    /// On a terminal: copies its input to its output like [`Echo`](Child::Echo).
    TerminalEcho,
    /// On a terminal of [`TERMINAL_SIZE`]: prints the size as `stty size` does, reads a line,
    /// prints the size again; exits 0.
    TerminalSize,
    /// On a terminal: writes [`READY`], then waits, reading nothing, until a signal ends it.
    TerminalWait,
}

impl Child {
    /// Every child the suite starts, for a catalog that must prepare each (the fakes'
    /// scripted twins).
    pub const ALL: [Child; 20] = [
        Child::Echo,
        Child::Exit(0),
        Child::Exit(3),
        Child::Talk,
        Child::DieBySignal,
        Child::IgnoreTerm,
        Child::ExtraFd,
        Child::WaitForSignal,
        Child::Missing,
        Child::StagedFds,
        Child::CloseAllAndWait,
        Child::EchoToStderr,
        Child::Grandchild,
        Child::PrintEnv,
        Child::PrintCwd,
        Child::PrintGroupAndArgv0,
        Child::TerminalCheck,
        Child::TerminalEcho,
        Child::TerminalSize,
        Child::TerminalWait,
    ];
}

/// How to start each [`Child`] on the spawner under test.
pub trait Catalog: Send + Sync {
    /// The spec that starts `child`.
    fn spec(&self, child: Child) -> SpawnSpec;
}

/// The catalog for real processes, with programs every Linux machine has (`sh`, `cat`,
/// `sleep`). The fakes' scripted twins register scripts for these same command lines.
///
/// ```
/// use process_transport_contract::{Catalog, Child, ShellCatalog};
///
/// assert_eq!(ShellCatalog.spec(Child::Echo).command_line(), "cat");
/// assert_eq!(ShellCatalog.spec(Child::Exit(3)).command_line(), "sh -c 'exit 3'");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ShellCatalog;

impl Catalog for ShellCatalog {
    fn spec(&self, child: Child) -> SpawnSpec {
        let sh = |script: &str| SpawnSpec::new("sh").args(["-c", script]);
        match child {
            Child::Echo => SpawnSpec::new("cat"),
            Child::Exit(code) => sh(&format!("exit {code}")),
            Child::Talk => sh("printf 'out\\n'; printf 'err\\n' >&2"),
            Child::DieBySignal => sh("kill -TERM $$"),
            Child::IgnoreTerm => sh("trap '' TERM; printf 'ready\\n'; exec cat"),
            Child::ExtraFd => {
                sh("printf 'extra\\n' >&3").child_fd(ChildFd(3), ChildFdMapping::ParentReads)
            }
            Child::WaitForSignal => sh("printf 'ready\\n'; exec sleep 600"),
            Child::Missing => SpawnSpec::new("no-such-program-for-the-contract"),
            Child::StagedFds => sh("cat <&3 >&4; exec 4>&-; cat <&5; exec cat")
                .child_fd(ChildFd::STDERR, ChildFdMapping::Inherit(2))
                .child_fd(ChildFd(3), ChildFdMapping::ParentWrites)
                .child_fd(ChildFd(4), ChildFdMapping::ParentReads)
                .child_fd(ChildFd(5), ChildFdMapping::ParentWrites),
            Child::CloseAllAndWait => sh("exec 2>&- 1>&- 0<&-; exec sleep 600"),
            Child::EchoToStderr => sh("exec cat >&2"),
            Child::Grandchild => sh("cat <&0 & printf 'ready\\n'"),
            Child::PrintEnv => sh(&format!("printf %s \"${ENV_NAME}\"")),
            Child::PrintCwd => sh("pwd"),
            // Field 5 of /proc/PID/stat is the process group; argv[0] is the first word of
            // /proc/PID/cmdline.
            Child::PrintGroupAndArgv0 => {
                sh("read -r pid comm state ppid group rest < /proc/$$/stat; \
                 if [ \"$group\" = $$ ]; then echo leader; else echo member; fi; \
                 tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1")
            }
            Child::TerminalCheck => {
                sh("test -t 0 && test -t 1 && test -t 2 && printf 'tty\\n' && printf 'err\\n' >&2")
                    .use_pty(true)
            }
            Child::TerminalEcho => SpawnSpec::new("cat").use_pty(true),
            Child::TerminalSize => sh("stty size; read line; stty size")
                .use_pty(true)
                .pty_size(TERMINAL_SIZE),
            Child::TerminalWait => sh("printf 'ready\\n'; exec sleep 599").use_pty(true),
        }
    }
}

/// The catalog for the workspace's helper program (`pt-helper`, the binary of this crate), for a platform without `sh` and `cat`: Windows. It plays the children
/// any platform can have ([`HelperCatalog::plays`]); the others (signals, fds above 2, a
/// process group, terminals) start it with a command it refuses, exit code 101 and a message
/// naming the child, so a scenario that needs one fails clearly rather than hang.
///
/// ```
/// use process_transport_contract::{Catalog, Child, HelperCatalog};
///
/// let catalog = HelperCatalog::new("pt-helper");
/// assert_eq!(catalog.spec(Child::Echo).command_line(), "pt-helper cat");
/// assert_eq!(catalog.spec(Child::Exit(3)).command_line(), "pt-helper exit 3");
/// assert!(!HelperCatalog::plays(Child::DieBySignal));
/// ```
#[derive(Clone, Debug)]
pub struct HelperCatalog {
    helper: std::path::PathBuf,
}

impl HelperCatalog {
    /// The catalog that starts the helper program at `helper`.
    pub fn new(helper: impl Into<std::path::PathBuf>) -> Self {
        HelperCatalog {
            helper: helper.into(),
        }
    }

    /// Whether the helper plays `child`.
    pub fn plays(child: Child) -> bool {
        matches!(
            child,
            Child::Echo
                | Child::Exit(_)
                | Child::Talk
                | Child::WaitForSignal
                | Child::Missing
                | Child::EchoToStderr
                | Child::Grandchild
                | Child::PrintEnv
                | Child::PrintCwd
        )
    }
}

impl Catalog for HelperCatalog {
    fn spec(&self, child: Child) -> SpawnSpec {
        let helper = |words: &[&str]| SpawnSpec::new(&self.helper).args(words);
        match child {
            Child::Echo => helper(&["cat"]),
            Child::Exit(code) => helper(&["exit", &code.to_string()]),
            Child::Talk => helper(&["talk"]),
            Child::WaitForSignal => helper(&["wait"]),
            Child::Missing => SpawnSpec::new("no-such-program-for-the-contract"),
            Child::EchoToStderr => helper(&["cat-to-stderr"]),
            Child::Grandchild => helper(&["grandchild"]),
            Child::PrintEnv => helper(&["print-env", ENV_NAME]),
            Child::PrintCwd => helper(&["pwd"]),
            other => helper(&["not-played", &format!("{other:?}")]),
        }
    }
}
