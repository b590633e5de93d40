//! A request body that must keep arriving: a client that pauses too long,
//! or takes too long in all, is cut off instead of holding its connection
//! (and, for a chunked body the gateway reads before admission, a task and
//! a buffer) forever.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::conn::ConnectionLimits;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the client sent no part of the request body for {0:?} (--read-timeout)")]
    Idle(Duration),
    #[error("the request body took longer than {0:?} to arrive (--body-timeout)")]
    TooSlow(Duration),
    #[error(transparent)]
    Connection(#[from] hyper::Error),
}

impl ReadError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ReadError::Idle(_) | ReadError::TooSlow(_))
    }
}

impl From<ReadError> for stratus_runtime::BodyError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Connection(e) => e.into(),
            timeout => stratus_runtime::BodyError::InternalError(Some(timeout.to_string())),
        }
    }
}

/// `B` with an idle timeout between its frames and a deadline for all of
/// them. The timer is made only when the body first has to wait, so a body
/// that is already complete (a GET, a small POST) costs nothing.
pub struct TimedBody<B> {
    body: B,
    idle: Duration,
    total: Duration,
    /// When the whole body must have arrived.
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    pub fn new(body: B, limits: ConnectionLimits) -> Self {
        TimedBody {
            body,
            idle: limits.read_timeout,
            total: limits.body_timeout,
            deadline: Instant::now() + limits.body_timeout,
            timer: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                // Progress: the next wait gets a whole idle period again.
                if let Some(timer) = &mut this.timer {
                    let next = (Instant::now() + this.idle).min(this.deadline);
                    timer.as_mut().reset(next);
                }
                Poll::Ready(frame.map(|f| f.map_err(ReadError::from)))
            }
            Poll::Pending => {
                let (idle, deadline) = (this.idle, this.deadline);
                let timer = this.timer.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(
                        (Instant::now() + idle).min(deadline),
                    ))
                });
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let error = if Instant::now() >= this.deadline {
                    ReadError::TooSlow(this.total)
                } else {
                    ReadError::Idle(this.idle)
                };
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
