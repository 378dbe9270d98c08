//! Byte assertions that print what the fakes recorded readably.

use std::fmt;

/// Asserts that two byte strings are equal, like `assert_eq!`, but on failure shows both as
/// byte-string literals (`b"ok\n"`, not `[111, 107, 10]`) with the offset of the first
/// difference. Takes anything that is `AsRef<[u8]>`: a fake's `value()`, `value_of(fd)`,
/// `FakeChild::read`, a `Vec<u8>`, a `&str` or a `b"..."` literal. An optional message with
/// format arguments follows, as with `assert_eq!`.
///
/// ```
/// use process_transport_api::Transport;
/// use process_transport_fakes::{assert_bytes_eq, MemoryProcessTransport};
///
/// let transport = MemoryProcessTransport::new();
/// transport.write(b"ls -l\n").unwrap();
/// assert_bytes_eq!(transport.value(), b"ls -l\n");
/// assert_bytes_eq!(transport.value(), "ls -l\n", "what the protocol sent");
/// ```
///
/// A failure reads:
///
/// ```text
/// assertion `left == right` failed: byte strings differ at offset 4 (left 6 bytes, right 6 bytes)
///   left: b"ls -l\n"
///  right: b"ls -a\n"
/// ```
#[macro_export]
macro_rules! assert_bytes_eq {
    ($left:expr, $right:expr $(,)?) => {
        $crate::assert::bytes_eq_or_panic(
            ::core::convert::AsRef::<[u8]>::as_ref(&$left),
            ::core::convert::AsRef::<[u8]>::as_ref(&$right),
            ::core::option::Option::None,
        )
    };
    ($left:expr, $right:expr, $($message:tt)+) => {
        $crate::assert::bytes_eq_or_panic(
            ::core::convert::AsRef::<[u8]>::as_ref(&$left),
            ::core::convert::AsRef::<[u8]>::as_ref(&$right),
            ::core::option::Option::Some(::core::format_args!($($message)+)),
        )
    };
}

/// The body of [`assert_bytes_eq!`]; call the macro instead.
#[doc(hidden)]
#[track_caller]
pub fn bytes_eq_or_panic(left: &[u8], right: &[u8], message: Option<fmt::Arguments<'_>>) {
    if let Some(text) = bytes_difference(left, right, message) {
        panic!("{text}");
    }
}

/// The text [`assert_bytes_eq!`] panics with when `left` and `right` differ, `None` when they
/// are equal: for a double that must report a difference somewhere else as well (a replay
/// keeps it for the test's thread) before it panics.
///
/// ```
/// use process_transport_fakes::assert::bytes_difference;
///
/// assert_eq!(bytes_difference(b"ok", b"ok", None), None);
/// let text = bytes_difference(b"ls -l\n", b"ls -a\n", Some(format_args!("stdin"))).unwrap();
/// assert!(text.starts_with("assertion `left == right` failed: stdin: byte strings differ at offset 4"));
/// ```
pub fn bytes_difference(
    left: &[u8],
    right: &[u8],
    message: Option<fmt::Arguments<'_>>,
) -> Option<String> {
    if left == right {
        return None;
    }
    let offset = left
        .iter()
        .zip(right)
        .position(|(l, r)| l != r)
        .unwrap_or(left.len().min(right.len()));
    let context = message.map(|m| format!("{m}: ")).unwrap_or_default();
    Some(format!(
        "assertion `left == right` failed: {context}byte strings differ at offset {offset} \
         (left {} bytes, right {} bytes)\n  left: b\"{}\"\n right: b\"{}\"",
        left.len(),
        right.len(),
        left.escape_ascii(),
        right.escape_ascii(),
    ))
}

#[cfg(test)]
mod tests {
    fn panic_text(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("the assertion passed");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn equal_bytes_of_any_shape_pass() {
        assert_bytes_eq!(vec![b'o', b'k'], b"ok");
        assert_bytes_eq!("ok", b"ok".to_vec(), "with a message {}", 1);
        assert_bytes_eq!(&b""[..], "");
    }

    #[test]
    fn a_difference_shows_both_sides_as_literals_and_where_they_part() {
        let text = panic_text(|| assert_bytes_eq!(b"ls -l\n", b"ls -a\n"));
        assert_eq!(
            text,
            "assertion `left == right` failed: byte strings differ at offset 4 \
             (left 6 bytes, right 6 bytes)\n  left: b\"ls -l\\n\"\n right: b\"ls -a\\n\""
        );
    }

    #[test]
    fn a_prefix_differs_at_its_end_and_the_message_comes_first() {
        let text = panic_text(|| assert_bytes_eq!(b"ab", b"ab\xff", "fd {}", 3));
        assert_eq!(
            text,
            "assertion `left == right` failed: fd 3: byte strings differ at offset 2 \
             (left 2 bytes, right 3 bytes)\n  left: b\"ab\"\n right: b\"ab\\xff\""
        );
    }
}
