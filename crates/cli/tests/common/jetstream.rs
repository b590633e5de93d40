//! Just enough of the JetStream API for the tests — streams, acknowledged
//! publishes, a consumer's progress — spoken as JSON requests over core
//! NATS, as the node's own triggers do. (async-nats's `jetstream` feature
//! would switch on tokio's `test-util` for the whole test build, and so
//! rebuild every dependency apart from the `stratus` binary the README's
//! first command builds.)

use serde_json::{Value, json};

pub const NATS: &str = "nats://127.0.0.1:4222";

pub struct JetStream {
    client: async_nats::Client,
}

/// How far a consumer got.
#[derive(Debug)]
pub struct ConsumerProgress {
    /// The stream sequence up to which every message is acknowledged.
    pub ack_floor: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: u64,
}

impl JetStream {
    pub async fn connect() -> JetStream {
        let js = JetStream {
            client: async_nats::connect(NATS).await.unwrap(),
        };
        // One stream kept for good: Debian's nats-server (2.9) removes the
        // account's store directory with its last stream, and a stream
        // created at that moment fails (API error 10049).
        let anchor = json!({
            "name": "stratus_test_anchor",
            "subjects": ["stratus_test_anchor"],
            "storage": "file",
            "max_msgs": 1,
        });
        let created = js
            .api("$JS.API.STREAM.CREATE.stratus_test_anchor".into(), anchor)
            .await;
        if let Err(e) = created {
            assert!(e.contains("10058"), "{e}");
        }
        js
    }

    /// Sends an API request; the answer, or its error as text.
    async fn api(&self, subject: String, body: Value) -> Result<Value, String> {
        let reply = self
            .client
            .request(subject.clone(), body.to_string().into())
            .await
            .map_err(|e| format!("{subject}: {e}"))?;
        let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
        match answer.get("error") {
            Some(error) => Err(format!("{subject}: {error}")),
            None => Ok(answer),
        }
    }

    /// A stream taking the subjects `<name>.>`.
    pub async fn create_stream(&self, name: &str) {
        self.api(
            format!("$JS.API.STREAM.CREATE.{name}"),
            json!({ "name": name, "subjects": [format!("{name}.>")] }),
        )
        .await
        .unwrap();
    }

    pub async fn delete_stream(&self, name: &str) {
        self.api(format!("$JS.API.STREAM.DELETE.{name}"), json!({}))
            .await
            .unwrap();
    }

    /// Deletes the stream if there is one (cleaning up after a test).
    pub async fn remove_stream(&self, name: &str) {
        let _ = self
            .api(format!("$JS.API.STREAM.DELETE.{name}"), json!({}))
            .await;
    }

    /// Publishes and waits until the stream has stored it.
    pub async fn publish(&self, subject: String, body: impl AsRef<[u8]>) {
        let reply = self
            .client
            .request(subject.clone(), body.as_ref().to_vec().into())
            .await
            .unwrap();
        let ack: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert!(ack["seq"].is_u64(), "{subject} was not stored: {ack}");
    }

    /// The consumer's progress; `None` while it does not exist.
    pub async fn consumer(&self, stream: &str, consumer: &str) -> Option<ConsumerProgress> {
        let info = self
            .api(
                format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
                json!({}),
            )
            .await
            .ok()?;
        Some(ConsumerProgress {
            ack_floor: info["ack_floor"]["stream_seq"].as_u64().unwrap_or(0),
            ack_pending: info["num_ack_pending"].as_u64().unwrap_or(0),
        })
    }
}
