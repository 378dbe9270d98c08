//! The fakes' scripted twins of the contract's children: the same command lines as
//! `ShellCatalog`, registered on a `MemoryProcessReactor` with scripts that behave like the
//! real programs.

use process_transport_api::{ChildFd, ProcessEnd, Signal};
use process_transport_contract::{
    Catalog, Child, ShellCatalog, ENV_NAME, EXTRA_FD_TEXT, READY, TALK_STDERR, TALK_STDOUT,
};
use process_transport_fakes::{FakeChild, MemoryProcessReactor, Script, SignalAction};

/// The script that plays `child` as `ShellCatalog`'s program for it behaves; `None` for a
/// child that must not exist.
pub fn twin(child: Child) -> Option<Script> {
    let script = match child {
        Child::Echo => Script::cat(),
        Child::Exit(code) => Script::new().exit(code),
        Child::Talk => Script::new()
            .stdout(TALK_STDOUT)
            .stderr(TALK_STDERR)
            .exit(0),
        Child::DieBySignal => Script::new().killed_by(Signal::Term),
        Child::IgnoreTerm => Script::cat()
            .stdout(READY)
            .on_signal(Signal::Term, SignalAction::Ignore),
        Child::ExtraFd => Script::new().output(ChildFd(3), EXTRA_FD_TEXT).exit(0),
        // `sleep` reads nothing: what is written stays in the pipe.
        Child::WaitForSignal => Script::new().stdout(READY).holds_stdin(),
        Child::Missing => return None,
        // Reads nothing until stdin closes, which the suite does last.
        Child::StagedFds => Script::new().holds_stdin().on_stdin_eof(staged_copies),
        Child::CloseAllAndWait => Script::new()
            .close(ChildFd::STDERR)
            .close(ChildFd::STDOUT)
            .close(ChildFd::STDIN),
        Child::EchoToStderr => Script::cat_to(ChildFd::STDERR),
        Child::Grandchild => Script::new()
            .stdout(READY)
            .exit_keeping_fds(ProcessEnd::Done),
        Child::PrintEnv => Script::new()
            .start_with(|child| {
                let value = child
                    .spec()
                    .get_env()
                    .vars()
                    .find(|(key, _)| *key == ENV_NAME)
                    .and_then(|(_, value)| value)
                    .map(|value| value.as_encoded_bytes().to_vec())
                    .unwrap_or_default();
                let _ = child.write(ChildFd::STDOUT, value);
            })
            .exit(0),
        // The fake terminal echoes, hands over lines and turns `\n` into `\r\n`, as a real
        // one does; the scripts write what the programs write.
        Child::TerminalCheck => Script::new().stdout("tty\n").stderr("err\n").exit(0),
        Child::TerminalEcho => Script::cat(),
        Child::TerminalSize => {
            Script::new()
                .start_with(print_terminal_size)
                .on_stdin(|child, data| {
                    if data.contains(&b'\n') {
                        print_terminal_size(child);
                        child.exit(0);
                    }
                })
        }
        Child::TerminalWait => Script::new().stdout(READY).holds_stdin(),
        Child::PrintCwd => Script::new()
            .start_with(|child| {
                let cwd = child.spec().get_cwd().map(|cwd| cwd.display().to_string());
                let _ = child.write(ChildFd::STDOUT, format!("{}\n", cwd.unwrap_or_default()));
            })
            .exit(0),
        Child::PrintGroupAndArgv0 => Script::new()
            .start_with(|child| {
                let spec = child.spec();
                let role = match spec.get_process_group() {
                    Some(0) => "leader",
                    _ => "member",
                };
                let argv0 = spec.get_arg0().unwrap_or(spec.get_executable());
                let _ = child.write(
                    ChildFd::STDOUT,
                    format!("{role}\n{}\n", argv0.to_string_lossy()),
                );
            })
            .exit(0),
    };
    Some(script)
}

/// `stty size`.
fn print_terminal_size(child: &FakeChild) {
    if let Some(size) = child.terminal_size() {
        let _ = child.write(ChildFd::STDOUT, format!("{} {}\n", size.rows, size.cols));
    }
}

/// `cat <&3 >&4; exec 4>&-; cat <&5; exec cat`, once everything was written and closed.
fn staged_copies(child: &FakeChild) {
    let _ = child.write(ChildFd(4), child.read(ChildFd(3)));
    child.close(ChildFd(4));
    let _ = child.write(ChildFd::STDOUT, child.read(ChildFd(5)));
    let _ = child.write(ChildFd::STDOUT, child.read(ChildFd::STDIN));
    child.exit(0);
}

/// A strict reactor on which every command of `ShellCatalog` is played by its twin; any other
/// command is not found.
pub fn twin_reactor() -> MemoryProcessReactor {
    let reactor = MemoryProcessReactor::strict();
    for child in Child::ALL {
        if let Some(script) = twin(child) {
            let spec = ShellCatalog.spec(child);
            let words = std::iter::once(spec.get_executable().to_owned())
                .chain(spec.get_args().iter().cloned());
            reactor.register(words, script);
        }
    }
    reactor
}
