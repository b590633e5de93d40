//! A JetStream pull consumer spoken over core NATS: the JetStream API is
//! requests on `$JS.API.…` subjects and acknowledgements on each message's
//! reply subject, so a few requests replace async-nats' `jetstream` feature
//! (whose retry helper turns on tokio's `test-util` in every build, putting
//! a mutex behind the runtime's clock on the serving path).

use std::time::Duration;

use async_nats::{Client, Message, StatusCode, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Messages asked for per pull request.
const BATCH: u64 = 64;
/// How long one pull request waits at the server for messages.
const EXPIRES: Duration = Duration::from_secs(5);

async fn api(client: &Client, subject: String, body: Value) -> Result<Value, String> {
    let reply = client
        .request(subject.clone(), Bytes::from(body.to_string()))
        .await
        .map_err(|e| format!("{subject}: {e}"))?;
    let answer: Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("{subject} answered something that is not JSON: {e}"))?;
    match answer.get("error") {
        Some(error) => Err(error["description"]
            .as_str()
            .unwrap_or("unknown JetStream error")
            .to_owned()),
        None => Ok(answer),
    }
}

/// Makes sure `stream` exists and has the durable pull consumer `consumer`
/// (created with explicit acks if it is missing; an existing one is used as
/// it is configured).
pub(crate) async fn bind(
    client: &Client,
    stream: &str,
    consumer: &str,
    ack_wait: Duration,
) -> Result<(), String> {
    api(client, format!("$JS.API.STREAM.INFO.{stream}"), json!({}))
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?;
    if api(
        client,
        format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
        json!({}),
    )
    .await
    .is_ok()
    {
        return Ok(());
    }
    let config = json!({
        "stream_name": stream,
        "config": {
            "durable_name": consumer,
            "name": consumer,
            "ack_policy": "explicit",
            "deliver_policy": "all",
            "ack_wait": ack_wait.as_nanos() as u64,
        },
    });
    api(
        client,
        format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}"),
        config,
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("consumer {consumer} of stream {stream}: {e}"))
}

/// Pulls messages of one durable consumer, batch after batch.
pub(crate) struct Pull {
    client: Client,
    next: String,
    inbox: String,
    messages: Subscriber,
    /// Messages still due under the current pull request.
    outstanding: u64,
}

impl Pull {
    pub(crate) async fn new(client: &Client, stream: &str, consumer: &str) -> Result<Pull, String> {
        let inbox = client.new_inbox();
        let messages = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| format!("cannot subscribe to the pull inbox: {e}"))?;
        Ok(Pull {
            client: client.clone(),
            next: format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
            inbox,
            messages,
            outstanding: 0,
        })
    }

    /// The next message, waiting as long as it takes; an error means the
    /// connection is gone.
    pub(crate) async fn next(&mut self) -> Result<Delivered, String> {
        loop {
            if self.outstanding == 0 {
                let request = json!({ "batch": BATCH, "expires": EXPIRES.as_nanos() as u64 });
                self.client
                    .publish_with_reply(
                        self.next.clone(),
                        self.inbox.clone(),
                        request.to_string().into(),
                    )
                    .await
                    .map_err(|e| format!("cannot ask for messages: {e}"))?;
                self.outstanding = BATCH;
            }
            // A request the server dropped (say, on a reconnect) ends in
            // silence: ask again after its expiry.
            let message =
                match tokio::time::timeout(EXPIRES + Duration::from_secs(1), self.messages.next())
                    .await
                {
                    Ok(Some(message)) => message,
                    Ok(None) => return Err("the connection closed".into()),
                    Err(_) => {
                        self.outstanding = 0;
                        continue;
                    }
                };
            match message.status {
                // 404 no messages, 408 the request expired: this request is
                // over, ask again.
                Some(StatusCode::NOT_FOUND | StatusCode::TIMEOUT) => {
                    self.outstanding = 0;
                    continue;
                }
                // Anything else (409: the consumer was deleted or its limits
                // refuse the request) would refuse the next request too:
                // the trigger binds again after a backoff rather than spin.
                Some(status) if status != StatusCode::OK => {
                    return Err(format!(
                        "the server answered {}: {}",
                        status.as_u16(),
                        message.description.as_deref().unwrap_or("no description")
                    ));
                }
                _ => {}
            }
            self.outstanding = self.outstanding.saturating_sub(1);
            match Delivered::from(message) {
                Some(delivered) => return Ok(delivered),
                None => tracing::warn!(
                    consumer = %self.next,
                    "ignored a message without a JetStream reply subject on the pull inbox"
                ),
            }
        }
    }
}

/// A message from the stream with where to acknowledge it.
pub(crate) struct Delivered {
    pub(crate) message: Message,
    ack: String,
    /// How many times the stream has delivered it (1 the first time).
    pub(crate) delivered: u32,
    pub(crate) sequence: u64,
}

impl Delivered {
    /// Reads the reply subject `$JS.ACK.<stream>.<consumer>.<delivered>.
    /// <stream seq>.<consumer seq>.<time>.<pending>` (or its longer form
    /// with domain and account first).
    fn from(message: Message) -> Option<Delivered> {
        let ack = message.reply.as_ref()?.to_string();
        let tokens: Vec<&str> = ack.split('.').collect();
        let at = match tokens.len() {
            9 => 4,
            n if n >= 11 => 6,
            _ => return None,
        };
        let delivered = tokens.get(at)?.parse().ok()?;
        let sequence = tokens.get(at + 1)?.parse().ok()?;
        Some(Delivered {
            message,
            ack,
            delivered,
            sequence,
        })
    }

    /// Handled: the stream forgets it. Waits for the server's confirmation.
    pub(crate) async fn ack(&self, client: &Client) -> Result<(), String> {
        client
            .request(self.ack.clone(), Bytes::from_static(b"+ACK"))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Not handled: the stream delivers it again after `delay`.
    pub(crate) async fn nak(&self, client: &Client, delay: Duration) -> Result<(), String> {
        let body = format!("-NAK {}", json!({ "delay": delay.as_nanos() as u64 }));
        client
            .publish(self.ack.clone(), body.into())
            .await
            .map_err(|e| e.to_string())
    }
}
