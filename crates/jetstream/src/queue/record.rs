//! What the queue writes: an event's body (the stream message a deliverer
//! reads) and its status record (the bucket entry every node's lease and
//! settle compare-and-set on), with the names both are stored under.
//!
//! Queue names (`fn:app/func`) hold characters no subject token may, so a
//! queue is its name in hex wherever it is part of a subject or a key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stratus_storage::{Delivery, EventState, EventStatus, NewEvent};

/// A handler's answer kept with a succeeded event, at most this long, so
/// that a record always fits a NATS message.
pub(crate) const RESULT_MAX: usize = 64 * 1024;

/// A queue's name as a subject token and key token.
pub(crate) fn token(queue: &str) -> String {
    hex::encode(queue.as_bytes())
}

/// A short, token-safe digest of `parts`, each length-prefixed so that
/// `("a", "bc")` and `("ab", "c")` differ.
pub(crate) fn digest(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

/// The de-duplication key of `(queue, origin, id)`: it also names the
/// event's first publish (`Nats-Msg-Id`).
pub(crate) fn dedup_hash(queue: &str, origin: Option<&str>, id: &str) -> String {
    let origin = origin.map_or("-".to_owned(), |o| format!("+{o}"));
    digest(&[queue, &origin, id])
}

/// The status record's key.
pub(crate) fn record_key(queue_token: &str, seq: i64) -> String {
    format!("e.{queue_token}.{seq}")
}

/// The index from `(queue, origin, id)` to the record's key.
pub(crate) fn dedup_key(hash: &str) -> String {
    format!("d.{hash}")
}

/// The index from an id alone to the newest record's key (`status(id)`).
pub(crate) fn id_key(id: &str) -> String {
    format!("n.{}", digest(&[id]))
}

/// A cron trigger's tick mark.
pub(crate) fn tick_key(trigger: &str) -> String {
    format!("t.{}", digest(&[trigger]))
}

/// The seq at the end of a record key.
pub(crate) fn seq_of_key(key: &str) -> Option<i64> {
    key.rsplit('.').next()?.parse().ok()
}

pub(crate) fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

pub(crate) fn time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

mod base64_bytes {
    use super::*;

    pub(crate) fn serialize<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// An event as its stream message carries it: everything a delivery shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Body {
    pub(crate) queue: String,
    pub(crate) origin: Option<String>,
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) kind: String,
    pub(crate) subject: Option<String>,
    pub(crate) path: String,
    pub(crate) content_type: Option<String>,
    #[serde(with = "base64_bytes")]
    pub(crate) data: Vec<u8>,
    /// The publisher's W3C trace context. Left out when there is none, so
    /// such a body is written as before it existed; a body written before
    /// reads as having none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tracestate: Option<String>,
    pub(crate) max_attempts: u32,
    /// When the event was accepted (ns since the epoch): `ce-time`.
    pub(crate) time: u64,
}

impl Body {
    pub(crate) fn new(event: NewEvent, now: SystemTime) -> Body {
        Body {
            queue: event.queue,
            origin: event.origin,
            id: event.id,
            source: event.source,
            kind: event.kind,
            subject: event.subject,
            path: event.path,
            content_type: event.content_type,
            data: event.data,
            traceparent: event.traceparent,
            tracestate: event.tracestate,
            max_attempts: event.max_attempts.max(1),
            time: nanos(now),
        }
    }

    /// The event as it was published.
    pub(crate) fn into_event(self) -> NewEvent {
        NewEvent {
            queue: self.queue,
            origin: self.origin,
            id: self.id,
            source: self.source,
            kind: self.kind,
            subject: self.subject,
            path: self.path,
            content_type: self.content_type,
            data: self.data,
            traceparent: self.traceparent,
            tracestate: self.tracestate,
            max_attempts: self.max_attempts,
        }
    }

    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    pub(crate) fn decode(payload: &[u8]) -> Option<Body> {
        serde_json::from_slice(payload).ok()
    }

    pub(crate) fn delivery(&self, seq: i64, attempt: u32, max_attempts: u32) -> Delivery {
        Delivery {
            seq,
            queue: self.queue.clone(),
            id: self.id.clone(),
            source: self.source.clone(),
            kind: self.kind.clone(),
            subject: self.subject.clone(),
            path: self.path.clone(),
            content_type: self.content_type.clone(),
            data: self.data.clone(),
            traceparent: self.traceparent.clone(),
            tracestate: self.tracestate.clone(),
            time: time(self.time),
            attempt,
            max_attempts,
        }
    }
}

/// An event's status: the one truth about where it is, whatever the
/// consumers deliver. Every change is a compare-and-set on its revision,
/// so two nodes never both lease it, and a settle after the lease was
/// lost to another node changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) seq: i64,
    pub(crate) queue: String,
    pub(crate) origin: Option<String>,
    pub(crate) id: String,
    pub(crate) state: String,
    pub(crate) attempts: u32,
    pub(crate) max_attempts: u32,
    pub(crate) created: u64,
    pub(crate) updated: u64,
    /// When a queued event is due; while running, when its lease ends.
    pub(crate) next_at: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) result_status: Option<u16>,
    #[serde(default, with = "opt_base64")]
    pub(crate) result_body: Option<Vec<u8>>,
    /// The stream sequence of the message that holds the body now: on the
    /// queue subject while queued or running, on the dead subject while
    /// dead. Messages of the event at other sequences are stale copies.
    pub(crate) msg_seq: u64,
}

mod opt_base64 {
    use super::*;

    pub(crate) fn serialize<S: serde::Serializer>(
        data: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match data {
            Some(data) => s.serialize_some(&STANDARD.encode(data)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => STANDARD
                .decode(text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

impl Record {
    /// A new event's record, in `state`, its body at `msg_seq`.
    pub(crate) fn new(seq: i64, body: &Body, state: EventState, msg_seq: u64) -> Record {
        Record {
            seq,
            queue: body.queue.clone(),
            origin: body.origin.clone(),
            id: body.id.clone(),
            state: state.as_str().to_owned(),
            attempts: 0,
            max_attempts: body.max_attempts.max(1),
            created: body.time,
            updated: body.time,
            next_at: body.time,
            last_error: None,
            result_status: None,
            result_body: None,
            msg_seq,
        }
    }

    pub(crate) fn state(&self) -> EventState {
        EventState::parse(&self.state)
    }

    pub(crate) fn set(&mut self, state: EventState, now: u64) {
        self.state = state.as_str().to_owned();
        self.updated = now;
    }

    pub(crate) fn key(&self) -> String {
        record_key(&token(&self.queue), self.seq)
    }

    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    pub(crate) fn decode(value: &[u8]) -> Option<Record> {
        serde_json::from_slice(value).ok()
    }

    pub(crate) fn status(&self) -> EventStatus {
        EventStatus {
            seq: self.seq,
            queue: self.queue.clone(),
            origin: self.origin.clone(),
            id: self.id.clone(),
            state: self.state(),
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: time(self.created),
            updated_at: time(self.updated),
            next_at: time(self.next_at),
            last_error: self.last_error.clone(),
            result_status: self.result_status,
            result_body: self.result_body.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_tokens() {
        assert!(crate::kv::is_valid_key(&record_key(
            &token("fn:app/f x.y"),
            7
        )));
        assert_eq!(seq_of_key(&record_key(&token("a.b"), 42)), Some(42));
        assert_ne!(digest(&["a", "bc"]), digest(&["ab", "c"]));
    }

    #[test]
    fn a_body_keeps_its_trace_context_and_an_older_one_has_none() {
        let event = NewEvent {
            queue: "fn:a/f".into(),
            origin: None,
            id: "e1".into(),
            source: "/s".into(),
            kind: "t".into(),
            subject: None,
            path: "/".into(),
            content_type: None,
            data: b"hi".to_vec(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("rojo=1".into()),
            max_attempts: 3,
        };
        let body = Body::decode(&Body::new(event.clone(), SystemTime::now()).encode()).unwrap();
        let delivery = body.delivery(1, 1, 3);
        assert_eq!(
            (delivery.traceparent, delivery.tracestate),
            (event.traceparent, event.tracestate)
        );

        // Written by a node from before trace contexts.
        let older = br#"{"queue":"fn:a/f","origin":null,"id":"e0","source":"/s","kind":"t",
            "subject":null,"path":"/","content_type":null,"data":"aGk=","max_attempts":3,
            "time":1}"#;
        let delivery = Body::decode(older).unwrap().delivery(1, 1, 3);
        assert_eq!((delivery.traceparent, delivery.tracestate), (None, None));
        // And one without a context is written as such a node wrote it.
        let plain = NewEvent {
            traceparent: None,
            tracestate: None,
            ..event
        };
        let text =
            String::from_utf8(Body::new(plain, SystemTime::now()).encode().to_vec()).unwrap();
        assert!(!text.contains("trace"), "{text}");
    }
}
