//! The invocation ledger: one record per invocation (what it used, how it
//! ended), usage per function priced by a price sheet, and the lines each
//! invocation wrote. [`LedgerStore`] is where these are kept (the node's
//! `ledger.sqlite` today); [`Ledger`] and its [`Recorder`] are what the
//! node keeps in memory in front of any store (the log budget, the last
//! error per function, live log following).

mod last_errors;
mod log_budget;
mod record;
mod recorder;
mod sampling;
mod usage;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

pub use last_errors::LastError;
pub use log_budget::DEFAULT_LOG_BYTES_PER_APP_DAY;
pub use record::{
    InvocationRecord, LogLine, LogStream, Outbound, Trigger, billed_mib, billed_ms, format_time,
};
pub use recorder::{DEFAULT_FOLLOWER_STALL, Ledger, LedgerStats, LiveLog, LogFeed, Recorder};
pub use sampling::Sampling;
pub use usage::{
    DEFAULT_LEDGER_MAX_BYTES, InvocationQuery, LogQuery, PriceSheet, Retention, StatusFilter,
    UsageQuery, UsageReport, UsageRow, UsageSums,
};

/// Why the ledger could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The backend's own error, shown as it words it (SQLite's "… during
    /// …").
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),

    /// A store on the network did not answer (a cluster's NATS is out of
    /// reach): worth asking again later.
    #[error("the ledger is out of reach: {0}")]
    Unavailable(String),
}

impl LedgerError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> LedgerError {
        LedgerError::Backend(Box::new(e))
    }
}

/// What a ledger read resolves to.
pub type LedgerFuture<T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send>>;

/// What [`LedgerStore::flush`] resolves to: whether everything was written.
pub type FlushFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

/// The most calls [`LedgerStore::calls`] answers: a bound on the answer,
/// well above the outbound requests most invocations may make (50 by
/// default, `max_outbound_requests`).
pub const MAX_CALLS: usize = 1000;

/// Where a node keeps its invocation records, their log lines and the
/// usage they add up to.
///
/// # Writing: `record` is a hand-off, not a commit
///
/// The request path calls [`record`](LedgerStore::record) once per
/// invocation, at tens of thousands a second, and must never wait for the
/// disk or the network. So the trait's write is a synchronous, non-blocking
/// hand-off, and how records are batched, written and retried is each
/// backend's own: SQLite queues them to one writer thread that commits
/// whatever has gathered in one transaction (one fsync per batch); the
/// JetStream backend gathers them for a moment and publishes one message
/// per app, acknowledgements awaited together. A batch-commit method called by a shared writer would
/// force one batching and retry policy (a thread holding a blocking
/// connection) on every backend, and an async `record` would make each
/// invocation allocate and poll a future for what should be a channel send.
///
/// A backend keeps this contract:
/// - `record` returns at once. What it cannot write it keeps (bounded) and
///   retries before anything newer; what it must give up on it counts in
///   [`LedgerStats::records_dropped`], never failing the caller.
/// - A record is durable, and readable by [`invocation`], [`logs`] and
///   [`usage`], once a [`flush`] called after it answered `true`; not
///   necessarily before. Records and lines are kept in the order recorded;
///   the lines of one record in the order given.
/// - Every invocation handed to `record` or `count` is in the usage
///   roll-ups once flushed: totals come from them, never from sampled
///   rows.
/// - Pruning what is past its [`Retention`] is the backend's own concern,
///   done off the request path; usage outlives raw records (it is kept as
///   roll-ups, per function and hour).
/// - Reads never see another app's records or lines.
///
/// [`invocation`]: LedgerStore::invocation
/// [`logs`]: LedgerStore::logs
/// [`usage`]: LedgerStore::usage
/// [`flush`]: LedgerStore::flush
pub trait LedgerStore: Send + Sync + 'static {
    /// A short name for logs, e.g. `sqlite`.
    fn kind(&self) -> &'static str;

    /// Queues one invocation and its log lines (already held to the app's
    /// budget) for writing. Never blocks.
    fn record(&self, record: InvocationRecord, logs: Vec<LogLine>);

    /// Like [`record`](LedgerStore::record) for an invocation whose raw
    /// record is sampled out ([`Sampling`]): it counts in the usage
    /// roll-ups (requests, GB-seconds, … and `sampled`) and its lines are
    /// kept, but no record of it is stored, so `invocation` does not find
    /// it and usage of a period with such invocations is read from the
    /// roll-ups. Never blocks.
    fn count(&self, record: InvocationRecord, logs: Vec<LogLine>);

    /// Resolves `true` once everything recorded before the call is durable,
    /// `false` if that did not happen within `limit` (the disk refuses
    /// writes, the server is unreachable). Used at shutdown and by tests
    /// that need "acknowledged as written".
    fn flush(&self, limit: Duration) -> FlushFuture;

    /// One invocation's record with every field as recorded (times to the
    /// microsecond), or none when it is not kept: never recorded, not yet
    /// written, or pruned.
    fn invocation(&self, id: String) -> LedgerFuture<Option<InvocationRecord>>;

    /// The lines of `query.function` of `query.app` written at or after
    /// `since`, of one invocation when asked: the newest `limit` of them,
    /// oldest first.
    fn logs(&self, query: LogQuery) -> LedgerFuture<Vec<LogLine>>;

    /// The records of `query.function` of `query.app` that `query`
    /// [wants](InvocationQuery::wants), newest first, at most `limit`.
    /// Sampled-out invocations are not among them. A backend may bound
    /// how far back it looks for them (JetStream reads its stream in
    /// widening windows, as for `logs`).
    fn invocations(&self, query: InvocationQuery) -> LedgerFuture<Vec<InvocationRecord>>;

    /// The invocations `caller` made through `.svc` calls — the records
    /// whose `caller` it is — of any app, by start; only those that
    /// started within `from..until` (the caller's own run) are looked for,
    /// at most [`MAX_CALLS`].
    fn calls(
        &self,
        caller: String,
        from: SystemTime,
        until: SystemTime,
    ) -> LedgerFuture<Vec<InvocationRecord>>;

    /// Usage per function of invocations that started at or after `since`
    /// (of one app when asked), priced with the price sheet the backend was
    /// opened with by [`UsageReport::priced`], rows by app then function.
    /// Exact (`invocation` granularity) while raw records cover the period;
    /// from the hourly roll-ups beyond, counting from the top of the hour
    /// `since` falls in. A backend may keep the exact window shorter than
    /// its records (JetStream's is the last hour: exact means reading every
    /// record of the period off the network).
    fn usage(&self, query: UsageQuery) -> LedgerFuture<UsageReport>;

    /// The backend's counters for `/metrics`.
    fn stats(&self) -> &LedgerStats;

    /// The lines `query` asks for as they are written from now on, by
    /// every node writing to this store, for `logs --follow`. `None` (the
    /// default) for a store only this node writes: the node's own recorder
    /// sees each line before any store does, and [`Ledger::follow`] serves
    /// followers from it. A store several nodes write (JetStream) answers
    /// with what it stores, so a follower on one node sees every node's
    /// lines.
    fn follow(&self, query: &LogQuery) -> Option<LedgerFuture<LogFeed>> {
        let _ = query;
        None
    }
}
