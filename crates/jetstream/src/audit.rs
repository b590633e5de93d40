//! A cluster's audit log: one stream every node appends to, so `stratus
//! audit` through any node shows what was done through all of them. The
//! stream keeps entries for the retention (`max_age`) and is never written
//! otherwise: no API deletes or changes an entry.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;
use serde_json::json;
use stratus_storage::{AuditEntry, AuditError, AuditFuture, AuditLog, AuditQuery};

use crate::api::{JetStream, JetStreamError};
use crate::watch::{Start, Watch};

/// Entries are read from this long before the time asked for: the stream
/// files a message by the server's clock, the entry names the node's.
const CLOCK_SLACK: Duration = Duration::from_secs(60);
/// The longest a read may take before it is given up as unavailable.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// The audit log on the stream `<name>_audit`, a subject per namespace.
#[derive(Clone)]
pub struct JetStreamAudit {
    js: JetStream,
    stream: String,
    /// `<name>.audit.`: then the namespace's token.
    prefix: String,
}

impl std::fmt::Debug for JetStreamAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamAudit")
            .field("stream", &self.stream)
            .finish()
    }
}

fn failed(e: JetStreamError) -> AuditError {
    if e.is_unavailable() {
        AuditError::Unavailable(e.to_string())
    } else {
        AuditError::Backend(e.to_string())
    }
}

/// A namespace as a subject token (`-` for the node's own entries): hex,
/// so any name is one token.
fn token(namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("x{}", hex::encode(namespace.as_bytes())),
        None => "-".to_owned(),
    }
}

impl JetStreamAudit {
    /// Opens (creating if needed) the stream, keeping entries `retention`.
    pub async fn open(
        js: JetStream,
        name: &str,
        replicas: usize,
        retention: Duration,
    ) -> Result<JetStreamAudit, JetStreamError> {
        let stream = format!("{name}_audit");
        js.ensure_stream(json!({
            "name": stream,
            "subjects": [format!("{name}.audit.>")],
            "retention": "limits",
            "storage": "file",
            "num_replicas": replicas.max(1),
            "max_age": retention.as_nanos() as u64,
            "discard": "old",
            "allow_direct": true,
        }))
        .await?;
        Ok(JetStreamAudit {
            js,
            stream,
            prefix: format!("{name}.audit."),
        })
    }
}

impl AuditLog for JetStreamAudit {
    fn append(&self, entry: AuditEntry) -> AuditFuture<()> {
        let this = self.clone();
        Box::pin(async move {
            let subject = format!("{}{}", this.prefix, token(entry.namespace.as_deref()));
            let payload =
                serde_json::to_vec(&entry).map_err(|e| AuditError::Backend(e.to_string()))?;
            // Answered once the stream has stored it.
            this.js
                .publish(&subject, HeaderMap::new(), Bytes::from(payload))
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn list(&self, query: AuditQuery) -> AuditFuture<Vec<AuditEntry>> {
        let this = self.clone();
        Box::pin(async move {
            let since = query.since.map_or(UNIX_EPOCH, |ms| {
                UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
            });
            let now = SystemTime::now();
            // The newest entries are wanted: read the last hour first, and
            // further back only while that holds fewer than the limit,
            // rather than the whole stream from its start every time.
            let windows = WINDOWS.iter().map(|w| now.checked_sub(*w));
            let read = async {
                for from in windows.chain([None]) {
                    let from = from.unwrap_or(UNIX_EPOCH).max(since);
                    let newest = this.read_from(&query, from).await?;
                    if newest.len() >= query.limit || from == since {
                        return Ok(newest);
                    }
                }
                Ok(Vec::new())
            };
            tokio::time::timeout(READ_LIMIT, read)
                .await
                .unwrap_or_else(|_| {
                    Err(AuditError::Unavailable(format!(
                        "reading the audit log took longer than {}s",
                        READ_LIMIT.as_secs()
                    )))
                })
        })
    }
}

/// How far back a listing looks first, then next, before the whole stream.
const WINDOWS: [Duration; 3] = [
    Duration::from_secs(3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(7 * 24 * 3600),
];

/// Entries stored this long after a read began end it: under steady
/// appends the consumer may never be current, and those are newer than
/// the read anyway.
const STORED_AFTER: Duration = Duration::from_secs(2);

impl JetStreamAudit {
    /// The newest `query.limit` entries `query` matches among those whose
    /// time is at or after `from` (read from `CLOCK_SLACK` before it: an
    /// entry's time is its node's clock, its place in the stream the
    /// server's), oldest first.
    async fn read_from(
        &self,
        query: &AuditQuery,
        from: SystemTime,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let filter = match &query.namespace {
            Some(namespace) => format!("{}{}", self.prefix, token(namespace.as_deref())),
            None => format!("{}>", self.prefix),
        };
        let start = from.checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH);
        let began = SystemTime::now();
        let mut watch = Watch::start(
            self.js.clone(),
            self.stream.clone(),
            filter,
            self.prefix.clone(),
            Start::Time(start),
        )
        .await
        .map_err(failed)?;
        let mut newest = VecDeque::with_capacity(query.limit.min(10_000));
        while let Some(change) = watch.next_until_current().await.map_err(failed)? {
            let Some(value) = change.value else { continue };
            let entry: AuditEntry = match serde_json::from_slice(&value) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a damaged audit entry");
                    continue;
                }
            };
            let at = UNIX_EPOCH + Duration::from_millis(entry.time.max(0) as u64);
            if query.matches(&entry) && at >= from {
                if newest.len() == query.limit {
                    newest.pop_front();
                }
                if query.limit > 0 {
                    newest.push_back(entry);
                }
            }
            if watch.last_stored() > began + STORED_AFTER {
                break;
            }
        }
        Ok(newest.into_iter().collect())
    }
}

#[cfg(test)]
mod tests;
