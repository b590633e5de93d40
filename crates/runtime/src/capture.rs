//! Capturing a guest's stdout and stderr per invocation.
//!
//! Output is kept in memory up to a byte budget and the rest dropped (with a
//! flag), because a function printing in a loop must neither fill the node's
//! memory nor trap: a log is a diagnostic, not part of the answer.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which stream a chunk of output was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Stdout,
    Stderr,
}

/// One line of output, stamped with when its first byte was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: OutputKind,
    pub at: SystemTime,
    pub text: String,
}

#[derive(Debug, Default)]
struct Buffer {
    chunks: Vec<(OutputKind, SystemTime, Bytes)>,
    len: usize,
    truncated: bool,
}

/// The output of one invocation, shared by its two stream handles.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Buffer>>,
    capacity: usize,
}

impl CapturedOutput {
    /// A capture that keeps at most `capacity` bytes across both streams.
    pub fn new(capacity: usize) -> Self {
        CapturedOutput {
            inner: Arc::default(),
            capacity,
        }
    }

    pub(crate) fn stdout(&self) -> Writer {
        Writer {
            output: self.clone(),
            stream: OutputKind::Stdout,
        }
    }

    pub(crate) fn stderr(&self) -> Writer {
        Writer {
            output: self.clone(),
            stream: OutputKind::Stderr,
        }
    }

    /// Everything written since the last take, as lines (a line split over
    /// several writes is joined; a last line without a newline still
    /// counts), ending with a marker line when output was dropped. Resets
    /// the budget: an instance that serves again starts a fresh log.
    pub fn take_lines(&self) -> Vec<OutputLine> {
        let (chunks, truncated) = {
            let mut buffer = self.lock();
            buffer.len = 0;
            (
                std::mem::take(&mut buffer.chunks),
                std::mem::take(&mut buffer.truncated),
            )
        };
        let mut lines = Vec::new();
        // Per stream: the unfinished line and when it started.
        let mut partial: [Option<(SystemTime, Vec<u8>)>; 2] = [None, None];
        for (stream, at, bytes) in chunks {
            let slot = &mut partial[stream as usize];
            for piece in bytes.split_inclusive(|&b| b == b'\n') {
                let (started, mut text) = slot.take().unwrap_or((at, Vec::new()));
                text.extend_from_slice(piece);
                if text.last() == Some(&b'\n') {
                    text.pop();
                    if text.last() == Some(&b'\r') {
                        text.pop();
                    }
                    lines.push(line(stream, started, &text));
                } else {
                    *slot = Some((started, text));
                }
            }
        }
        for (stream, rest) in [OutputKind::Stdout, OutputKind::Stderr]
            .into_iter()
            .zip(partial)
        {
            if let Some((at, text)) = rest {
                lines.push(line(stream, at, &text));
            }
        }
        lines.sort_by_key(|l| l.at);
        if truncated {
            lines.push(OutputLine {
                stream: OutputKind::Stderr,
                at: SystemTime::now(),
                text: format!(
                    "[stratus] output truncated: an invocation may write {} KiB",
                    self.capacity / 1024
                ),
            });
        }
        lines
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means a writer panicked mid-append; the
        // buffer is still a valid (possibly shorter) log.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, stream: OutputKind, bytes: &[u8]) {
        let mut buffer = self.lock();
        let room = self.capacity.saturating_sub(buffer.len);
        let kept = bytes.len().min(room);
        if kept < bytes.len() {
            buffer.truncated = true;
        }
        if kept > 0 {
            buffer.len += kept;
            buffer.chunks.push((
                stream,
                SystemTime::now(),
                Bytes::copy_from_slice(&bytes[..kept]),
            ));
        }
    }
}

fn line(stream: OutputKind, at: SystemTime, text: &[u8]) -> OutputLine {
    OutputLine {
        stream,
        at,
        text: String::from_utf8_lossy(text).into_owned(),
    }
}

/// One stream handle given to the guest. Writes always succeed.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    output: CapturedOutput,
    stream: OutputKind,
}

impl IsTerminal for Writer {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Writer {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.output.append(self.stream, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.append(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_beyond_capacity_is_dropped_and_marked() {
        let output = CapturedOutput::new(8);
        output.append(OutputKind::Stdout, b"hello\n");
        output.append(OutputKind::Stderr, b"world");
        let lines = output.take_lines();
        let texts: Vec<_> = lines.iter().map(|l| (l.stream, l.text.as_str())).collect();
        assert_eq!(texts[0], (OutputKind::Stdout, "hello"));
        assert_eq!(texts[1], (OutputKind::Stderr, "wo"));
        assert!(texts[2].1.contains("output truncated"), "{texts:?}");
        // The budget starts again for the next invocation.
        output.append(OutputKind::Stdout, b"again\n");
        assert_eq!(output.take_lines().len(), 1);
    }

    #[test]
    fn lines_split_over_writes_are_joined_per_stream() {
        let output = CapturedOutput::new(1024);
        output.append(OutputKind::Stdout, b"par");
        output.append(OutputKind::Stderr, b"err line\r\n");
        output.append(OutputKind::Stdout, b"tial\nnext\nlast");
        let lines = output.take_lines();
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["partial", "err line", "next", "last"]);
    }
}
