//! The ledger in SQLite: the store the node opens by default.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use stratus_sqlite::{SqliteError, WriterConfig, spawn_writer};
use stratus_storage::{
    FlushFuture, InvocationQuery, InvocationRecord, LedgerError, LedgerFuture, LedgerStats,
    LedgerStore, LogLine, LogQuery, PriceSheet, Retention, UsageQuery, UsageReport,
};
use tokio::sync::oneshot;

use crate::error::WriterThread;
use crate::schema;
use crate::writer::{Entry, LedgerWriter, MAX_BATCH, PRUNE_EVERY, RETRY_AFTER};

/// The ledger of one node in `ledger.sqlite`. Records go over a channel to
/// the writer thread, which commits what has gathered in one transaction;
/// reads use their own connection on the blocking pool.
pub struct SqliteLedger {
    path: PathBuf,
    tx: mpsc::Sender<Entry>,
    reader: Arc<Reader>,
    stats: Arc<LedgerStats>,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The read connection, and what reads need to know.
pub(crate) struct Reader {
    conn: Mutex<Connection>,
    pub(crate) retention: Retention,
    pub(crate) prices: PriceSheet,
}

impl Reader {
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // Reads hold no transaction across a panic; a poisoned lock is fine.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SqliteLedger {
    /// The ledger's file within a data directory.
    pub const FILE: &'static str = "ledger.sqlite";

    /// Opens (creating or migrating) the ledger at `path` and starts its
    /// writer thread, which prunes what is past `retention`; usage is
    /// priced with `prices`.
    pub fn open(
        path: &Path,
        retention: Retention,
        prices: PriceSheet,
    ) -> Result<SqliteLedger, LedgerError> {
        let writer = schema::open(path).map_err(LedgerError::backend)?;
        let reader = stratus_sqlite::open(path, false).map_err(LedgerError::backend)?;
        let stats = Arc::new(LedgerStats::default());
        let batcher = LedgerWriter {
            stats: stats.clone(),
            retention,
            function_ids: Default::default(),
            flushes: Vec::new(),
            last_trim: None,
        };
        let config = WriterConfig {
            thread_name: "stratus-ledger",
            max_batch: MAX_BATCH,
            retry_after: RETRY_AFTER,
            maintain_every: PRUNE_EVERY,
        };
        let tx = spawn_writer(writer, batcher, config)
            .map_err(|e| LedgerError::backend(WriterThread(e)))?;
        Ok(SqliteLedger {
            path: path.to_path_buf(),
            tx,
            reader: Arc::new(Reader {
                conn: Mutex::new(reader),
                retention,
                prices,
            }),
            stats,
        })
    }

    /// Hands an invocation to the writer thread.
    fn send(&self, entry: Entry) {
        if self.tx.send(entry).is_err() {
            // Only after the writer thread died, which it does not do
            // short of a panic; count it rather than lose it silently.
            self.stats.records_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `work` with the read connection on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Reader) -> Result<T, SqliteError> + Send + 'static,
    ) -> LedgerFuture<T> {
        let reader = self.reader.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&reader))
                .await
                .map_err(LedgerError::backend)?
                .map_err(LedgerError::backend)
        })
    }
}

impl LedgerStore for SqliteLedger {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn record(&self, record: InvocationRecord, logs: Vec<LogLine>) {
        self.send(Entry::Invocation(Box::new(record), logs));
    }

    fn count(&self, record: InvocationRecord, logs: Vec<LogLine>) {
        self.send(Entry::Counted(Box::new(record), logs));
    }

    fn flush(&self, limit: Duration) -> FlushFuture {
        let (done, written) = oneshot::channel();
        let sent = self.tx.send(Entry::Flush(done)).is_ok();
        Box::pin(
            async move { sent && matches!(tokio::time::timeout(limit, written).await, Ok(Ok(()))) },
        )
    }

    fn invocation(&self, id: String) -> LedgerFuture<Option<InvocationRecord>> {
        self.read(move |reader| reader.invocation(&id))
    }

    fn logs(&self, query: LogQuery) -> LedgerFuture<Vec<LogLine>> {
        self.read(move |reader| reader.logs(&query))
    }

    fn invocations(&self, query: InvocationQuery) -> LedgerFuture<Vec<InvocationRecord>> {
        self.read(move |reader| reader.invocations(&query))
    }

    fn calls(
        &self,
        caller: String,
        from: SystemTime,
        until: SystemTime,
    ) -> LedgerFuture<Vec<InvocationRecord>> {
        self.read(move |reader| reader.calls(&caller, from, until))
    }

    fn usage(&self, query: UsageQuery) -> LedgerFuture<UsageReport> {
        self.read(move |reader| reader.usage(&query))
    }

    fn stats(&self) -> &LedgerStats {
        &self.stats
    }
}
