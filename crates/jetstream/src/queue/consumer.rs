//! The queue's pull consumers, spoken over core NATS as in the triggers
//! crate: one durable consumer per filter (every queue, or one queue), a
//! pull that takes what is due now and returns, and acknowledgements on
//! each message's reply subject.
//!
//! Consumers only say *when* to look at a message again; the status record
//! decides what it is. A lease is a `-NAK` with the lease as its delay
//! right after the record was claimed: the server keeps the message
//! pending and hands it out again exactly when the lease ends, whatever
//! `ack_wait` is, so leases of any length share one consumer.

use std::time::Duration;

use async_nats::{HeaderMap, Message, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::api::{JetStream, JetStreamError};

/// How long a message pulled but never leased nor skipped (the node died
/// in between) stays with its puller before the server offers it again.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(30);
/// A consumer nobody pulled from this long is removed by the server (one
/// per queue ever leased from would otherwise pile up); the next lease
/// makes it again, and it offers every waiting event anew, which the
/// records sort out.
const INACTIVE: Duration = Duration::from_secs(3600);
/// How long an acknowledgement waits for the server's confirmation.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pull waits at the server when nothing is due. `no_wait`
/// alone answers 404 at once only when the consumer has nothing pending
/// at all; with messages pending but none due (a backoff, a lease) the
/// server holds the request open until it expires.
const PULL_EXPIRES: Duration = Duration::from_millis(100);
/// How long a pull waits for the server's next message, well past its
/// expiry. Silence from the start means nobody took the request: the
/// consumer is gone (a missing consumer gets no answer, not even "no
/// responders").
const PULL_TIMEOUT: Duration = Duration::from_secs(2);

/// Creates the durable consumer (the same configuration again is no
/// change); `filter` is the subjects it delivers.
pub(crate) async fn ensure(
    js: &JetStream,
    stream: &str,
    name: &str,
    filter: &str,
) -> Result<(), JetStreamError> {
    let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}");
    js.request::<Value>(
        &subject,
        &json!({
            "stream_name": stream,
            "config": {
                "durable_name": name,
                "filter_subject": filter,
                "ack_policy": "explicit",
                "deliver_policy": "all",
                "ack_wait": ACK_WAIT.as_nanos() as u64,
                // Retries and leases are the records' business: never give up.
                "max_deliver": -1,
                // Events waiting out a backoff are pending: no cap on them.
                "max_ack_pending": -1,
                "inactive_threshold": INACTIVE.as_nanos() as u64,
            },
        }),
    )
    .await
    .map(|_| ())
}

/// A message as the consumer delivered it.
pub(crate) struct Pulled {
    pub(crate) message: Message,
    /// Where to acknowledge it.
    pub(crate) ack: String,
    /// Its stream sequence.
    pub(crate) sequence: u64,
}

impl Pulled {
    /// Reads the reply subject `$JS.ACK.<stream>.<consumer>.<delivered>.
    /// <stream seq>.<consumer seq>.<time>.<pending>` (or its longer form).
    fn from(message: Message) -> Option<Pulled> {
        let ack = message.reply.as_ref()?.to_string();
        let tokens: Vec<&str> = ack.split('.').collect();
        let at = match tokens.len() {
            9 => 5,
            n if n >= 11 => 7,
            _ => return None,
        };
        let sequence = tokens.get(at)?.parse().ok()?;
        Some(Pulled {
            message,
            ack,
            sequence,
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.message
            .headers
            .as_ref()
            .and_then(|h: &HeaderMap| h.get(name))
            .map(|v| v.as_str())
    }
}

/// Why a pull found nothing to pull from.
pub(crate) enum PullError {
    /// The consumer is gone (removed by hand, or the stream was re-made).
    NoConsumer,
    Failed(JetStreamError),
}

/// Takes up to `batch` messages that are due now, without waiting for
/// more.
pub(crate) async fn pull(
    js: &JetStream,
    stream: &str,
    consumer: &str,
    batch: usize,
) -> Result<Vec<Pulled>, PullError> {
    let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}");
    let unavailable = |reason: String| {
        PullError::Failed(JetStreamError::Unavailable {
            subject: subject.clone(),
            reason,
        })
    };
    let client = js.client();
    // Disconnected, the request would wait in the client's buffer while
    // the pull waits out its timeout: say at once that it cannot be done.
    if client.connection_state() != async_nats::connection::State::Connected {
        return Err(unavailable("not connected to NATS".into()));
    }
    let inbox = client.new_inbox();
    let mut messages = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let request = json!({
        "batch": batch,
        "no_wait": true,
        "expires": PULL_EXPIRES.as_nanos() as u64,
    });
    client
        .publish_with_reply(subject.clone(), inbox, Bytes::from(request.to_string()))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut pulled = Vec::new();
    while pulled.len() < batch {
        let message = match tokio::time::timeout(PULL_TIMEOUT, messages.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(unavailable("the connection closed".into())),
            Err(_) if pulled.is_empty() => return Err(PullError::NoConsumer),
            // The end of the answer was lost: what came is what there is.
            Err(_) => break,
        };
        match message.status {
            // 404 nothing due, 408 the request is over.
            Some(StatusCode::NOT_FOUND | StatusCode::TIMEOUT) => break,
            Some(StatusCode::NO_RESPONDERS) => return Err(PullError::NoConsumer),
            Some(status) if status != StatusCode::OK => {
                let reason = message.description.unwrap_or_default();
                if reason.to_ascii_lowercase().contains("consumer") {
                    return Err(PullError::NoConsumer);
                }
                return Err(PullError::Failed(JetStreamError::Api {
                    subject,
                    err_code: u32::from(status.as_u16()),
                    description: reason,
                }));
            }
            _ => {}
        }
        match Pulled::from(message) {
            Some(message) => pulled.push(message),
            None => tracing::warn!(%subject, "ignored a message without a JetStream reply subject"),
        }
    }
    let _ = messages.unsubscribe().await;
    Ok(pulled)
}

/// Sends an acknowledgement and waits for the server to confirm it.
async fn acknowledge(js: &JetStream, ack: &str, body: String) -> Result<(), JetStreamError> {
    let request = async_nats::Request::new()
        .payload(Bytes::from(body))
        .timeout(Some(ACK_TIMEOUT));
    js.client()
        .send_request(ack.to_owned(), request)
        .await
        .map(|_| ())
        .map_err(|e| JetStreamError::Unavailable {
            subject: ack.to_owned(),
            reason: e.to_string(),
        })
}

/// Handled (or never to be delivered from here again): the consumer
/// forgets the message.
pub(crate) async fn ack(js: &JetStream, ack: &str) -> Result<(), JetStreamError> {
    acknowledge(js, ack, "+ACK".into()).await
}

/// Back to the consumer, handed out again after `delay`.
pub(crate) async fn nak(js: &JetStream, ack: &str, delay: Duration) -> Result<(), JetStreamError> {
    // A delay of zero is only due when the server next checks its pending
    // messages (some 10 ms on); without one the message is due at once.
    let body = if delay.is_zero() {
        "-NAK".to_owned()
    } else {
        format!("-NAK {}", json!({ "delay": delay.as_nanos() as u64 }))
    };
    acknowledge(js, ack, body).await
}

/// Removes a message from the stream (every consumer drops it), so the
/// stream holds only events still to be delivered.
pub(crate) async fn delete(js: &JetStream, stream: &str, seq: u64) -> Result<(), JetStreamError> {
    let subject = format!("$JS.API.STREAM.MSG.DELETE.{stream}");
    match js
        .request::<Value>(&subject, &json!({ "seq": seq, "no_erase": true }))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted already: 10057 "no message found" (or "stream store EOF"
        // past the last), 10043 "sequence not found" on newer servers.
        Err(JetStreamError::Api {
            err_code,
            description,
            ..
        }) if err_code == 10043
            || (err_code == 10057
                && (description.contains("no message found") || description.contains("EOF"))) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}
