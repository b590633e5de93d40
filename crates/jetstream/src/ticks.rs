//! Cron ticks fired once across a cluster, without a leader: every node
//! runs every cron trigger, and a tick fires on the node that moves the
//! trigger's shared mark to it first, by a compare-and-set in a bucket.
//! The others see the mark there already and only note the tick.
//!
//! It wraps the node's own event queue, which still holds and delivers the
//! tick's event: [`SharedTicks`] changes only `fire` and `last_tick`, and
//! one thing of the queue's contract: a tick older than the shared mark
//! stores no event (the claims that moved the mark past it fired it on
//! some node), where a node on its own stores it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use stratus_storage::{
    Backlog, Delivery, EventQueue, EventStatus, NewEvent, QueueError, QueueFuture, Settled,
};

use crate::api::JetStreamError;
use crate::kv::Kv;

/// A node's event queue whose cron ticks are shared with the cluster.
pub struct SharedTicks {
    inner: Arc<dyn EventQueue>,
    marks: Kv,
}

impl std::fmt::Debug for SharedTicks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTicks")
            .field("marks", &self.marks.bucket())
            .finish_non_exhaustive()
    }
}

impl SharedTicks {
    pub fn new(inner: Arc<dyn EventQueue>, marks: Kv) -> Self {
        SharedTicks { inner, marks }
    }
}

/// The trigger's key in the bucket: trigger keys hold spaces and slashes.
fn mark_key(trigger: &str) -> String {
    format!(
        "t.{}",
        hex::encode(&Sha256::digest(trigger.as_bytes())[..12])
    )
}

fn encode(tick: SystemTime) -> Bytes {
    let nanos = tick
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Bytes::from(nanos.to_string())
}

fn decode(value: &[u8]) -> Option<SystemTime> {
    let nanos: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

fn unavailable(e: JetStreamError) -> QueueError {
    QueueError::backend(e)
}

/// Moves the shared mark of `trigger` to `tick` unless it is there or
/// later already; whether this call moved it.
async fn claim(marks: &Kv, trigger: &str, tick: SystemTime) -> Result<bool, JetStreamError> {
    let key = mark_key(trigger);
    loop {
        let current = marks.entry(&key).await?;
        if let Some(entry) = &current
            && decode(&entry.value).is_some_and(|marked| marked >= tick)
        {
            return Ok(false);
        }
        let written = match &current {
            Some(entry) => marks.update(&key, encode(tick), entry.revision).await,
            None => marks.create(&key, encode(tick)).await,
        };
        match written {
            Ok(_) => return Ok(true),
            // Another node wrote first: look again (it may have fired an
            // earlier tick only).
            Err(e) if e.is_wrong_last_sequence() => continue,
            Err(e) => return Err(e),
        }
    }
}

impl EventQueue for SharedTicks {
    fn enqueue(&self, event: NewEvent) -> QueueFuture<i64> {
        self.inner.enqueue(event)
    }

    /// Fires the tick here only if this node claims it; a node that crashes
    /// between its claim and storing the event loses that one tick (at most
    /// once across the cluster, rather than once per node).
    fn fire(
        &self,
        event: Option<NewEvent>,
        trigger: &str,
        tick: SystemTime,
    ) -> QueueFuture<Option<i64>> {
        let (inner, marks, trigger) = (self.inner.clone(), self.marks.clone(), trigger.to_owned());
        Box::pin(async move {
            let event = match event {
                Some(event) if claim(&marks, &trigger, tick).await.map_err(unavailable)? => {
                    Some(event)
                }
                // Fired by another node, or a mark only.
                _ => None,
            };
            inner.fire(event, &trigger, tick).await
        })
    }

    /// The later of this node's mark and the cluster's, so a node started
    /// after others fired does not catch up on their ticks.
    fn last_tick(&self, trigger: &str) -> QueueFuture<Option<SystemTime>> {
        let (inner, marks, trigger) = (self.inner.clone(), self.marks.clone(), trigger.to_owned());
        Box::pin(async move {
            let own = inner.last_tick(&trigger).await?;
            let shared = marks
                .entry(&mark_key(&trigger))
                .await
                .map_err(unavailable)?
                .and_then(|entry| decode(&entry.value));
            Ok(own.max(shared))
        })
    }

    fn bury(&self, event: NewEvent, attempts: u32, error: String) -> QueueFuture<i64> {
        self.inner.bury(event, attempts, error)
    }

    fn published(&self, queue: &str, id: &str) -> QueueFuture<Option<NewEvent>> {
        self.inner.published(queue, id)
    }

    fn lease(
        &self,
        queue: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> QueueFuture<Vec<Delivery>> {
        self.inner.lease(queue, max, lease)
    }

    fn succeed(&self, seq: i64, result: Option<(u16, Vec<u8>)>) -> QueueFuture<()> {
        self.inner.succeed(seq, result)
    }

    fn fail(&self, seq: i64, error: String) -> QueueFuture<Settled> {
        self.inner.fail(seq, error)
    }

    fn release(&self, seq: i64, delay: Duration) -> QueueFuture<()> {
        self.inner.release(seq, delay)
    }

    fn reject(&self, seq: i64, error: String) -> QueueFuture<()> {
        self.inner.reject(seq, error)
    }

    fn extend(&self, seq: i64, lease: Duration) -> QueueFuture<()> {
        self.inner.extend(seq, lease)
    }

    fn redrive(&self, queue: &str, id: Option<&str>) -> QueueFuture<usize> {
        self.inner.redrive(queue, id)
    }

    fn status(&self, id: &str) -> QueueFuture<Option<EventStatus>> {
        self.inner.status(id)
    }

    fn recent(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>> {
        self.inner.recent(queue, limit)
    }

    fn dead_letters(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>> {
        self.inner.dead_letters(queue, limit)
    }

    fn backlog(&self) -> QueueFuture<Vec<Backlog>> {
        self.inner.backlog()
    }
}

#[cfg(test)]
mod tests;
