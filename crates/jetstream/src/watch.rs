//! Following a bucket's keys: an ephemeral pull consumer that replays the
//! last write of every key, then delivers writes as they happen. It keeps
//! the ordering a replica needs across reconnects and server restarts: when
//! the consumer is gone or skipped a message, a new one starts right after
//! the last stream sequence seen, so nothing is missed or seen twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::{StatusCode, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::api::{JetStream, JetStreamError};

/// Messages asked for per pull request.
const BATCH: u64 = 256;
/// How long one pull request waits at the server for a write. Short,
/// because silence past it is how a watch notices that its server went
/// away with its consumer: it then starts another on a live server.
const EXPIRES: Duration = Duration::from_secs(2);
/// A consumer nobody pulls from is removed by the server after this.
const INACTIVE: Duration = Duration::from_secs(30);
/// Pause before making a consumer again after a failure.
const RETRY: Duration = Duration::from_millis(250);

/// Where a watch begins.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// The current value of every key first.
    LastPerSubject,
    /// Every write after this stream sequence.
    After(u64),
    /// Every message stored at or after this time.
    Time(SystemTime),
    /// Only messages stored from now on.
    New,
}

/// One key's write, as a watch sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    /// `None` when the key was deleted or purged.
    pub value: Option<Bytes>,
    pub revision: u64,
}

#[derive(Deserialize)]
struct ConsumerInfo {
    name: String,
    num_pending: u64,
    #[serde(default)]
    delivered: Delivered,
}

/// Where a consumer stands: for a new one, the stream sequence just before
/// its start.
#[derive(Deserialize, Default)]
struct Delivered {
    #[serde(default)]
    stream_seq: u64,
}

/// Follows the writes to the keys under a prefix.
pub struct Watch {
    js: JetStream,
    stream: String,
    filter: String,
    /// What is cut off a subject to leave the key.
    key_prefix: String,
    consumer: String,
    inbox: String,
    messages: Subscriber,
    outstanding: u64,
    last_stream_seq: u64,
    last_consumer_seq: u64,
    /// When the last message delivered was stored.
    last_stored: SystemTime,
    current: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("filter", &self.filter)
            .field("last_stream_seq", &self.last_stream_seq)
            .finish()
    }
}

impl Watch {
    pub(crate) async fn start(
        js: JetStream,
        stream: String,
        filter: String,
        key_prefix: String,
        start: Start,
    ) -> Result<Watch, JetStreamError> {
        let inbox = js.client().new_inbox();
        let messages = js.client().subscribe(inbox.clone()).await.map_err(|e| {
            JetStreamError::Unavailable {
                subject: inbox.clone(),
                reason: e.to_string(),
            }
        })?;
        let mut watch = Watch {
            js,
            stream,
            filter,
            key_prefix,
            consumer: String::new(),
            inbox,
            messages,
            outstanding: 0,
            last_stream_seq: 0,
            last_consumer_seq: 0,
            last_stored: UNIX_EPOCH,
            current: false,
        };
        watch.consume(start).await?;
        Ok(watch)
    }

    /// Whether every key's value at the start has been delivered.
    pub fn is_current(&self) -> bool {
        self.current
    }

    /// The stream sequence of the last change delivered.
    pub fn revision(&self) -> u64 {
        self.last_stream_seq
    }

    /// When the last change delivered was stored.
    pub(crate) fn last_stored(&self) -> SystemTime {
        self.last_stored
    }

    async fn consume(&mut self, start: Start) -> Result<(), JetStreamError> {
        let mut config = json!({
            "ack_policy": "none",
            "filter_subject": self.filter,
            "inactive_threshold": INACTIVE.as_nanos() as u64,
            "mem_storage": true,
            "num_replicas": 1,
            "max_waiting": 1,
        });
        match start {
            Start::LastPerSubject => config["deliver_policy"] = json!("last_per_subject"),
            Start::After(seq) => {
                config["deliver_policy"] = json!("by_start_sequence");
                config["opt_start_seq"] = json!(seq + 1);
            }
            Start::Time(at) => {
                config["deliver_policy"] = json!("by_start_time");
                config["opt_start_time"] = json!(rfc3339(at));
            }
            Start::New => config["deliver_policy"] = json!("new"),
        }
        let subject = format!("$JS.API.CONSUMER.CREATE.{}", self.stream);
        let info: ConsumerInfo = self
            .js
            .request(
                &subject,
                &json!({ "stream_name": self.stream, "config": config }),
            )
            .await?;
        self.delete_consumer();
        // A watch that starts from a time, or from now, resumes after
        // where it started when its first consumer is lost before
        // delivering anything, not from the stream's beginning.
        if self.last_stream_seq == 0 && matches!(start, Start::Time(_) | Start::New) {
            self.last_stream_seq = info.delivered.stream_seq;
        }
        self.consumer = info.name;
        self.outstanding = 0;
        self.last_consumer_seq = 0;
        if info.num_pending == 0 {
            self.current = true;
        }
        Ok(())
    }

    /// Asks the server to drop the current consumer now rather than after
    /// its inactivity threshold.
    fn delete_consumer(&self) {
        if self.consumer.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let js = self.js.clone();
        let subject = format!("$JS.API.CONSUMER.DELETE.{}.{}", self.stream, self.consumer);
        runtime.spawn(async move {
            let _ = js.request::<serde_json::Value>(&subject, &json!({})).await;
        });
    }

    /// The changes of the initial replay, then `None` once current.
    pub async fn next_until_current(&mut self) -> Result<Option<Change>, JetStreamError> {
        if self.current {
            return Ok(None);
        }
        self.next().await.map(Some)
    }

    /// The next change, waiting as long as it takes. Errors only when the
    /// connection is closed for good; a lost consumer is made again.
    pub async fn next(&mut self) -> Result<Change, JetStreamError> {
        loop {
            match self.pull().await {
                Ok(Some(change)) => return Ok(change),
                Ok(None) => continue,
                Err(Lost::Closed(e)) => return Err(e),
                Err(Lost::Consumer(reason)) => {
                    tracing::debug!(filter = %self.filter, %reason, "watch starts a new consumer");
                    tokio::time::sleep(RETRY).await;
                    let start = Start::After(self.last_stream_seq);
                    if let Err(e) = self.consume(start).await {
                        tracing::debug!(filter = %self.filter, error = %e, "cannot watch yet");
                    }
                }
            }
        }
    }

    async fn pull(&mut self) -> Result<Option<Change>, Lost> {
        if self.outstanding == 0 {
            let next = format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
                self.stream, self.consumer
            );
            let request = json!({ "batch": BATCH, "expires": EXPIRES.as_nanos() as u64 });
            self.js
                .client()
                .publish_with_reply(next, self.inbox.clone(), request.to_string().into())
                .await
                .map_err(|e| Lost::Consumer(e.to_string()))?;
            self.outstanding = BATCH;
        }
        let message = match tokio::time::timeout(
            EXPIRES + Duration::from_secs(1),
            self.messages.next(),
        )
        .await
        {
            Ok(Some(message)) => message,
            Ok(None) => {
                return Err(Lost::Closed(JetStreamError::Unavailable {
                    subject: self.filter.clone(),
                    reason: "the connection closed".into(),
                }));
            }
            // A request the server dropped ends in silence.
            Err(_) => return Err(Lost::Consumer("no answer to a pull request".into())),
        };
        match message.status {
            Some(StatusCode::TIMEOUT) | Some(StatusCode::NOT_FOUND) => {
                self.outstanding = 0;
                return Ok(None);
            }
            Some(status) if status != StatusCode::OK => {
                return Err(Lost::Consumer(format!(
                    "{}: {}",
                    status.as_u16(),
                    message.description.as_deref().unwrap_or("")
                )));
            }
            _ => {}
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        let Some(meta) = message.reply.as_deref().and_then(Delivery::parse) else {
            return Ok(None);
        };
        if meta.consumer_seq != self.last_consumer_seq + 1 {
            return Err(Lost::Consumer(format!(
                "expected delivery {}, got {}",
                self.last_consumer_seq + 1,
                meta.consumer_seq
            )));
        }
        self.last_consumer_seq = meta.consumer_seq;
        self.last_stream_seq = meta.stream_seq;
        self.last_stored = UNIX_EPOCH + Duration::from_nanos(meta.stored_ns);
        if meta.pending == 0 {
            self.current = true;
        }
        let deleted = message
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
        let key = message
            .subject
            .as_str()
            .strip_prefix(&self.key_prefix)
            .unwrap_or(message.subject.as_str())
            .to_owned();
        Ok(Some(Change {
            key,
            value: (!deleted).then_some(message.payload),
            revision: meta.stream_seq,
        }))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.delete_consumer();
    }
}

/// A time as JetStream reads one: RFC 3339 in UTC, to the nanosecond.
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, since.subsec_nanos())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

enum Lost {
    /// The client is closed: nothing more will come.
    Closed(JetStreamError),
    /// This consumer cannot go on; another can.
    Consumer(String),
}

/// What a delivery's reply subject says about it:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.
/// <time>.<pending>` (or the longer form with domain and account first).
struct Delivery {
    stream_seq: u64,
    consumer_seq: u64,
    /// When the message was stored, in nanoseconds since the epoch.
    stored_ns: u64,
    pending: u64,
}

impl Delivery {
    fn parse(reply: &str) -> Option<Delivery> {
        let tokens: Vec<&str> = reply.split('.').collect();
        let at = match tokens.len() {
            9 => 5,
            n if n >= 11 => 7,
            _ => return None,
        };
        Some(Delivery {
            stream_seq: tokens.get(at)?.parse().ok()?,
            consumer_seq: tokens.get(at + 1)?.parse().ok()?,
            stored_ns: tokens.get(at + 2)?.parse().ok()?,
            pending: tokens.get(at + 3)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_of_both_forms_are_read() {
        let short = Delivery::parse("$JS.ACK.KV_b.c1.1.42.7.1700000000.3").unwrap();
        assert_eq!(
            (short.stream_seq, short.consumer_seq, short.pending),
            (42, 7, 3)
        );
        let long = Delivery::parse("$JS.ACK.dom.acc.KV_b.c1.1.42.7.1700000000.0.tok").unwrap();
        assert_eq!(
            (long.stream_seq, long.consumer_seq, long.pending),
            (42, 7, 0)
        );
        assert!(Delivery::parse("_INBOX.x").is_none());
        assert_eq!(short.stored_ns, 1_700_000_000);
    }

    #[test]
    fn start_times_are_rfc3339_utc() {
        let at = UNIX_EPOCH + Duration::new(1_795_000_000, 123_456_789);
        assert_eq!(rfc3339(at), "2026-11-18T11:06:40.123456789Z");
    }
}
