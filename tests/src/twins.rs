//! The fakes' scripted twins of the contract's children: the same command lines as
//! `ShellCatalog`, registered on a `MemoryProcessReactor` with scripts that behave like the
//! real programs.

use process_transport_api::{ChildFd, Signal};
use process_transport_contract::{
    Catalog, Child, ShellCatalog, EXTRA_FD_TEXT, READY, TALK_STDERR, TALK_STDOUT,
};
use process_transport_fakes::{MemoryProcessReactor, Script, SignalAction};

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
    };
    Some(script)
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
