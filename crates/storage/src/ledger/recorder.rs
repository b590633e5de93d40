//! What the node keeps in memory in front of its ledger, whatever stores
//! it: the recorder the request path calls, the daily log budget per app,
//! the newest failure of each function, and log lines as they are
//! recorded, for those following them live.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};

use super::last_errors::{LastError, LastErrors};
use super::log_budget::LogBudget;
use super::record::{InvocationRecord, LogLine};
use super::usage::{LogQuery, UsageQuery, UsageReport};
use super::{FlushFuture, LedgerFuture, LedgerStore};

/// Counters for `/metrics`: the backend counts what it wrote, batched,
/// failed and gave up on; the recorder counts the lines it dropped over
/// budget.
#[derive(Debug, Default)]
pub struct LedgerStats {
    pub records_written: AtomicU64,
    pub log_lines_written: AtomicU64,
    pub batches: AtomicU64,
    pub write_failures: AtomicU64,
    pub records_dropped: AtomicU64,
    /// Log lines dropped because their app had used its daily budget.
    pub log_lines_over_budget: AtomicU64,
    /// Why the last write failed, while writes fail (a full disk, a
    /// cluster's NATS out of reach): what `/readyz` shows.
    failing: std::sync::Mutex<Option<String>>,
}

impl LedgerStats {
    /// Notes how the last write went: `Some(why)` when it failed, `None`
    /// when it succeeded.
    pub fn note_write(&self, failure: Option<String>) {
        if let Ok(mut failing) = self.failing.lock() {
            *failing = failure;
        }
    }

    /// Why writes fail, while they do.
    pub fn failing(&self) -> Option<String> {
        self.failing.lock().ok().and_then(|f| f.clone())
    }
}

/// Log lines held for followers that fall behind before they miss some.
const LIVE_CAPACITY: usize = 4096;

/// What a follower of logs receives.
#[derive(Debug, Clone)]
pub enum LiveLog {
    Line(Arc<LogLine>),
    /// This many lines went by while the follower was behind.
    Skipped(u64),
}

/// New log lines for one follower, until it drops the receiver.
pub type LogFeed = mpsc::Receiver<LiveLog>;

/// Lines a feed holds for a follower that reads slower than they come.
const FEED_CAPACITY: usize = 256;

struct Shared {
    store: Arc<dyn LedgerStore>,
    log_budget: LogBudget,
    live: broadcast::Sender<Arc<LogLine>>,
    last_errors: LastErrors,
}

/// Hands invocation records to the ledger's store. Cheap to clone; never
/// blocks, never fails the request it is called from.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Remembers a failure, holds the lines to their app's budget, shows
    /// them to anyone following logs live, and queues the invocation and
    /// its lines for the store ([`LedgerStore::record`]).
    pub fn record(&self, record: InvocationRecord, mut logs: Vec<LogLine>) {
        let shared = &self.shared;
        shared.last_errors.note(&record);
        let over = shared.log_budget.admit(&mut logs, SystemTime::now());
        if over > 0 {
            shared
                .store
                .stats()
                .log_lines_over_budget
                .fetch_add(over, Ordering::Relaxed);
        }
        if !logs.is_empty() && shared.live.receiver_count() > 0 {
            for line in &logs {
                let _ = shared.live.send(Arc::new(line.clone()));
            }
        }
        shared.store.record(record, logs);
    }

    /// Log lines as they are recorded, for `logs --follow`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.shared.live.subscribe()
    }

    pub fn stats(&self) -> &LedgerStats {
        self.shared.store.stats()
    }
}

/// The ledger of one node: its store and what is kept in memory in front
/// of it.
pub struct Ledger {
    recorder: Recorder,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("store", &self.recorder.shared.store.kind())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    pub fn new(store: Arc<dyn LedgerStore>) -> Ledger {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Ledger {
            recorder: Recorder {
                shared: Arc::new(Shared {
                    store,
                    log_budget: LogBudget::default(),
                    live,
                    last_errors: LastErrors::default(),
                }),
            },
        }
    }

    /// The most log bytes one app may keep per day (UTC); past it its
    /// lines are dropped and counted.
    pub fn set_log_budget(&self, bytes_per_app_day: u64) {
        self.recorder
            .shared
            .log_budget
            .set_per_day(bytes_per_app_day);
    }

    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// The newest failed invocation of a function since the node started.
    pub fn last_error(&self, app: &str, function: &str) -> Option<LastError> {
        self.recorder.shared.last_errors.get(app, function)
    }

    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.recorder.shared.store
    }

    /// See [`LedgerStore::flush`].
    pub fn flush(&self, limit: Duration) -> FlushFuture {
        self.store().flush(limit)
    }

    /// See [`LedgerStore::invocation`].
    pub fn invocation(&self, id: String) -> LedgerFuture<Option<InvocationRecord>> {
        self.store().invocation(id)
    }

    /// See [`LedgerStore::logs`].
    pub fn logs(&self, query: LogQuery) -> LedgerFuture<Vec<LogLine>> {
        self.store().logs(query)
    }

    /// The lines `query` asks for as they are written from now on: from
    /// the store when it is shared by several nodes
    /// ([`LedgerStore::follow`]), else from this node's recorder. Lines
    /// recorded after this call returns are not missed. Must be called
    /// within a Tokio runtime.
    pub fn follow(&self, query: LogQuery) -> LedgerFuture<LogFeed> {
        if let Some(feed) = self.store().follow(&query) {
            return feed;
        }
        // Subscribed now, not when the future is first polled.
        let mut live = self.recorder.subscribe();
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    next = live.recv() => next,
                };
                let item = match next {
                    Ok(line) if query.wants(&line) => LiveLog::Line(line),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => LiveLog::Skipped(n),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Box::pin(async move { Ok(rx) })
    }

    /// See [`LedgerStore::usage`].
    pub fn usage(&self, query: UsageQuery) -> LedgerFuture<UsageReport> {
        self.store().usage(query)
    }
}
