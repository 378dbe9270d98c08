//! Predicates on byte payloads, for `write`, `write_to_child` and `write_sequence`.

use std::fmt;

use predicates::reflection::PredicateReflection;
use predicates::Predicate;

/// A predicate on a byte payload; build one with [`bytes_eq`], [`bytes_prefix`],
/// [`bytes_contains`] or [`utf8_text`]. Its `Display` shows the bytes as text, so a failed
/// expectation reads well.
///
/// ```
/// use process_transport_mocks::{bytes_contains, bytes_eq, bytes_prefix, utf8_text};
/// use predicates::Predicate;
///
/// assert!(bytes_eq(b"ls\n").eval(b"ls\n"));
/// assert!(bytes_prefix("GET ").eval(b"GET / HTTP/1.1"));
/// assert!(bytes_contains("\r\n\r\n").eval(b"a\r\n\r\nb"));
/// assert!(utf8_text("héllo").eval("héllo".as_bytes()));
/// assert!(!utf8_text("x").eval(&[0xff]));
/// assert_eq!(bytes_prefix("GET ").to_string(), r#"bytes starting with b"GET ""#);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BytesPredicate {
    kind: Kind,
    expected: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Contains,
    Utf8Text,
}

/// Matches a payload equal to `expected`.
pub fn bytes_eq(expected: impl AsRef<[u8]>) -> BytesPredicate {
    BytesPredicate::new(Kind::Exact, expected.as_ref())
}

/// Matches a payload that starts with `prefix`.
pub fn bytes_prefix(prefix: impl AsRef<[u8]>) -> BytesPredicate {
    BytesPredicate::new(Kind::Prefix, prefix.as_ref())
}

/// Matches a payload that holds `needle` anywhere (an empty needle matches every payload).
pub fn bytes_contains(needle: impl AsRef<[u8]>) -> BytesPredicate {
    BytesPredicate::new(Kind::Contains, needle.as_ref())
}

/// Matches a payload that is valid UTF-8 and equal to `text`.
pub fn utf8_text(text: &str) -> BytesPredicate {
    BytesPredicate::new(Kind::Utf8Text, text.as_bytes())
}

impl BytesPredicate {
    fn new(kind: Kind, expected: &[u8]) -> Self {
        BytesPredicate {
            kind,
            expected: expected.to_vec(),
        }
    }

    /// The same predicate applied to the pieces of a `write_sequence`, joined.
    ///
    /// ```
    /// use process_transport_mocks::bytes_eq;
    /// use predicates::Predicate;
    ///
    /// let joined = bytes_eq("abc").joined();
    /// assert!(joined.eval(&[&b"a"[..], b"bc"][..]));
    /// ```
    pub fn joined(self) -> JoinedBytesPredicate {
        JoinedBytesPredicate(self)
    }
}

impl Predicate<[u8]> for BytesPredicate {
    fn eval(&self, data: &[u8]) -> bool {
        let expected = self.expected.as_slice();
        match self.kind {
            Kind::Exact => data == expected,
            Kind::Prefix => data.starts_with(expected),
            Kind::Contains => {
                expected.is_empty()
                    || data
                        .windows(expected.len())
                        .any(|window| window == expected)
            }
            Kind::Utf8Text => std::str::from_utf8(data).is_ok() && data == expected,
        }
    }
}

impl PredicateReflection for BytesPredicate {}

impl fmt::Display for BytesPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bytes shown as a byte-string literal, so that non-UTF-8 bytes show exactly.
        let bytes = self.expected.escape_ascii();
        match self.kind {
            Kind::Exact => write!(f, "bytes == b\"{bytes}\""),
            Kind::Prefix => write!(f, "bytes starting with b\"{bytes}\""),
            Kind::Contains => write!(f, "bytes containing b\"{bytes}\""),
            Kind::Utf8Text => write!(
                f,
                "UTF-8 text == {:?}",
                String::from_utf8_lossy(&self.expected)
            ),
        }
    }
}

impl fmt::Debug for BytesPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A [`BytesPredicate`] on the joined pieces of a `write_sequence`; see
/// [`BytesPredicate::joined`].
#[derive(Clone, PartialEq, Eq)]
pub struct JoinedBytesPredicate(BytesPredicate);

impl<'a> Predicate<[&'a [u8]]> for JoinedBytesPredicate {
    fn eval(&self, pieces: &[&'a [u8]]) -> bool {
        self.0.eval(&pieces.concat())
    }
}

impl PredicateReflection for JoinedBytesPredicate {}

impl fmt::Display for JoinedBytesPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "joined {}", self.0)
    }
}

impl fmt::Debug for JoinedBytesPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_matches_what_it_names() {
        let data = b"GET /index\r\n".as_slice();
        assert!(bytes_eq(data).eval(data));
        assert!(!bytes_eq(b"GET").eval(data));
        assert!(bytes_prefix(b"GET ").eval(data));
        assert!(!bytes_prefix(b"/index").eval(data));
        assert!(bytes_contains(b"/index").eval(data));
        assert!(bytes_contains(b"").eval(b""));
        assert!(!bytes_contains(b"POST").eval(data));
        assert!(utf8_text("GET /index\r\n").eval(data));
        assert!(!utf8_text("\u{fffd}").eval(b"\xff"));
    }

    #[test]
    fn joined_matches_the_pieces_as_one() {
        let pieces: [&[u8]; 3] = [b"he", b"ll", b"o\n"];
        assert!(bytes_eq(b"hello\n").joined().eval(&pieces));
        assert!(!bytes_eq(b"he").joined().eval(&pieces));
        assert!(bytes_contains(b"llo").joined().eval(&pieces));
    }

    #[test]
    fn descriptions_show_the_bytes_exactly() {
        assert_eq!(bytes_eq(b"ok\n").to_string(), r#"bytes == b"ok\n""#);
        assert_eq!(
            bytes_prefix(b"\xff\x00").to_string(),
            r#"bytes starting with b"\xff\x00""#
        );
        assert_eq!(
            bytes_contains(b"\"q\"").to_string(),
            r#"bytes containing b"\"q\"""#
        );
        assert_eq!(utf8_text("héllo").to_string(), r#"UTF-8 text == "héllo""#);
        assert_eq!(
            format!("{:?}", bytes_eq(b"a").joined()),
            r#"joined bytes == b"a""#
        );
    }
}
