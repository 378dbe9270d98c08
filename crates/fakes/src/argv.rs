//! [`argv!`](crate::argv): a command line of words of any mix of types.

/// A command line (`Vec<OsString>`) of words of any mix of types that are `AsRef<OsStr>`:
/// `&str`, `String`, `&Path`, `PathBuf`, `OsString`. The registration methods take one item
/// type, so an argv that mixes a path with string literals is written with this.
///
/// ```
/// use process_transport_fakes::{argv, MemoryProcessReactor, Script};
/// use std::path::Path;
///
/// let config = Path::new("/etc/app.toml");
/// let reactor = MemoryProcessReactor::strict();
/// let registration = reactor.register(argv!["app", "--config", config, String::from("-v")], Script::new());
/// assert_eq!(registration.description(), "app --config /etc/app.toml -v");
/// ```
#[macro_export]
macro_rules! argv {
    ($($word:expr),* $(,)?) => {
        ::std::vec![$(::std::ffi::OsString::from(
            ::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$word)
        )),*]
    };
}
