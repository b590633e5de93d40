//! What the tests of this crate share: a connection to the NATS server on
//! loopback and streams that are removed when a test ends, so runs leave
//! nothing on the server.
#![allow(clippy::unwrap_used)]

use crate::JetStream;

/// The server `scripts/brokers.sh` starts (JetStream enabled).
pub(crate) const NATS: &str = "nats://127.0.0.1:4222";

/// A bucket name no other test or run uses.
pub(crate) fn bucket_name(what: &str) -> String {
    format!("test_{what}_{}", uuid::Uuid::now_v7().simple())
}

/// Keeps one stream on the server for good. Debian's nats-server (2.9)
/// removes the account's store directory when its last stream is deleted,
/// and a stream created at that moment fails ("could not create storage
/// directory", API error 10049): with tests creating and deleting streams
/// in parallel, one that never goes keeps the directory.
pub(crate) async fn anchor(js: &JetStream) {
    let config = serde_json::json!({
        "name": "stratus_test_anchor",
        "subjects": ["stratus_test_anchor"],
        "storage": "file",
        "max_msgs": 1,
    });
    js.ensure_stream(config).await.unwrap();
}

/// A connection and the streams to delete when it is dropped.
pub(crate) struct Scratch {
    js: JetStream,
    streams: Vec<String>,
}

impl Scratch {
    pub(crate) async fn connect() -> Scratch {
        let client = async_nats::connect(NATS)
            .await
            .unwrap_or_else(|e| panic!("NATS at {NATS} (run scripts/brokers.sh): {e}"));
        let js = JetStream::new(client);
        anchor(&js).await;
        Scratch {
            js,
            streams: Vec::new(),
        }
    }

    pub(crate) fn js(&self) -> JetStream {
        self.js.clone()
    }

    pub(crate) fn removing(mut self, stream: String) -> Scratch {
        self.streams.push(stream);
        self
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let streams = std::mem::take(&mut self.streams);
        // The test's runtime is ending: delete from a runtime of our own.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let Ok(client) = async_nats::connect(NATS).await else {
                    return;
                };
                let js = JetStream::new(client);
                for stream in streams {
                    let subject = format!("$JS.API.STREAM.DELETE.{stream}");
                    let _ = js
                        .request::<serde_json::Value>(&subject, &serde_json::json!({}))
                        .await;
                }
            });
        });
        let _ = deleted.join();
    }
}
