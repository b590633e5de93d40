//! What an operator asks of event delivery besides publishing: an event's
//! state, a function's newest events and dead letters, and a redrive. The
//! admin API calls these rather than reaching into the queue, so which
//! queue holds a function's events stays this crate's business.

use stratus_invoke::new_invocation_id;
use stratus_storage::{EventStatus, NewEvent, QueueError, QueueFuture};

use crate::dispatcher::{Dispatcher, async_queue};

impl Dispatcher {
    /// The event `id`, queued or kept, in any queue.
    pub fn event(&self, id: &str) -> QueueFuture<Option<EventStatus>> {
        self.queue.status(id)
    }

    /// The newest `limit` events of a function, in any state, newest first.
    pub fn recent_events(
        &self,
        app: &str,
        function: &str,
        limit: usize,
    ) -> QueueFuture<Vec<EventStatus>> {
        self.queue.recent(&async_queue(app, function), limit)
    }

    /// A function's dead letters, oldest first, at most `limit`.
    pub fn dead_letters(
        &self,
        app: &str,
        function: &str,
        limit: usize,
    ) -> QueueFuture<Vec<EventStatus>> {
        self.queue.dead_letters(&async_queue(app, function), limit)
    }

    /// Puts a function's dead letters (or only the one with `id`) back in
    /// its queue with fresh attempts, and looks for due events at once.
    /// Returns how many went back.
    pub async fn redrive(
        &self,
        app: &str,
        function: &str,
        id: Option<&str>,
    ) -> Result<usize, QueueError> {
        let redriven = self.queue.redrive(&async_queue(app, function), id).await?;
        self.wake();
        Ok(redriven)
    }

    /// Publishes a copy of a function's event `id` to the function again,
    /// under a new id with fresh attempts (an operator trying a fixed
    /// function on an event it handled, or one redrive would not retry
    /// as it is). The copy is the operator's: it starts a trace of its
    /// own rather than continuing the original publisher's. Answers the
    /// copy's id, or `None` when the queue no longer holds the event's
    /// body.
    pub async fn replay(
        &self,
        app: &str,
        function: &str,
        id: &str,
    ) -> Result<Option<String>, QueueError> {
        let queue = async_queue(app, function);
        let Some(original) = self.queue.published(&queue, id).await? else {
            return Ok(None);
        };
        let copy = NewEvent {
            id: new_invocation_id(),
            traceparent: None,
            tracestate: None,
            ..original
        };
        let new_id = copy.id.clone();
        self.queue.enqueue(copy).await?;
        self.wake();
        Ok(Some(new_id))
    }
}
