//! The invocation ledger on JetStream, shared by every node of a cluster:
//! `stratus usage`, `stratus logs` (and `--follow`) and `GET
//! /v1/invocations/{id}` answer for the whole cluster from any node, and
//! what a node recorded outlives it.
//!
//! Records and their log lines go to the stream `<name>_ledger`, on the
//! subject `<name>.ledger.<app>` (the app in hex). Each node gathers what
//! it records for a moment and publishes one message per app, so the
//! stream takes a few messages a second per node, not one per invocation.
//! Usage is also summed per hour in the bucket `<name>_usage`, under
//! `<app>.<hour>.<function>.<writer>`: each node process (writer) keeps
//! its own sums and rewrites only its own keys, so writers never contend
//! and need no compare-and-set.
//!
//! Reads are scans of the stream from a time, by a consumer filtered to
//! the app: exact usage of the last hour from the records (older periods
//! from the hourly sums); one invocation from the time in its id (a
//! UUIDv7); a function's newest lines in windows widening back from now.
//! An invocation whose id does not tell when it ran (an event's own id, a
//! retry hours later) is also stored alone under `<name>.ledger-id.<digest
//! of the id>`, read back with one direct get. The stream's and the
//! bucket's age limits prune.

mod read;
mod wire;
mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use stratus_storage::{
    FlushFuture, InvocationQuery, InvocationRecord, LedgerError, LedgerFuture, LedgerStats,
    LedgerStore, LogFeed, LogLine, LogQuery, PriceSheet, Retention, UsageQuery, UsageReport,
};
use tokio::sync::{mpsc, oneshot};

use crate::api::{JetStream, JetStreamError};
use crate::kv::{Kv, KvSettings, is_valid_key};
use writer::{Command, Writer};

/// How long a publish with the same message id is dropped as a duplicate:
/// covers a writer that publishes again after losing the acknowledgement.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Records and flushes waiting for the writer task; a full channel drops
/// records (counted) rather than holding up an invocation.
const CHANNEL: usize = 16_384;

/// An app name as a subject token: hex, so any name is one token, and
/// never empty.
fn token(name: &str) -> String {
    format!("x{}", hex::encode(name.as_bytes()))
}

/// An invocation id as a subject token of fixed length, whatever the id.
fn id_digest(id: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(id.as_bytes())[..16])
}

/// A ledger on a JetStream stream and bucket, shared by the nodes that
/// open it with the same name.
#[derive(Clone)]
pub struct JetStreamLedger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JetStreamLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLedger")
            .field("stream", &self.inner.stream)
            .finish_non_exhaustive()
    }
}

struct Inner {
    js: JetStream,
    stream: String,
    /// `<name>.ledger.`
    subject_prefix: String,
    /// `<name>.ledger-id.`
    index_prefix: String,
    usage: Kv,
    prices: PriceSheet,
    stats: Arc<LedgerStats>,
    commands: mpsc::Sender<Command>,
}

impl JetStreamLedger {
    /// Opens (creating if missing) the ledger `name`: the stream
    /// `<name>_ledger`, which keeps records and lines as long as the
    /// longer of their retentions, and the bucket `<name>_usage`, which
    /// keeps hourly sums for `retention.usage`; `replicas` copies of each.
    /// Starts the task that writes what is recorded, so it must be called
    /// within a Tokio runtime.
    pub async fn open(
        js: JetStream,
        name: &str,
        replicas: usize,
        retention: Retention,
        prices: PriceSheet,
    ) -> Result<JetStreamLedger, JetStreamError> {
        if !is_valid_key(name) || name.contains('.') {
            return Err(JetStreamError::Protocol {
                subject: name.to_owned(),
                reason: format!("{name:?} is not a name a stream and its subjects can have"),
            });
        }
        let stream = format!("{name}_ledger");
        let max_age = retention.records.max(retention.logs);
        js.ensure_stream(json!({
            "name": stream,
            "subjects": [format!("{name}.ledger.>"), format!("{name}.ledger-id.>")],
            "retention": "limits",
            "storage": "file",
            "num_replicas": replicas.max(1),
            "max_age": max_age.as_nanos() as u64,
            // Past its size the oldest batches go, whatever their age.
            "max_bytes": i64::try_from(retention.max_bytes).unwrap_or(i64::MAX),
            "discard": "old",
            "allow_direct": true,
            "duplicate_window": DUPLICATE_WINDOW.min(max_age).as_nanos() as u64,
        }))
        .await?;
        let usage = Kv::open(
            js.clone(),
            &format!("{name}_usage"),
            &KvSettings {
                replicas,
                history: 1,
                max_age: Some(retention.usage),
            },
        )
        .await?;
        let stats = Arc::new(LedgerStats::default());
        let subject_prefix = format!("{name}.ledger.");
        let index_prefix = format!("{name}.ledger-id.");
        let (commands, received) = mpsc::channel(CHANNEL);
        let writer = Writer {
            js: js.clone(),
            subject_prefix: subject_prefix.clone(),
            index_prefix: index_prefix.clone(),
            usage: usage.clone(),
            id: uuid::Uuid::now_v7().simple().to_string(),
            stats: stats.clone(),
        };
        tokio::spawn(writer.run(received));
        Ok(JetStreamLedger {
            inner: Arc::new(Inner {
                js,
                stream,
                subject_prefix,
                index_prefix,
                usage,
                prices,
                stats,
                commands,
            }),
        })
    }

    /// The stream holding records and lines.
    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    /// The bucket holding hourly usage.
    pub fn usage_bucket(&self) -> &str {
        self.inner.usage.bucket()
    }
}

impl Inner {
    /// Hands a record to the writer; `keep`: its raw record is stored
    /// (else it is only counted in usage).
    fn send(&self, record: InvocationRecord, logs: Vec<LogLine>, keep: bool) {
        let command = Command::Record(Box::new((record, logs, keep)));
        if self.commands.try_send(command).is_err() {
            self.stats
                .records_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// JetStream out of reach is worth asking again; anything else is the
/// backend's fault.
fn ledger_error(e: JetStreamError) -> LedgerError {
    match e {
        JetStreamError::Unavailable { .. } => LedgerError::Unavailable(e.to_string()),
        other => LedgerError::backend(other),
    }
}

impl LedgerStore for JetStreamLedger {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn record(&self, record: InvocationRecord, logs: Vec<LogLine>) {
        self.inner.send(record, logs, true);
    }

    fn count(&self, record: InvocationRecord, logs: Vec<LogLine>) {
        self.inner.send(record, logs, false);
    }

    fn flush(&self, limit: Duration) -> FlushFuture {
        let commands = self.inner.commands.clone();
        Box::pin(async move {
            let (answer, done) = oneshot::channel();
            let flushed = async {
                commands.send(Command::Flush(answer)).await.ok()?;
                done.await.ok()
            };
            matches!(tokio::time::timeout(limit, flushed).await, Ok(Some(())))
        })
    }

    fn invocation(&self, id: String) -> LedgerFuture<Option<InvocationRecord>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.invocation(&id).await })
    }

    fn logs(&self, query: LogQuery) -> LedgerFuture<Vec<LogLine>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.logs(&query).await })
    }

    fn invocations(&self, query: InvocationQuery) -> LedgerFuture<Vec<InvocationRecord>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.invocations(&query).await })
    }

    fn calls(
        &self,
        caller: String,
        from: SystemTime,
        until: SystemTime,
    ) -> LedgerFuture<Vec<InvocationRecord>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.calls(&caller, from, until).await })
    }

    fn usage(&self, query: UsageQuery) -> LedgerFuture<UsageReport> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.usage(&query).await })
    }

    fn stats(&self) -> &LedgerStats {
        &self.inner.stats
    }

    fn follow(&self, query: &LogQuery) -> Option<LedgerFuture<LogFeed>> {
        let inner = self.inner.clone();
        let query = query.clone();
        Some(Box::pin(async move { inner.follow(query).await }))
    }
}

#[cfg(test)]
mod tests;
