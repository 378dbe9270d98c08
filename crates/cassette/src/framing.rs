//! Framing: a length header (`Content-Length: N`, as the Language Server Protocol and HTTP
//! frame a message) kept true when a placeholder changes the length of the body it frames.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::volatile::{Bindings, Segment};

/// How the messages of a stream are framed, so that a length header stays true when a
/// placeholder or a restored value changes the length of the body it frames.
///
/// ```
/// use process_transport_cassette::Redactions;
///
/// let redactions = Redactions::none()
///     .pattern(r#""processId": *[0-9]+"#, "<PID>")?
///     .framed_by_content_length();
/// assert_eq!(
///     redactions.redact(b"Content-Length: 19\r\n\r\n{\"processId\": 4711}"),
///     b"Content-Length: 7\r\n\r\n{<PID>}"
/// );
/// # Ok::<(), process_transport_cassette::PatternError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// A `Content-Length: N` header (any case), then the header block's end (`\r\n\r\n`),
    /// then a body of N bytes.
    ContentLength,
}

/// One framed message: where its header's digits are, what they say, and where the body
/// starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) digits: Range<usize>,
    pub(crate) declared: usize,
    pub(crate) body_start: usize,
}

const HEADER: &[u8] = b"content-length:";

/// Where the header `stream[at..]` starts with puts its digits: the digits' range and their
/// value, when `stream[at..]` starts with a header.
pub(crate) fn header_at(stream: &[u8], at: usize) -> Option<(Range<usize>, usize)> {
    let rest = stream.get(at..)?;
    if rest.len() < HEADER.len() || !rest[..HEADER.len()].eq_ignore_ascii_case(HEADER) {
        return None;
    }
    let mut start = at + HEADER.len();
    while stream
        .get(start)
        .is_some_and(|byte| *byte == b' ' || *byte == b'\t')
    {
        start += 1;
    }
    let end = start
        + stream[start..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
    let declared = std::str::from_utf8(&stream[start..end])
        .ok()?
        .parse()
        .ok()?;
    Some((start..end, declared))
}

/// The framed messages of `stream`, in order.
pub(crate) fn frames(stream: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let Some((digits, declared)) = header_at(stream, at) else {
            at += 1;
            continue;
        };
        let Some(end) = memchr::memmem::find(&stream[digits.end..], b"\r\n\r\n") else {
            break;
        };
        let body_start = digits.end + end + 4;
        at = body_start
            .saturating_add(declared)
            .min(stream.len())
            .max(digits.end);
        frames.push(Frame {
            digits,
            declared,
            body_start,
        });
    }
    frames
}

/// The header rewrites that keep each frame of `stream` true once `spans` (start, length,
/// replacement; in order, none overlapping) are made: for each frame whose body the spans
/// change the length of, its digits with the new length.
pub(crate) fn rewritten_lengths(
    stream: &[u8],
    spans: &[(usize, usize, Vec<u8>)],
) -> Vec<(usize, usize, Vec<u8>)> {
    frames(stream)
        .into_iter()
        .filter_map(|frame| {
            let overlaps_digits = spans.iter().any(|(start, len, _)| {
                *start < frame.digits.end && start + len > frame.digits.start
            });
            if overlaps_digits {
                return None;
            }
            let body = frame.body_start..frame.body_start.saturating_add(frame.declared);
            let delta: isize = spans
                .iter()
                .filter(|(start, len, _)| *start >= body.start && start + len <= body.end)
                .map(|(_, len, to)| to.len() as isize - *len as isize)
                .sum();
            let length = frame.declared.checked_add_signed(delta)?;
            (delta != 0).then(|| {
                (
                    frame.digits.start,
                    frame.digits.len(),
                    length.to_string().into_bytes(),
                )
            })
        })
        .collect()
}

/// The length of the body a [`Segment::Length`] declares, once the placeholders in it are
/// put in: `after` is every segment that follows the header in its stream, in order (the
/// rest of the header block, then the body, then what comes after).
pub(crate) fn framed_length<'a>(
    declared: usize,
    after: impl IntoIterator<Item = &'a Segment>,
    bindings: &Bindings,
) -> usize {
    // The header block's end, then `declared` stored bytes of body.
    let mut seen_end = Vec::new();
    let mut in_body = false;
    let mut left = declared;
    let mut length = declared as isize;
    for segment in after {
        if in_body && left == 0 {
            break;
        }
        match segment {
            Segment::Literal(bytes) => {
                let mut bytes = &bytes[..];
                if !in_body {
                    // Find "\r\n\r\n", which may span segments.
                    let mut found = None;
                    for (index, byte) in bytes.iter().enumerate() {
                        seen_end.push(*byte);
                        if seen_end.ends_with(b"\r\n\r\n") {
                            found = Some(index + 1);
                            break;
                        }
                    }
                    let Some(body_at) = found else { continue };
                    in_body = true;
                    bytes = &bytes[body_at..];
                }
                left = left.saturating_sub(bytes.len());
            }
            Segment::Slot(name) if in_body => {
                let stored = name.len();
                if stored > left {
                    break;
                }
                left -= stored;
                if let Some(value) = bindings.get(name) {
                    length += value.len() as isize - stored as isize;
                }
            }
            Segment::Slot(_) => seen_end.clear(),
            Segment::Length(digits, _) if !in_body => {
                // Another header of the same block: it holds no body bytes.
                seen_end.clear();
                let _ = digits;
            }
            Segment::Length(digits, _) => left = left.saturating_sub(digits.len()),
        }
    }
    usize::try_from(length).unwrap_or(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_one_after_another_in_any_case() {
        let stream = b"Content-Length: 2\r\n\r\n{}content-length:3\r\nX-A: b\r\n\r\nabc";
        let found = frames(stream);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].declared, 2);
        assert_eq!(&stream[found[0].digits.clone()], b"2");
        assert_eq!(found[1].declared, 3);
        assert_eq!(&stream[found[1].body_start..], b"abc");
    }

    #[test]
    fn a_body_that_grows_by_its_placeholder_gets_the_length_it_has_now() {
        let segments = [
            Segment::Literal(b"\r\n\r\n{".to_vec()),
            Segment::Slot("<PID>".into()),
            Segment::Literal(b"}next".to_vec()),
        ];
        let bindings = Bindings::from([("<PID>".to_owned(), b"\"processId\": 7".to_vec())]);
        assert_eq!(framed_length(7, &segments, &bindings), 16);
        assert_eq!(framed_length(7, &segments, &Bindings::new()), 7);
    }
}
