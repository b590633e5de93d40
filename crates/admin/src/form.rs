//! The deploy form's framing, checked as the body arrives.
//!
//! axum's `Multipart` (multer) looks for the first boundary, and for the end
//! of each part's headers, by searching its whole buffer again every time a
//! chunk arrives; a form without a boundary, or with headers that never end,
//! sent in small chunks thus costs time quadratic in its size (a 64 MiB
//! upload in 64-byte chunks: hours of CPU). [`FormGuard`] follows the same
//! framing in one pass over the body, refuses a preamble or a part's headers
//! longer than [`MAX_FRAMING`] (all the parser would search again), and hands
//! the parser chunks of at least [`MIN_CHUNK`] bytes, so that what the parser
//! searches again per chunk is bounded by what the chunk brings.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use memchr::memmem;

/// The most bytes a form may have before its first boundary, and between a
/// boundary and the blank line that ends its part's headers. A client sends
/// a few hundred (a `Content-Disposition` with the file name, a
/// `Content-Type`).
pub(crate) const MAX_FRAMING: usize = 16 * 1024;

/// The parser is handed at least this much at a time (less only at the end).
const MIN_CHUNK: usize = 64 * 1024;

/// A form whose framing is longer than [`MAX_FRAMING`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FramingError(String);

/// Where in the form the bytes seen so far end, as multer would parse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first `--<boundary>`.
    Preamble,
    /// Just after a `--<boundary>`: `--` ends the form, else padding.
    AfterBoundary,
    /// Spaces and tabs after a boundary, then its CRLF.
    Padding,
    /// The CRLF that ends a boundary line.
    LineEnd,
    /// A part's headers, up to the blank line.
    Headers,
    /// A part's data, up to `\r\n--<boundary>`.
    Data,
    /// The form has ended, or the parser has refused it: nothing to follow.
    Done,
}

/// The framing scanner: one pass, with a carry of fewer bytes than the
/// longest pattern between chunks.
#[derive(Debug)]
struct Framing {
    state: State,
    /// `--<boundary>`.
    delimiter: Vec<u8>,
    /// `\r\n--<boundary>`.
    data_end: Vec<u8>,
    /// The tail of the bytes seen that a pattern may continue from.
    carry: Vec<u8>,
    /// The stream offset of `carry`'s first byte.
    offset: usize,
    /// The stream offset where the preamble, or a boundary's line and
    /// headers, began.
    since: usize,
}

impl Framing {
    fn new(boundary: &str) -> Self {
        Framing {
            state: State::Preamble,
            delimiter: format!("--{boundary}").into_bytes(),
            data_end: format!("\r\n--{boundary}").into_bytes(),
            carry: Vec::new(),
            offset: 0,
            since: 0,
        }
    }

    /// Follows the framing over `chunk`, the next bytes of the body.
    fn scan(&mut self, chunk: &[u8]) -> Result<(), FramingError> {
        if self.state == State::Done {
            return Ok(());
        }
        let mut hay = std::mem::take(&mut self.carry);
        hay.extend_from_slice(chunk);
        let mut i = 0;
        // Bytes at `hay[keep..]` are carried into the next chunk.
        let keep = loop {
            match self.state {
                State::Preamble | State::Headers | State::Data => {
                    let pattern: &[u8] = match self.state {
                        State::Preamble => &self.delimiter,
                        State::Headers => b"\r\n\r\n",
                        _ => &self.data_end,
                    };
                    if let Some(k) = memmem::find(&hay[i..], pattern) {
                        i += k + pattern.len();
                        if self.state != State::Data && self.offset + i - self.since > MAX_FRAMING {
                            return Err(self.too_long());
                        }
                        self.state = match self.state {
                            State::Headers => State::Data,
                            _ => State::AfterBoundary,
                        };
                        self.since = self.offset + i;
                        continue;
                    }
                    if self.state != State::Data
                        && self.offset + hay.len() - self.since > MAX_FRAMING
                    {
                        return Err(self.too_long());
                    }
                    break hay.len().saturating_sub(pattern.len() - 1).max(i);
                }
                State::AfterBoundary => match hay.get(i..i + 2) {
                    None => break i,
                    Some(b"--") => self.state = State::Done,
                    Some(_) => self.state = State::Padding,
                },
                State::Padding => match hay[i..].iter().position(|b| *b != b' ' && *b != b'\t') {
                    Some(k) => {
                        i += k;
                        self.state = State::LineEnd;
                    }
                    None => {
                        if self.offset + hay.len() - self.since > MAX_FRAMING {
                            return Err(self.too_long());
                        }
                        break hay.len();
                    }
                },
                State::LineEnd => match hay.get(i..i + 2) {
                    None => break i,
                    Some(b"\r\n") => {
                        i += 2;
                        self.state = State::Headers;
                    }
                    // The parser refuses the form here.
                    Some(_) => self.state = State::Done,
                },
                State::Done => break hay.len(),
            }
        };
        self.offset += keep;
        hay.drain(..keep);
        self.carry = hay;
        Ok(())
    }

    fn too_long(&self) -> FramingError {
        FramingError(if self.state == State::Preamble {
            format!(
                "the form has no boundary line in its first {MAX_FRAMING} bytes; it must start with \"--\" and the boundary of its Content-Type"
            )
        } else {
            format!(
                "a part's headers run past {MAX_FRAMING} bytes without the blank line that ends them"
            )
        })
    }
}

/// The body of a deploy form, checked by [`Framing`] and handed on in
/// chunks of at least [`MIN_CHUNK`] bytes.
pub(crate) struct FormGuard {
    inner: BodyDataStream,
    framing: Framing,
    held: BytesMut,
    ended: bool,
    end_deferred: bool,
}

impl FormGuard {
    /// Wraps `body`, a form with `boundary`, as a body of its own.
    pub(crate) fn wrap(body: Body, boundary: &str) -> Body {
        Body::from_stream(FormGuard {
            inner: body.into_data_stream(),
            framing: Framing::new(boundary),
            held: BytesMut::new(),
            ended: false,
            end_deferred: false,
        })
    }
}

impl Stream for FormGuard {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        while !self.ended && self.held.len() < MIN_CHUNK {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = self.framing.scan(&chunk) {
                        self.ended = true;
                        self.held.clear();
                        return Poll::Ready(Some(Err(axum::Error::new(e))));
                    }
                    self.held.extend_from_slice(&chunk);
                }
                Poll::Ready(Some(Err(e))) => {
                    self.ended = true;
                    self.held.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => self.ended = true,
                // What is held waits for more: the inner body wakes us.
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.held.is_empty() {
            // multer reports an incomplete form when the first boundary and
            // the end of the body reach it in one poll (it checks for the
            // end before searching what just came), so the end waits for a
            // poll of its own.
            if !self.end_deferred {
                self.end_deferred = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return Poll::Ready(None);
        }
        let chunk = self.held.split().freeze();
        Poll::Ready(Some(Ok(chunk)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Scans `body` in chunks of every size from 1 to 9 bytes.
    fn scan_all(boundary: &str, body: &[u8]) -> Vec<Result<State, String>> {
        (1..10)
            .map(|size| {
                let mut framing = Framing::new(boundary);
                for chunk in body.chunks(size) {
                    framing.scan(chunk).map_err(|e| e.to_string())?;
                }
                Ok(framing.state)
            })
            .collect()
    }

    #[test]
    fn a_form_is_followed_to_its_end_whatever_the_chunks() {
        let form = b"--B\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n\
            a--B\r--B\n\r\n-B\r\n--B \t\r\nX: y\r\n\r\n\r\n\r\n--B--\r\nepilogue";
        for state in scan_all("B", form) {
            assert_eq!(state, Ok(State::Done));
        }
        let open = b"--B\r\nX: y\r\n\r\ndata\r\n--";
        for state in scan_all("B", open) {
            assert_eq!(state, Ok(State::Data));
        }
    }

    #[test]
    fn long_framing_is_refused_and_long_data_is_not() {
        let preamble = vec![b'-'; MAX_FRAMING + 1];
        for state in scan_all("B", &preamble) {
            assert!(state.unwrap_err().contains("no boundary line"));
        }
        let mut headers = b"preamble--B  \r\n".to_vec();
        headers.extend(std::iter::repeat_n(b'x', MAX_FRAMING));
        for state in scan_all("B", &headers) {
            assert!(state.unwrap_err().contains("part's headers run past"));
        }
        let padding = [&b"--B"[..], &vec![b' '; MAX_FRAMING + 1]].concat();
        for state in scan_all("B", &padding) {
            assert!(state.unwrap_err().contains("part's headers run past"));
        }
        let mut data = b"--B\r\n\r\n\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'\r', 4 * MAX_FRAMING));
        for state in scan_all("B", &data) {
            assert_eq!(state, Ok(State::Data));
        }
    }

    #[test]
    fn a_boundary_line_the_parser_refuses_ends_the_checks() {
        let mut form = b"--B\r\nX: y\r\n\r\nx\r\n--Bjunk".to_vec();
        form.extend(std::iter::repeat_n(b'x', 2 * MAX_FRAMING));
        for state in scan_all("B", &form) {
            assert_eq!(state, Ok(State::Done));
        }
    }
}
