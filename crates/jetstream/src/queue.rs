//! The event queue on JetStream, shared by every node of a cluster: async
//! invocations, retries, dead letters and redrive.
//!
//! Two things are stored per event. Its body is a message of the stream
//! `<name>_events`, on `<name>.q.<queue>` while it is to be delivered and
//! on `<name>.dead.<queue>` while it is a dead letter (no consumer reads
//! those). Its status is a record in the bucket `<name>_event_status`,
//! keyed `e.<queue>.<seq>`: the one truth about the event, changed only by
//! compare-and-set. Pull consumers decide when a node *looks* at a message
//! again; the record decides what it is (due, leased elsewhere, settled),
//! so two consumers with overlapping filters, or two nodes on one
//! consumer, never both lease an event.
//!
//! `seq` is the stream sequence of the event's first message; a redriven
//! event keeps it (its new message carries it in `Stratus-Seq`), as the
//! SQLite queue keeps its row. Settled messages are deleted from the
//! stream, so it holds only what is still to be delivered or redriven.

mod consumer;
mod lease;
mod prune;
mod record;
mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::json;
use stratus_storage::{
    Backlog, Delivery, EventQueue, EventState, EventStatus, NewEvent, QueueError, QueueFuture,
    RetryPolicy, Settled,
};

use crate::api::{JetStream, JetStreamError};
use crate::kv::{Kv, KvSettings, is_valid_key};
use record::{Record, id_key, token};

/// How long a publish with the same `Nats-Msg-Id` is dropped as a
/// duplicate: covers a publisher that retries after losing the PubAck.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The header of a redriven event's message: the event's `seq`, which is
/// no longer the message's own stream sequence.
pub(crate) const SEQ_HEADER: &str = "Stratus-Seq";

/// An event queue on a JetStream stream and bucket, shared by the nodes
/// that open it with the same name.
#[derive(Clone)]
pub struct JetStreamQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JetStreamQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamQueue")
            .field("stream", &self.inner.stream)
            .finish_non_exhaustive()
    }
}

struct Inner {
    js: JetStream,
    name: String,
    stream: String,
    status: Kv,
    policy: RetryPolicy,
    /// Events this process leased and has not settled, by seq.
    held: Mutex<HashMap<i64, lease::Held>>,
    /// Consumers known to exist.
    consumers: Mutex<HashSet<String>>,
}

async fn open(
    js: JetStream,
    name: &str,
    replicas: usize,
    policy: RetryPolicy,
) -> Result<JetStreamQueue, JetStreamError> {
    if !is_valid_key(name) || name.contains('.') {
        return Err(JetStreamError::Protocol {
            subject: name.to_owned(),
            reason: format!("{name:?} is not a name a stream and its subjects can have"),
        });
    }
    let stream = format!("{name}_events");
    js.ensure_stream(json!({
        "name": stream,
        "subjects": [format!("{name}.q.>"), format!("{name}.dead.>")],
        "retention": "limits",
        "storage": "file",
        "num_replicas": replicas.max(1),
        "allow_direct": true,
        "duplicate_window": DUPLICATE_WINDOW.as_nanos() as u64,
    }))
    .await?;
    let status = Kv::open(
        js.clone(),
        &format!("{name}_event_status"),
        &KvSettings {
            replicas,
            history: 1,
            max_age: None,
        },
    )
    .await?;
    Ok(JetStreamQueue {
        inner: Arc::new(Inner {
            js,
            name: name.to_owned(),
            stream,
            status,
            policy,
            held: Mutex::new(HashMap::new()),
            consumers: Mutex::new(HashSet::new()),
        }),
    })
}

impl JetStreamQueue {
    /// Opens (creating if missing) the queue `name`: the stream
    /// `<name>_events` and the bucket `<name>_event_status`, with
    /// `replicas` copies each. `policy` is the backoff between attempts.
    pub async fn open(
        js: JetStream,
        name: &str,
        replicas: usize,
        policy: RetryPolicy,
    ) -> Result<JetStreamQueue, JetStreamError> {
        open(js, name, replicas, policy).await
    }

    /// The stream holding the events' bodies.
    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    /// The bucket holding their status.
    pub fn status_bucket(&self) -> &str {
        self.inner.status.bucket()
    }

    /// Deletes settled events (succeeded or dead) last changed before
    /// `before`, as the SQLite queue prunes: their records, the indexes
    /// that point at them (a pruned id is a new event again) and a dead
    /// event's body. Answers how many. One node of a cluster runs it at a
    /// time (under a lease), but it is safe against any other writer: each
    /// removal is a compare-and-set, so an event redriven meanwhile stays.
    pub async fn prune(&self, before: SystemTime) -> Result<usize, JetStreamError> {
        self.inner.prune(before).await
    }
}

impl Inner {
    fn queue_subject(&self, queue_token: &str) -> String {
        format!("{}.q.{queue_token}", self.name)
    }

    fn dead_subject(&self, queue_token: &str) -> String {
        format!("{}.dead.{queue_token}", self.name)
    }

    /// Each queue's messages, waiting (on its subject: settled ones are
    /// deleted) and dead (moved to its dead subject), from the stream's
    /// per-subject counts; the oldest waiting one's time from the first
    /// message on its subject.
    async fn backlog(&self) -> Result<Vec<Backlog>, JetStreamError> {
        let mut queues: BTreeMap<String, Backlog> = BTreeMap::new();
        for (kind, prefix) in [(Held::Waiting, "q"), (Held::Dead, "dead")] {
            let filter = format!("{}.{prefix}.>", self.name);
            let counts = self.js.subject_counts(&self.stream, &filter).await?;
            for (subject, n) in counts {
                let Some(queue) = subject
                    .rsplit('.')
                    .next()
                    .and_then(|t| hex::decode(t).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                else {
                    continue;
                };
                let entry = queues.entry(queue.clone()).or_insert(Backlog {
                    queue,
                    waiting: 0,
                    oldest: None,
                    dead: 0,
                });
                match kind {
                    Held::Dead => entry.dead = n,
                    Held::Waiting => {
                        entry.waiting = n;
                        entry.oldest = self
                            .js
                            .next_message(&self.stream, &subject, 0)
                            .await?
                            .and_then(|m| record::Body::decode(&m.payload))
                            .map(|body| record::time(body.time));
                    }
                }
            }
        }
        Ok(queues.into_values().collect())
    }

    /// Every record of `queue`, by seq.
    async fn records(&self, queue: &str) -> Result<Vec<Record>, JetStreamError> {
        let mut records: Vec<Record> = self
            .status
            .entries(&format!("e.{}", token(queue)))
            .await?
            .into_iter()
            .filter_map(|entry| Record::decode(&entry.value))
            .collect();
        records.sort_by_key(|r| r.seq);
        Ok(records)
    }

    /// The newest event `id` of `queue`, read from its message: on the
    /// queue's subject while it waits, on the dead subject once dead; a
    /// handled event's message is gone.
    async fn published(&self, queue: &str, id: &str) -> Result<Option<NewEvent>, JetStreamError> {
        let records = self.records(queue).await?;
        let Some(record) = records.into_iter().rev().find(|r| r.id == id) else {
            return Ok(None);
        };
        let queue_token = token(queue);
        let subject = match record.state() {
            EventState::Dead => self.dead_subject(&queue_token),
            _ => self.queue_subject(&queue_token),
        };
        Ok(self
            .js
            .next_message(&self.stream, &subject, record.msg_seq)
            .await?
            .filter(|message| message.sequence == record.msg_seq)
            .and_then(|message| record::Body::decode(&message.payload))
            .map(record::Body::into_event))
    }

    async fn status_of(&self, id: &str) -> Result<Option<EventStatus>, JetStreamError> {
        let Some(pointer) = self.status.entry(&id_key(id)).await? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&pointer.value).into_owned();
        Ok(self
            .status
            .entry(&key)
            .await?
            .and_then(|entry| Record::decode(&entry.value))
            .map(|r| r.status()))
    }
}

/// Where a queue's messages are counted from.
enum Held {
    Waiting,
    Dead,
}

fn backend(e: JetStreamError) -> QueueError {
    QueueError::backend(e)
}

impl EventQueue for JetStreamQueue {
    fn enqueue(&self, event: NewEvent) -> QueueFuture<i64> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let msg_id = record::dedup_hash(&event.queue, event.origin.as_deref(), &event.id);
            inner.store(event, msg_id, None).await.map_err(backend)
        })
    }

    /// Stores the event (its `Nats-Msg-Id` named after the trigger and
    /// tick), then moves the tick mark. Not one atomic write: a crash in
    /// between leaves the mark behind, and the tick fired again is the
    /// same event (de-duplicated by its id), so nothing fires twice.
    fn fire(
        &self,
        event: Option<NewEvent>,
        trigger: &str,
        tick: SystemTime,
    ) -> QueueFuture<Option<i64>> {
        let (inner, trigger) = (self.inner.clone(), trigger.to_owned());
        Box::pin(async move {
            let seq = match event {
                Some(event) => {
                    let msg_id = format!(
                        "tick-{}-{}",
                        record::digest(&[&trigger]),
                        record::nanos(tick)
                    );
                    Some(inner.store(event, msg_id, None).await.map_err(backend)?)
                }
                None => None,
            };
            inner.mark(&trigger, tick).await.map_err(backend)?;
            Ok(seq)
        })
    }

    fn last_tick(&self, trigger: &str) -> QueueFuture<Option<SystemTime>> {
        let (inner, trigger) = (self.inner.clone(), trigger.to_owned());
        Box::pin(async move { inner.last_tick(&trigger).await.map_err(backend) })
    }

    fn bury(&self, event: NewEvent, attempts: u32, error: String) -> QueueFuture<i64> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let msg_id = record::dedup_hash(&event.queue, event.origin.as_deref(), &event.id);
            inner
                .store(event, msg_id, Some((attempts, error)))
                .await
                .map_err(backend)
        })
    }

    fn lease(
        &self,
        queue: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> QueueFuture<Vec<Delivery>> {
        let (inner, queue) = (self.inner.clone(), queue.map(str::to_owned));
        Box::pin(async move { inner.lease(queue, max, lease).await.map_err(backend) })
    }

    fn succeed(&self, seq: i64, result: Option<(u16, Vec<u8>)>) -> QueueFuture<()> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.succeed(seq, result).await })
    }

    fn fail(&self, seq: i64, error: String) -> QueueFuture<Settled> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.fail(seq, error).await })
    }

    fn release(&self, seq: i64, delay: Duration) -> QueueFuture<()> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.release(seq, delay).await })
    }

    fn reject(&self, seq: i64, error: String) -> QueueFuture<()> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.reject(seq, error).await })
    }

    fn extend(&self, seq: i64, lease: Duration) -> QueueFuture<()> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.extend(seq, lease).await })
    }

    fn redrive(&self, queue: &str, id: Option<&str>) -> QueueFuture<usize> {
        let (inner, queue, id) = (self.inner.clone(), queue.to_owned(), id.map(str::to_owned));
        Box::pin(async move { inner.redrive(&queue, id.as_deref()).await.map_err(backend) })
    }

    fn published(&self, queue: &str, id: &str) -> QueueFuture<Option<NewEvent>> {
        let (inner, queue, id) = (self.inner.clone(), queue.to_owned(), id.to_owned());
        Box::pin(async move { inner.published(&queue, &id).await.map_err(backend) })
    }

    fn status(&self, id: &str) -> QueueFuture<Option<EventStatus>> {
        let (inner, id) = (self.inner.clone(), id.to_owned());
        Box::pin(async move { inner.status_of(&id).await.map_err(backend) })
    }

    fn recent(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>> {
        let (inner, queue) = (self.inner.clone(), queue.to_owned());
        Box::pin(async move {
            let records = inner.records(&queue).await.map_err(backend)?;
            Ok(records
                .iter()
                .rev()
                .take(limit)
                .map(Record::status)
                .collect())
        })
    }

    fn backlog(&self) -> QueueFuture<Vec<Backlog>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.backlog().await.map_err(backend) })
    }

    fn dead_letters(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>> {
        let (inner, queue) = (self.inner.clone(), queue.to_owned());
        Box::pin(async move {
            let records = inner.records(&queue).await.map_err(backend)?;
            Ok(records
                .iter()
                .filter(|r| r.state() == EventState::Dead)
                .take(limit)
                .map(Record::status)
                .collect())
        })
    }
}

/// A tick mark's value: ns since the epoch.
fn encode_tick(tick: SystemTime) -> Bytes {
    Bytes::from(record::nanos(tick).to_string())
}

fn decode_tick(value: &[u8]) -> Option<SystemTime> {
    let nanos: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(record::time(nanos))
}

#[cfg(test)]
mod tests;
