//! The JetStream API spoken over core NATS: every operation is a request on
//! a `$JS.API.…` subject (or a publish to a stream's subject) answered with
//! JSON. A few requests replace async-nats' `jetstream` feature, whose
//! retry helper turns on tokio's `test-util` in every build and so puts a
//! mutex behind the runtime's clock on the serving path.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, HeaderMap, Message, RequestErrorKind, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The server's codes for a publish whose `Nats-Expected-Last-Subject-
/// Sequence` did not match: someone else wrote the subject first. 10071
/// names the sequence found; 10164 (nats-server 2.11 on) says only that,
/// and is what a replicated stream answers while another write to the
/// subject is still being proposed, which racing nodes meet all the time.
const WRONG_LAST_SEQUENCE: [u32; 2] = [10071, 10164];
/// A stream created again with another configuration.
const STREAM_NAME_IN_USE: u32 = 10058;
/// A message get that found nothing.
const NO_MESSAGE_FOUND: u32 = 10037;

/// How long one API request waits for JetStream before it is an error. A
/// cluster that elects a new leader answers within a few seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a JetStream operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    /// JetStream answered with an error of its own.
    #[error("JetStream refused {subject}: {description} (error {err_code})")]
    Api {
        subject: String,
        err_code: u32,
        description: String,
    },

    /// Nobody answered: NATS is unreachable, JetStream is not enabled, or
    /// the cluster has no leader for the stream right now.
    #[error("JetStream did not answer {subject}: {reason}")]
    Unavailable { subject: String, reason: String },

    /// An answer that is not what JetStream sends.
    #[error("JetStream answered {subject} with something unexpected: {reason}")]
    Protocol { subject: String, reason: String },
}

impl JetStreamError {
    /// Whether JetStream did not answer: trying again later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JetStreamError::Unavailable { .. })
    }

    /// Whether a compare-and-set lost: the subject had another revision.
    pub fn is_wrong_last_sequence(&self) -> bool {
        matches!(self, JetStreamError::Api { err_code, .. } if WRONG_LAST_SEQUENCE.contains(err_code))
    }

    fn protocol(subject: &str, reason: impl ToString) -> Self {
        JetStreamError::Protocol {
            subject: subject.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// JetStream out of reach is the storage seams' `Unavailable` (the admin
/// API answers 503 and `Retry-After`); anything else is the backend's fault.
impl From<JetStreamError> for stratus_storage::ArtifactError {
    fn from(e: JetStreamError) -> Self {
        match e {
            JetStreamError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            other => Self::backend(other),
        }
    }
}

impl From<JetStreamError> for stratus_storage::AppStoreError {
    fn from(e: JetStreamError) -> Self {
        match e {
            JetStreamError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            other => Self::backend(other),
        }
    }
}

/// JetStream's acknowledgement of a publish.
#[derive(Debug, Clone, Deserialize)]
pub struct PubAck {
    pub stream: String,
    pub seq: u64,
    /// The message was a duplicate (same `Nats-Msg-Id` within the stream's
    /// duplicate window) and was not stored again.
    #[serde(default)]
    pub duplicate: bool,
}

/// A message read back from a stream.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub subject: String,
    pub sequence: u64,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl StoredMessage {
    /// A header's value, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.as_str())
    }
}

/// A connection to JetStream over a core NATS client.
#[derive(Clone, Debug)]
pub struct JetStream {
    client: Client,
}

impl JetStream {
    pub fn new(client: Client) -> Self {
        JetStream { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn send(
        &self,
        subject: &str,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> Result<Message, JetStreamError> {
        // While the client reconnects a request would wait out its whole
        // timeout; a deploy should hear at once that it cannot be stored.
        if self.client.connection_state() != State::Connected {
            return Err(JetStreamError::Unavailable {
                subject: subject.to_owned(),
                reason: "not connected to NATS".into(),
            });
        }
        let mut request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(REQUEST_TIMEOUT));
        if let Some(headers) = headers {
            request = request.headers(headers);
        }
        self.client
            .send_request(subject.to_owned(), request)
            .await
            .map_err(|e| {
                let reason = match e.kind() {
                    RequestErrorKind::NoResponders => {
                        "no responders (JetStream is not enabled there, or the stream has no leader at the moment)".to_owned()
                    }
                    RequestErrorKind::TimedOut => {
                        format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
                    }
                    _ => e.to_string(),
                };
                JetStreamError::Unavailable {
                    subject: subject.to_owned(),
                    reason,
                }
            })
    }

    /// An API request with a JSON body; JetStream's `error` answer becomes
    /// [`JetStreamError::Api`].
    pub async fn request<T: DeserializeOwned>(
        &self,
        subject: &str,
        body: &Value,
    ) -> Result<T, JetStreamError> {
        let reply = self
            .send(subject, None, Bytes::from(body.to_string()))
            .await?;
        decode(subject, &reply.payload)
    }

    /// Publishes to a stream's subject and waits until JetStream has stored
    /// it (replicated to a quorum of a replicated stream).
    pub async fn publish(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PubAck, JetStreamError> {
        let reply = self.send(subject, Some(headers), payload).await?;
        if reply.status == Some(StatusCode::NO_RESPONDERS) {
            return Err(JetStreamError::Unavailable {
                subject: subject.to_owned(),
                reason: "no stream takes this subject".into(),
            });
        }
        decode(subject, &reply.payload)
    }

    /// Creates the stream, or updates it when it exists with another
    /// configuration (a node of a newer version may change limits).
    pub async fn ensure_stream(&self, config: Value) -> Result<(), JetStreamError> {
        let name = config["name"]
            .as_str()
            .ok_or_else(|| JetStreamError::protocol("stream config", "no name"))?
            .to_owned();
        let create = format!("$JS.API.STREAM.CREATE.{name}");
        match self.request::<Value>(&create, &config).await {
            Ok(_) => Ok(()),
            Err(JetStreamError::Api { err_code, .. }) if err_code == STREAM_NAME_IN_USE => {
                let update = format!("$JS.API.STREAM.UPDATE.{name}");
                self.request::<Value>(&update, &config).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// The subjects of `stream` matching `filter` that hold messages (each
    /// subject's last message may be a deletion marker).
    pub async fn subjects(
        &self,
        stream: &str,
        filter: &str,
    ) -> Result<Vec<String>, JetStreamError> {
        Ok(self
            .subject_counts(stream, filter)
            .await?
            .into_iter()
            .map(|(subject, _)| subject)
            .collect())
    }

    /// The subjects of `stream` matching `filter` that hold messages, with
    /// how many each holds.
    pub async fn subject_counts(
        &self,
        stream: &str,
        filter: &str,
    ) -> Result<Vec<(String, u64)>, JetStreamError> {
        let subject = format!("$JS.API.STREAM.INFO.{stream}");
        let mut found = Vec::new();
        // The server answers at most a page of subjects at a time.
        loop {
            let info: Value = self
                .request(
                    &subject,
                    &json!({ "subjects_filter": filter, "offset": found.len() }),
                )
                .await?;
            let page: Vec<(String, u64)> = info["state"]["subjects"]
                .as_object()
                .map(|subjects| {
                    subjects
                        .iter()
                        .map(|(s, n)| (s.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default();
            let total = info["total"].as_u64().unwrap_or(0) as usize;
            let empty = page.is_empty();
            found.extend(page);
            if empty || found.len() >= total {
                return Ok(found);
            }
        }
    }

    /// Removes every message of `stream` on `subject` (a filter).
    pub async fn purge(&self, stream: &str, subject: &str) -> Result<(), JetStreamError> {
        let purge = format!("$JS.API.STREAM.PURGE.{stream}");
        self.request::<Value>(&purge, &json!({ "filter": subject }))
            .await
            .map(|_| ())
    }

    /// The last message on `subject`, read from any replica (the stream
    /// must allow direct gets).
    pub async fn last_message(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        self.direct_get(stream, json!({ "last_by_subj": subject }))
            .await
    }

    /// The last message on `subject` as the stream's leader has it. A
    /// direct get ([`last_message`](Self::last_message)) may be answered
    /// by a replica that has not applied the latest write yet; a reader
    /// that acts on a change it was told of (a node following a deploy)
    /// must not see the state before it, or it would think itself in step.
    pub async fn latest_message(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        let api = format!("$JS.API.STREAM.MSG.GET.{stream}");
        let answer: Value = match self
            .request(&api, &json!({ "last_by_subj": subject }))
            .await
        {
            Ok(answer) => answer,
            Err(JetStreamError::Api { err_code, .. }) if err_code == NO_MESSAGE_FOUND => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let message = &answer["message"];
        let decode = |field: &str| -> Result<Vec<u8>, JetStreamError> {
            match message[field].as_str() {
                Some(text) => BASE64
                    .decode(text)
                    .map_err(|e| JetStreamError::protocol(&api, format!("{field}: {e}"))),
                None => Ok(Vec::new()),
            }
        };
        let sequence = message["seq"]
            .as_u64()
            .ok_or_else(|| JetStreamError::protocol(&api, "no seq"))?;
        let stored_subject = message["subject"]
            .as_str()
            .ok_or_else(|| JetStreamError::protocol(&api, "no subject"))?
            .to_owned();
        Ok(Some(StoredMessage {
            subject: stored_subject,
            sequence,
            headers: header_block(&decode("hdrs")?),
            payload: Bytes::from(decode("data")?),
        }))
    }

    /// The first message on `subject` at or after sequence `from`.
    pub async fn next_message(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        self.direct_get(stream, json!({ "seq": from, "next_by_subj": subject }))
            .await
    }

    async fn direct_get(
        &self,
        stream: &str,
        body: Value,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        let subject = format!("$JS.API.DIRECT.GET.{stream}");
        let reply = self
            .send(&subject, None, Bytes::from(body.to_string()))
            .await?;
        match reply.status {
            Some(StatusCode::NOT_FOUND) => return Ok(None),
            Some(status) if status != StatusCode::OK => {
                return Err(JetStreamError::Api {
                    subject,
                    err_code: u32::from(status.as_u16()),
                    description: reply.description.unwrap_or_default(),
                });
            }
            _ => {}
        }
        let headers = reply
            .headers
            .ok_or_else(|| JetStreamError::protocol(&subject, "a message without headers"))?;
        let field = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        let sequence = field("Nats-Sequence")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JetStreamError::protocol(&subject, "no Nats-Sequence"))?;
        let stored_subject = field("Nats-Subject")
            .ok_or_else(|| JetStreamError::protocol(&subject, "no Nats-Subject"))?;
        Ok(Some(StoredMessage {
            subject: stored_subject,
            sequence,
            headers,
            payload: reply.payload,
        }))
    }
}

/// The headers of a stored message as JetStream keeps them: `NATS/1.0`,
/// then `Name: value` lines.
fn header_block(block: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let text = String::from_utf8_lossy(block);
    for line in text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim(), value.trim());
        }
    }
    headers
}

/// Reads JetStream's JSON answer: its `error`, or the value.
fn decode<T: DeserializeOwned>(subject: &str, payload: &[u8]) -> Result<T, JetStreamError> {
    let answer: Value = serde_json::from_slice(payload)
        .map_err(|e| JetStreamError::protocol(subject, format!("not JSON: {e}")))?;
    if let Some(error) = answer.get("error") {
        return Err(JetStreamError::Api {
            subject: subject.to_owned(),
            err_code: error["err_code"].as_u64().unwrap_or(0) as u32,
            description: error["description"]
                .as_str()
                .unwrap_or("no description")
                .to_owned(),
        });
    }
    serde_json::from_value(answer).map_err(|e| JetStreamError::protocol(subject, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(err_code: u32) -> JetStreamError {
        JetStreamError::Api {
            subject: "$KV.b.k".into(),
            err_code,
            description: "wrong last sequence".into(),
        }
    }

    #[test]
    fn stored_headers_read_back() {
        let headers = header_block(b"NATS/1.0\r\nKV-Operation: DEL\r\nNats-Msg-Id: a:b\r\n\r\n");
        assert_eq!(headers.get("KV-Operation").map(|v| v.as_str()), Some("DEL"));
        assert_eq!(headers.get("Nats-Msg-Id").map(|v| v.as_str()), Some("a:b"));
        assert!(header_block(b"").get("KV-Operation").is_none());
    }

    #[test]
    fn both_wrong_last_sequence_codes_are_a_lost_race() {
        // 10164 is what nats-server 2.15 answers on a replicated stream.
        assert!(refused(10071).is_wrong_last_sequence());
        assert!(refused(10164).is_wrong_last_sequence());
        assert!(!refused(10058).is_wrong_last_sequence());
        let silent = JetStreamError::Unavailable {
            subject: "x".into(),
            reason: "no answer".into(),
        };
        assert!(!silent.is_wrong_last_sequence());
    }
}
