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
use super::sampling::{Sampler, Sampling};
use super::usage::{InvocationQuery, LogQuery, UsageQuery, UsageReport};
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
    /// Invocations whose raw record was sampled out (counted in usage,
    /// not stored one by one).
    pub records_sampled: AtomicU64,
    /// Log lines dropped because their app had used its daily budget.
    pub log_lines_over_budget: AtomicU64,
    /// Followers of logs dropped because they stopped reading.
    pub log_followers_dropped: AtomicU64,
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

/// How long a follower may take no line at all, with lines waiting for it,
/// before it is dropped: a client that stopped reading (a stuck terminal, a
/// proxy that buffers) must not hold a task, its lines and, in a cluster, a
/// consumer on the server for ever.
pub const DEFAULT_FOLLOWER_STALL: Duration = Duration::from_secs(30);

struct Shared {
    store: Arc<dyn LedgerStore>,
    log_budget: LogBudget,
    live: broadcast::Sender<Arc<LogLine>>,
    last_errors: LastErrors,
    sampler: Sampler,
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
    /// its lines for the store: its raw record ([`LedgerStore::record`])
    /// unless sampled out, when it is only counted
    /// ([`LedgerStore::count`]).
    pub fn record(&self, record: InvocationRecord, mut logs: Vec<LogLine>) {
        let shared = &self.shared;
        shared.last_errors.note(&record);
        let now = SystemTime::now();
        let over = shared.log_budget.admit(&mut logs, now);
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
        if shared.sampler.keep(&record, now) {
            shared.store.record(record, logs);
        } else {
            let stats = shared.store.stats();
            stats.records_sampled.fetch_add(1, Ordering::Relaxed);
            shared.store.count(record, logs);
        }
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
    /// [`DEFAULT_FOLLOWER_STALL`] unless set.
    follower_stall: std::sync::Mutex<Duration>,
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
                    sampler: Sampler::default(),
                }),
            },
            follower_stall: std::sync::Mutex::new(DEFAULT_FOLLOWER_STALL),
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

    /// Which raw records are kept past a rate per function (see
    /// [`Sampling`]).
    pub fn set_sampling(&self, sampling: Sampling) {
        self.recorder.shared.sampler.set(sampling);
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

    /// See [`LedgerStore::calls`].
    pub fn calls(
        &self,
        caller: String,
        from: SystemTime,
        until: SystemTime,
    ) -> LedgerFuture<Vec<InvocationRecord>> {
        self.store().calls(caller, from, until)
    }

    /// See [`LedgerStore::invocations`].
    pub fn invocations(&self, query: InvocationQuery) -> LedgerFuture<Vec<InvocationRecord>> {
        self.store().invocations(query)
    }

    /// How long a follower of logs may stop reading before it is dropped
    /// ([`DEFAULT_FOLLOWER_STALL`] unless set).
    pub fn set_follower_stall(&self, stall: Duration) {
        *self
            .follower_stall
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stall;
    }

    /// The lines `query` asks for as they are written from now on: from
    /// the store when it is shared by several nodes
    /// ([`LedgerStore::follow`]), else from this node's recorder. Lines
    /// recorded after this call returns are not missed. A follower that
    /// takes nothing for the stall bound while lines wait for it is
    /// dropped (its feed ends, counted in
    /// [`LedgerStats::log_followers_dropped`]). Must be called within a
    /// Tokio runtime.
    pub fn follow(&self, query: LogQuery) -> LedgerFuture<LogFeed> {
        let source = match self.store().follow(&query) {
            Some(feed) => feed,
            None => self.follow_recorder(query),
        };
        let stall = *self
            .follower_stall
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let store = self.store().clone();
        Box::pin(async move {
            let mut source = source.await?;
            let (tx, rx) = mpsc::channel(FEED_CAPACITY);
            // The one place a follower's pace is watched, whatever feeds
            // it: dropping `source` ends the feeding task behind it.
            tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        _ = tx.closed() => return,
                        next = source.recv() => next,
                    };
                    let Some(item) = next else { return };
                    match tokio::time::timeout(stall, tx.send(item)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            store
                                .stats()
                                .log_followers_dropped
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::info!(
                                stall_s = stall.as_secs_f64(),
                                "dropped a follower of logs that stopped reading"
                            );
                            return;
                        }
                    }
                }
            });
            Ok(rx)
        })
    }

    /// This node's lines as its recorder sees them.
    fn follow_recorder(&self, query: LogQuery) -> LedgerFuture<LogFeed> {
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
