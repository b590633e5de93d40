//! Storing events (enqueue, fire, bury), the indexes that de-duplicate
//! them and find them by id, tick marks, and redrive.
//!
//! An event is stored in order: its message first (with a `Nats-Msg-Id`,
//! so a publisher that retries stores it once), then its record, then the
//! indexes. Whoever finds a message without a record (a lease, when the
//! publisher died in between) writes the record from the message, so no
//! order of crashes loses an acknowledged event.

use std::time::SystemTime;

use async_nats::HeaderMap;
use bytes::Bytes;
use stratus_storage::{EventState, NewEvent};

use super::record::{
    Body, Record, dedup_hash, dedup_key, digest, id_key, nanos, record_key, seq_of_key, tick_key,
    token,
};
use super::{Inner, SEQ_HEADER, consumer, decode_tick, encode_tick};
use crate::api::JetStreamError;

impl Inner {
    /// Stores an event, due at once, or dead (`dead`: the attempts made and
    /// the error); answers its seq, or the seq of the event already stored
    /// with its `(queue, origin, id)`.
    pub(super) async fn store(
        &self,
        event: NewEvent,
        msg_id: String,
        dead: Option<(u32, String)>,
    ) -> Result<i64, JetStreamError> {
        let dedup = dedup_key(&dedup_hash(
            &event.queue,
            event.origin.as_deref(),
            &event.id,
        ));
        if let Some(seq) = self.stored(&dedup).await? {
            return Ok(seq);
        }
        let body = Body::new(event, SystemTime::now());
        let queue_token = token(&body.queue);
        let subject = match dead {
            Some(_) => self.dead_subject(&queue_token),
            None => self.queue_subject(&queue_token),
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        let mut ack = self.js.publish(&subject, headers, body.encode()).await?;
        if ack.duplicate && !self.holds(&subject, ack.seq).await? {
            // The duplicate window remembers an event whose message and
            // record are gone (settled and pruned): this is a new event.
            let fresh = format!("{msg_id}.{}", nanos(SystemTime::now()));
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", fresh.as_str());
            ack = self.js.publish(&subject, headers, body.encode()).await?;
        }
        let seq = ack.seq as i64;
        let state = if dead.is_some() {
            EventState::Dead
        } else {
            EventState::Queued
        };
        let mut record = Record::new(seq, &body, state, ack.seq);
        if let Some((attempts, error)) = dead {
            record.attempts = attempts;
            record.last_error = Some(error);
        }
        match self.status.create(&record.key(), record.encode()).await {
            // Exists: a lease wrote it from the message, or this is the
            // PubAck of a duplicate publish.
            Err(e) if !e.is_wrong_last_sequence() => return Err(e),
            _ => {}
        }
        self.link(&record, &dedup).await
    }

    /// Whether the stream still holds the message `seq` on `subject`.
    async fn holds(&self, subject: &str, seq: u64) -> Result<bool, JetStreamError> {
        Ok(self
            .js
            .next_message(&self.stream, subject, seq)
            .await?
            .is_some_and(|message| message.sequence == seq))
    }

    /// The seq of the event stored under a de-duplication key, if any.
    async fn stored(&self, dedup: &str) -> Result<Option<i64>, JetStreamError> {
        Ok(self
            .status
            .entry(dedup)
            .await?
            .and_then(|entry| seq_of_key(&String::from_utf8_lossy(&entry.value))))
    }

    /// Writes the indexes of a stored record; answers the seq that holds
    /// its `(queue, origin, id)`: its own, or (when another publish of the
    /// same id won) the other's, in which case this one is removed.
    pub(super) async fn link(&self, record: &Record, dedup: &str) -> Result<i64, JetStreamError> {
        let key = record.key();
        match self.status.create(dedup, Bytes::from(key.clone())).await {
            Ok(_) => {}
            Err(e) if e.is_wrong_last_sequence() => {
                if let Some(other) = self.stored(dedup).await?
                    && other != record.seq
                {
                    self.status.purge(&key).await?;
                    consumer::delete(&self.js, &self.stream, record.msg_seq).await?;
                    return Ok(other);
                }
            }
            Err(e) => return Err(e),
        }
        self.point_id(record).await?;
        Ok(record.seq)
    }

    /// Points the id's index at this record unless it points at a newer one.
    async fn point_id(&self, record: &Record) -> Result<(), JetStreamError> {
        let key = id_key(&record.id);
        loop {
            let current = self.status.entry(&key).await?;
            let written = match &current {
                Some(entry)
                    if seq_of_key(&String::from_utf8_lossy(&entry.value))
                        .is_some_and(|seq| seq >= record.seq) =>
                {
                    return Ok(());
                }
                Some(entry) => {
                    self.status
                        .update(&key, Bytes::from(record.key()), entry.revision)
                        .await
                }
                None => self.status.create(&key, Bytes::from(record.key())).await,
            };
            match written {
                Err(e) if e.is_wrong_last_sequence() => continue,
                other => return other.map(|_| ()),
            }
        }
    }

    /// Moves a trigger's tick mark to `tick`, never back.
    pub(super) async fn mark(&self, trigger: &str, tick: SystemTime) -> Result<(), JetStreamError> {
        let key = tick_key(trigger);
        loop {
            let current = self.status.entry(&key).await?;
            let written = match &current {
                Some(entry) if decode_tick(&entry.value).is_some_and(|marked| marked >= tick) => {
                    return Ok(());
                }
                Some(entry) => {
                    self.status
                        .update(&key, encode_tick(tick), entry.revision)
                        .await
                }
                None => self.status.create(&key, encode_tick(tick)).await,
            };
            match written {
                Err(e) if e.is_wrong_last_sequence() => continue,
                other => return other.map(|_| ()),
            }
        }
    }

    pub(super) async fn last_tick(
        &self,
        trigger: &str,
    ) -> Result<Option<SystemTime>, JetStreamError> {
        Ok(self
            .status
            .entry(&tick_key(trigger))
            .await?
            .and_then(|entry| decode_tick(&entry.value)))
    }

    /// Puts a queue's dead events (or the one with `id`) back: each body is
    /// published again to the queue's subject (its `Nats-Msg-Id` names the
    /// dead copy, so a retried redrive publishes it once), then the record
    /// is switched to it with fresh attempts and the dead copy deleted.
    pub(super) async fn redrive(
        &self,
        queue: &str,
        id: Option<&str>,
    ) -> Result<usize, JetStreamError> {
        let queue_token = token(queue);
        let mut count = 0;
        for record in self.records(queue).await? {
            if record.state() != EventState::Dead || id.is_some_and(|id| id != record.id) {
                continue;
            }
            let dead_subject = self.dead_subject(&queue_token);
            let body = match self
                .js
                .next_message(&self.stream, &dead_subject, record.msg_seq)
                .await?
            {
                Some(message) if message.sequence == record.msg_seq => message.payload,
                _ => {
                    tracing::warn!(
                        seq = record.seq,
                        queue,
                        "a dead letter's body is gone: not redriven"
                    );
                    continue;
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert(SEQ_HEADER, record.seq.to_string().as_str());
            let msg_id = format!("redrive-{}-{}", digest(&[&record.key()]), record.msg_seq);
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            let ack = self
                .js
                .publish(&self.queue_subject(&queue_token), headers, body)
                .await?;
            if self
                .adopt(&record_key(&queue_token, record.seq), ack.seq)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Switches a dead event's record to its redriven message `msg_seq`
    /// (queued, fresh attempts) and deletes the dead copy; whether the
    /// record now holds that message. A lease that meets the redriven
    /// message first does the same, so the redrive completes whoever comes
    /// first.
    pub(super) async fn adopt(&self, key: &str, msg_seq: u64) -> Result<bool, JetStreamError> {
        loop {
            let Some(entry) = self.status.entry(key).await? else {
                return Ok(false);
            };
            let Some(mut record) = Record::decode(&entry.value) else {
                return Ok(false);
            };
            if record.msg_seq == msg_seq {
                return Ok(true);
            }
            if record.state() != EventState::Dead || record.msg_seq > msg_seq {
                return Ok(false);
            }
            let dead_copy = record.msg_seq;
            let now = nanos(SystemTime::now());
            record.set(EventState::Queued, now);
            record.attempts = 0;
            record.next_at = now;
            record.msg_seq = msg_seq;
            match self
                .status
                .update(key, record.encode(), entry.revision)
                .await
            {
                Ok(_) => {
                    if let Err(e) = consumer::delete(&self.js, &self.stream, dead_copy).await {
                        tracing::warn!(error = %e, seq = record.seq, "left a redriven dead letter's copy behind");
                    }
                    return Ok(true);
                }
                Err(e) if e.is_wrong_last_sequence() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
