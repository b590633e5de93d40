//! What an operator asks of event delivery besides publishing: an event's
//! state, a function's newest events and dead letters, and a redrive. The
//! admin API calls these rather than reaching into the queue, so which
//! queue holds a function's events stays this crate's business.

use stratus_storage::{EventStatus, QueueError, QueueFuture};

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
}
