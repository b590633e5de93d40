//! Leasing and settling. A consumer hands out a message; the node leases
//! it only by a compare-and-set on its record (queued and due, or running
//! with its lease run out), then `-NAK`s it with the lease as the delay so
//! the consumer offers it again exactly when the lease ends. Everything
//! else a consumer hands out is put off until it can matter: a lease held
//! elsewhere until it ends, a backoff until it is over; settled events
//! are acknowledged and deleted.
//!
//! Settling needs the delivery this process leased (held in memory): a seq
//! leased elsewhere, or settled already, is `NotFound`, and so is one whose
//! lease another node took over (its record moved on).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::join_all;
use stratus_storage::{Delivery, EventState, QueueError, Settled};

use super::consumer::{self, PullError, Pulled};
use super::record::{
    Body, RESULT_MAX, Record, dedup_hash, dedup_key, digest, nanos, record_key, time, token,
};
use super::{Inner, SEQ_HEADER, backend};
use crate::api::JetStreamError;

/// How long a node puts off a message it lost a race for.
const CONTENDED: Duration = Duration::from_secs(1);
/// Pulls one lease makes at most (each after the last found something).
const ROUNDS: usize = 32;
/// Messages asked for per pull: each is looked at concurrently.
const BATCH: usize = 256;
/// A lease not settled this long after it ran out is forgotten.
const FORGET: Duration = Duration::from_secs(600);

/// A delivery this process leased.
pub(super) struct Held {
    key: String,
    /// The record as the lease wrote it, and that write's revision.
    record: Record,
    revision: u64,
    /// The delivery's reply subject.
    ack: String,
    /// The message's payload, copied to the dead subject if it dies.
    body: Bytes,
}

fn after(now: u64, delay: Duration) -> u64 {
    now.saturating_add(delay.as_nanos() as u64)
}

fn until(now: u64, at: u64) -> Duration {
    Duration::from_nanos(at.saturating_sub(now))
}

impl Inner {
    pub(super) async fn lease(
        self: &Arc<Self>,
        queue: Option<String>,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, JetStreamError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.forget_stale();
        let (name, filter) = match &queue {
            None => (format!("{}_all", self.name), format!("{}.q.>", self.name)),
            Some(queue) => (
                format!("{}_q_{}", self.name, digest(&[queue])),
                self.queue_subject(&token(queue)),
            ),
        };
        self.ensure_consumer(&name, &filter).await?;
        let mut leased = Vec::new();
        let mut failed = None;
        let mut remade = false;
        for _ in 0..ROUNDS {
            let batch = (max - leased.len()).min(BATCH);
            let pulled = match consumer::pull(&self.js, &self.stream, &name, batch).await {
                Ok(pulled) => pulled,
                Err(PullError::NoConsumer) if remade => {
                    return Err(JetStreamError::Unavailable {
                        subject: format!("$JS.API.CONSUMER.MSG.NEXT.{}.{name}", self.stream),
                        reason: "no answer to a pull, even from a consumer made again".into(),
                    });
                }
                Err(PullError::NoConsumer) => {
                    remade = true;
                    self.consumers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&name);
                    self.ensure_consumer(&name, &filter).await?;
                    continue;
                }
                Err(PullError::Failed(e)) => return Err(e),
            };
            if pulled.is_empty() {
                break;
            }
            for taken in join_all(pulled.into_iter().map(|p| self.take(p, lease))).await {
                match taken {
                    Ok(Some(delivery)) => leased.push(delivery),
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
            }
            if leased.len() >= max || failed.is_some() {
                break;
            }
        }
        match failed {
            // What was leased is handed out; the rest comes again later.
            Some(e) if leased.is_empty() => Err(e),
            Some(e) => {
                tracing::warn!(error = %e, "leased part of a batch");
                Ok(leased)
            }
            None => Ok(leased),
        }
    }

    async fn ensure_consumer(&self, name: &str, filter: &str) -> Result<(), JetStreamError> {
        if self
            .consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
        {
            return Ok(());
        }
        consumer::ensure(&self.js, &self.stream, name, filter).await?;
        self.consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
        Ok(())
    }

    fn forget_stale(&self) {
        let horizon = nanos(SystemTime::now()).saturating_sub(FORGET.as_nanos() as u64);
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, held| held.record.next_at > horizon);
    }

    /// Leases one delivered message if its record lets it; `None` when it
    /// is not this node's to deliver now.
    async fn take(
        &self,
        pulled: Pulled,
        lease: Duration,
    ) -> Result<Option<Delivery>, JetStreamError> {
        let Some(body) = Body::decode(&pulled.message.payload) else {
            tracing::warn!(
                seq = pulled.sequence,
                "dropped a queue message that is no event"
            );
            self.drop_message(&pulled).await;
            return Ok(None);
        };
        let redriven = pulled
            .header(SEQ_HEADER)
            .and_then(|s| s.parse::<i64>().ok());
        let seq = redriven.unwrap_or(pulled.sequence as i64);
        let key = record_key(&token(&body.queue), seq);
        for _ in 0..8 {
            let now = nanos(SystemTime::now());
            let Some(entry) = self.status.entry(&key).await? else {
                if redriven.is_some() {
                    // A redriven copy of a record that is gone.
                    self.drop_message(&pulled).await;
                    return Ok(None);
                }
                // Published, but its publisher has not written the record
                // (yet, or ever): write it from the message.
                let record = Record::new(seq, &body, EventState::Queued, pulled.sequence);
                match self.status.create(&key, record.encode()).await {
                    Ok(_) => {
                        let dedup =
                            dedup_key(&dedup_hash(&body.queue, body.origin.as_deref(), &body.id));
                        if self.link(&record, &dedup).await? != seq {
                            return Ok(None);
                        }
                    }
                    Err(e) if e.is_wrong_last_sequence() => {}
                    Err(e) => return Err(e),
                }
                continue;
            };
            let Some(mut record) = Record::decode(&entry.value) else {
                tracing::warn!(%key, "dropped a queue message whose record is unreadable");
                self.drop_message(&pulled).await;
                return Ok(None);
            };
            if record.msg_seq != pulled.sequence {
                if record.state() == EventState::Dead
                    && redriven.is_some()
                    && pulled.sequence > record.msg_seq
                {
                    // Redriven, and the redrive has not switched the record
                    // yet: finish it, then lease as usual.
                    self.adopt(&key, pulled.sequence).await?;
                    continue;
                }
                // A stale copy (its event moved on).
                self.drop_message(&pulled).await;
                return Ok(None);
            }
            let wait = match record.state() {
                EventState::Succeeded | EventState::Dead => {
                    self.drop_message(&pulled).await;
                    return Ok(None);
                }
                // Not yet due, or leased and the lease still runs.
                EventState::Queued | EventState::Running => until(now, record.next_at),
            };
            if !wait.is_zero() {
                self.put_off(&pulled, wait).await;
                return Ok(None);
            }
            record.attempts += 1;
            record.set(EventState::Running, now);
            record.next_at = after(now, lease);
            match self
                .status
                .update(&key, record.encode(), entry.revision)
                .await
            {
                Ok(revision) => {
                    self.put_off(&pulled, lease).await;
                    let delivery = body.delivery(seq, record.attempts, record.max_attempts);
                    self.hold(
                        seq,
                        Held {
                            key,
                            record,
                            revision,
                            ack: pulled.ack.clone(),
                            body: pulled.message.payload.clone(),
                        },
                    );
                    return Ok(Some(delivery));
                }
                Err(e) if e.is_wrong_last_sequence() => continue,
                Err(e) => return Err(e),
            }
        }
        self.put_off(&pulled, CONTENDED).await;
        Ok(None)
    }

    /// Has the consumer offer the message again after `delay`.
    async fn put_off(&self, pulled: &Pulled, delay: Duration) {
        if let Err(e) = consumer::nak(&self.js, &pulled.ack, delay).await {
            // The consumer offers it again after its ack wait instead.
            tracing::debug!(error = %e, seq = pulled.sequence, "could not put a queue message off");
        }
    }

    /// Acknowledges a message nobody is to deliver and removes it.
    async fn drop_message(&self, pulled: &Pulled) {
        self.finish(&pulled.ack, pulled.sequence).await;
    }

    /// Acknowledges a delivery and deletes its message: best effort, since
    /// the record is settled already and a message met again is dropped.
    async fn finish(&self, ack: &str, msg_seq: u64) {
        if let Err(e) = consumer::ack(&self.js, ack).await {
            tracing::debug!(error = %e, msg_seq, "could not acknowledge a queue message");
        }
        if let Err(e) = consumer::delete(&self.js, &self.stream, msg_seq).await {
            tracing::warn!(error = %e, msg_seq, "left a settled queue message in its stream");
        }
    }

    /// Keeps a lease this process holds, to settle or extend later.
    fn hold(&self, seq: i64, held: Held) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, held);
    }

    fn held(&self, seq: i64) -> Result<Held, QueueError> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq)
            .ok_or(QueueError::NotFound(seq))
    }

    /// Writes the settled record over the lease's; `NotFound` when the
    /// lease was lost meanwhile. On an error the lease stays held.
    async fn settle(&self, seq: i64, held: Held, record: &Record) -> Result<Held, QueueError> {
        match self
            .status
            .update(&held.key, record.encode(), held.revision)
            .await
        {
            Ok(_) => Ok(held),
            Err(e) if e.is_wrong_last_sequence() => Err(QueueError::NotFound(seq)),
            Err(e) => {
                self.hold(seq, held);
                Err(backend(e))
            }
        }
    }

    pub(super) async fn succeed(
        &self,
        seq: i64,
        result: Option<(u16, Vec<u8>)>,
    ) -> Result<(), QueueError> {
        let held = self.held(seq)?;
        let now = nanos(SystemTime::now());
        let mut record = held.record.clone();
        record.set(EventState::Succeeded, now);
        record.next_at = now;
        if let Some((status, mut body)) = result {
            body.truncate(RESULT_MAX);
            record.result_status = Some(status);
            record.result_body = Some(body);
        }
        let held = self.settle(seq, held, &record).await?;
        self.finish(&held.ack, held.record.msg_seq).await;
        Ok(())
    }

    pub(super) async fn fail(&self, seq: i64, error: String) -> Result<Settled, QueueError> {
        let held = self.held(seq)?;
        let mut record = held.record.clone();
        record.last_error = Some(error);
        if record.attempts >= record.max_attempts {
            self.kill(seq, held, record).await?;
            return Ok(Settled::Dead);
        }
        let now = nanos(SystemTime::now());
        let delay = self.policy.delay(record.attempts);
        record.set(EventState::Queued, now);
        record.next_at = after(now, delay);
        let held = self.settle(seq, held, &record).await?;
        self.requeue(&held, delay).await;
        Ok(Settled::Retry(time(record.next_at)))
    }

    pub(super) async fn release(&self, seq: i64, delay: Duration) -> Result<(), QueueError> {
        let held = self.held(seq)?;
        let now = nanos(SystemTime::now());
        let mut record = held.record.clone();
        record.attempts = record.attempts.saturating_sub(1);
        record.set(EventState::Queued, now);
        record.next_at = after(now, delay);
        let held = self.settle(seq, held, &record).await?;
        self.requeue(&held, delay).await;
        Ok(())
    }

    pub(super) async fn reject(&self, seq: i64, error: String) -> Result<(), QueueError> {
        let held = self.held(seq)?;
        let mut record = held.record.clone();
        record.attempts = record.attempts.saturating_sub(1);
        record.last_error = Some(error);
        self.kill(seq, held, record).await
    }

    /// Moves the lease's end to `lease` from now: the record first (what
    /// decides), then the consumer's offer (a `-NAK` with the new delay);
    /// `NotFound` when another node took the lease over meanwhile.
    pub(super) async fn extend(&self, seq: i64, lease: Duration) -> Result<(), QueueError> {
        let held = self.held(seq)?;
        let mut record = held.record.clone();
        record.next_at = after(nanos(SystemTime::now()), lease);
        match self
            .status
            .update(&held.key, record.encode(), held.revision)
            .await
        {
            Ok(revision) => {
                let held = Held {
                    record,
                    revision,
                    ..held
                };
                self.requeue(&held, lease).await;
                self.hold(seq, held);
                Ok(())
            }
            Err(e) if e.is_wrong_last_sequence() => Err(QueueError::NotFound(seq)),
            Err(e) => {
                self.hold(seq, held);
                Err(backend(e))
            }
        }
    }

    /// Has the consumer that leased the event offer it again after
    /// `delay`. Should that fail, another consumer or the lease's own
    /// `-NAK` offers it when the lease would have ended, a little late.
    async fn requeue(&self, held: &Held, delay: Duration) {
        if let Err(e) = consumer::nak(&self.js, &held.ack, delay).await {
            tracing::debug!(error = %e, seq = held.record.seq, "could not hand a queue message back");
        }
    }

    /// Settles a leased event as dead: its body copied to the dead subject
    /// first (kept for redrive), then the record, then the original
    /// acknowledged and deleted.
    async fn kill(&self, seq: i64, held: Held, mut record: Record) -> Result<(), QueueError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        let subject = self.dead_subject(&token(&record.queue));
        let copy = match self.js.publish(&subject, headers, held.body.clone()).await {
            Ok(ack) => ack.seq,
            Err(e) => {
                self.hold(seq, held);
                return Err(backend(e));
            }
        };
        let now = nanos(SystemTime::now());
        record.set(EventState::Dead, now);
        record.next_at = now;
        record.msg_seq = copy;
        let held = match self.settle(seq, held, &record).await {
            Ok(held) => held,
            Err(e) => {
                let _ = consumer::delete(&self.js, &self.stream, copy).await;
                return Err(e);
            }
        };
        self.finish(&held.ack, held.record.msg_seq).await;
        Ok(())
    }
}
