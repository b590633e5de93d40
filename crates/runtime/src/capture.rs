//! Capturing a guest's stdout and stderr per invocation.
//!
//! Output is kept in memory up to a byte budget and the rest dropped (with a
//! flag), because a function printing in a loop must neither fill the node's
//! memory nor trap: a log is a diagnostic, not part of the answer.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which stream a chunk of output was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Stdout,
    Stderr,
}

#[derive(Debug, Default)]
struct Buffer {
    chunks: Vec<(OutputKind, Bytes)>,
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

    /// The captured chunks in write order, and whether any were dropped.
    pub fn take(&self) -> (Vec<(OutputKind, Bytes)>, bool) {
        let mut buffer = self.lock();
        (std::mem::take(&mut buffer.chunks), buffer.truncated)
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
            buffer
                .chunks
                .push((stream, Bytes::copy_from_slice(&bytes[..kept])));
        }
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
    fn output_beyond_capacity_is_dropped_and_flagged() {
        let output = CapturedOutput::new(8);
        output.append(OutputKind::Stdout, b"hello ");
        output.append(OutputKind::Stderr, b"world");
        let (chunks, truncated) = output.take();
        assert!(truncated);
        assert_eq!(
            chunks[0],
            (OutputKind::Stdout, Bytes::from_static(b"hello "))
        );
        assert_eq!(chunks[1], (OutputKind::Stderr, Bytes::from_static(b"wo")));
    }
}
