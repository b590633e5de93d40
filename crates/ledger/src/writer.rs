//! The writer thread that commits records in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, params};
use stratus_sqlite::{Batcher, During, SqliteError};
use stratus_storage::{InvocationRecord, LedgerStats, LogLine, Retention, UsageSums};
use tokio::sync::oneshot;

use crate::batch;
use crate::error::DB;
use crate::keys::{id_key, time_key, unix_micros};

/// How long the writer gathers records before committing them together. It
/// bounds how long a record waits to be durable, and makes the number of
/// fsyncs per second independent of the request rate.
const COMMIT_INTERVAL: Duration = Duration::from_millis(20);
/// The most records one transaction takes; more wait for the next one.
pub(crate) const MAX_BATCH: usize = 8192;
/// Records held in memory while the disk refuses writes (full, read-only)
/// before the oldest are dropped (and counted), so a broken disk cannot
/// grow the node's memory: a record with its lines is a few hundred bytes,
/// so this holds some tens of megabytes, seconds of a busy node's records
/// (the same bound as a cluster node's while NATS is away).
pub(crate) const MAX_PENDING: usize = 100_000;
/// How long to wait before retrying a failed write.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often old rows are pruned.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Rows deleted per statement while pruning, so records never wait long.
const PRUNE_CHUNK: i64 = 10_000;
/// How often the file is held to its budget: every second (three pragmas
/// when within it), because a busy node writes a few megabytes of records
/// and logs a second and the file grows past its budget by what comes in
/// between.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(1);
/// Batches of raw records, and log lines, deleted per round of trimming.
const TRIM_BATCHES: i64 = 8;
const TRIM_LINES: i64 = 20_000;

pub(crate) enum Entry {
    Invocation(Box<InvocationRecord>, Vec<LogLine>),
    /// An invocation whose raw record was sampled out: in the roll-ups
    /// and its lines kept, but not packed.
    Counted(Box<InvocationRecord>, Vec<LogLine>),
    /// Answered once everything sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// The ledger's writer. Nobody waits on a record, so a batch lingers for
/// [`COMMIT_INTERVAL`] to gather more (one fsync for all of them) unless a
/// flush is waiting. Records that cannot be written stay in memory, up to
/// [`MAX_PENDING`], and are retried.
pub(crate) struct LedgerWriter {
    pub(crate) stats: Arc<LedgerStats>,
    pub(crate) retention: Retention,
    pub(crate) function_ids: FunctionIds,
    /// Answered once every record sent before them is written.
    pub(crate) flushes: Vec<oneshot::Sender<()>>,
    /// When the file was last held to `retention.max_bytes`.
    pub(crate) last_trim: Option<std::time::Instant>,
}

impl Batcher for LedgerWriter {
    type Op = Entry;

    fn linger(&self, pending: &[Entry]) -> Duration {
        let flushing =
            !self.flushes.is_empty() || pending.iter().any(|e| matches!(e, Entry::Flush(_)));
        if flushing {
            Duration::ZERO
        } else {
            COMMIT_INTERVAL
        }
    }

    fn apply(&mut self, conn: &mut Connection, pending: &mut Vec<Entry>) -> bool {
        let stats = &self.stats;
        let mut wrote = true;
        for entry in pending.extract_if(.., |e| matches!(e, Entry::Flush(_))) {
            if let Entry::Flush(done) = entry {
                self.flushes.push(done);
            }
        }
        if !pending.is_empty() {
            let take = pending.len().min(MAX_BATCH);
            match write_batch(conn, &pending[..take], &mut self.function_ids, stats) {
                Ok(()) => {
                    pending.drain(..take);
                    stats.note_write(None);
                }
                Err(e) => {
                    wrote = false;
                    // Ids handed out inside the failed transaction are gone.
                    self.function_ids.clear();
                    stats.write_failures.fetch_add(1, Ordering::Relaxed);
                    stats.note_write(Some(format!("{e} ({} records held)", pending.len())));
                    tracing::error!(
                        "cannot write {} invocation records (kept in memory, retrying): {e}",
                        pending.len()
                    );
                    if pending.len() > MAX_PENDING {
                        let excess = pending.len() - MAX_PENDING;
                        pending.drain(..excess);
                        stats
                            .records_dropped
                            .fetch_add(excess as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        if pending.is_empty() {
            for done in self.flushes.drain(..) {
                let _ = done.send(());
            }
        }
        if self.last_trim.is_none_or(|at| at.elapsed() >= TRIM_EVERY) {
            self.last_trim = Some(std::time::Instant::now());
            if let Err(e) = trim(conn, self.retention.max_bytes) {
                tracing::warn!("cannot hold the ledger to its size: {e}");
            }
        }
        wrote
    }

    fn maintain(&mut self, conn: &mut Connection) {
        if let Err(e) = prune(conn, self.retention, SystemTime::now()) {
            tracing::warn!("cannot prune the ledger: {e}");
        }
    }

    /// Writes everything still pending, batch by batch, until done or a
    /// write fails.
    fn close(&mut self, conn: &mut Connection, pending: &mut Vec<Entry>) {
        while !pending.is_empty() && self.apply(conn, pending) {}
    }
}

/// Numbers of `(app, function)` in `function_key`, as known to the writer,
/// by app then function (so a lookup needs no allocation).
pub(crate) type FunctionIds = HashMap<String, HashMap<String, i64>>;

fn function_id(
    tx: &rusqlite::Transaction<'_>,
    ids: &mut FunctionIds,
    app: &str,
    function: &str,
) -> Result<i64, rusqlite::Error> {
    if let Some(id) = ids.get(app).and_then(|functions| functions.get(function)) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO function_key (app, function) VALUES (?1, ?2)")?
        .execute(params![app, function])?;
    let id = tx
        .prepare_cached("SELECT id FROM function_key WHERE app = ?1 AND function = ?2")?
        .query_row(params![app, function], |row| row.get(0))?;
    ids.entry(app.to_owned())
        .or_default()
        .insert(function.to_owned(), id);
    Ok(id)
}

/// Writes the records of `batch` (flushes taken out) in one transaction.
fn write_batch(
    conn: &mut Connection,
    batch: &[Entry],
    function_ids: &mut FunctionIds,
    stats: &LedgerStats,
) -> Result<(), SqliteError> {
    const ACTION: &str = "writing invocation records";
    let tx = conn.transaction().during(DB, ACTION)?;
    let mut rollups: HashMap<(i64, &str, &str), UsageSums> = HashMap::new();
    let (mut lines, mut kept) = (0u64, 0u64);
    let mut packed = Vec::with_capacity(batch.len() * 96);
    let (mut min_id, mut max_id): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    {
        let mut insert_line = tx
            .prepare_cached(
                "INSERT INTO log_line (at_us, invocation_id, app, function, stream, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .during(DB, ACTION)?;
        for entry in batch {
            let (r, logs, keep) = match entry {
                Entry::Invocation(r, logs) => (r, logs, true),
                Entry::Counted(r, logs) => (r, logs, false),
                Entry::Flush(_) => continue,
            };
            let hour = unix_micros(r.started_at).div_euclid(3_600_000_000);
            let sums = rollups
                .entry((hour, r.app.as_str(), r.function.as_str()))
                .or_default();
            if keep {
                sums.add(r);
                let function =
                    function_id(&tx, function_ids, &r.app, &r.function).during(DB, ACTION)?;
                batch::push(&mut packed, function, r);
                kept += 1;
                let key = id_key(&r.id);
                if min_id.as_ref().is_none_or(|min| key < *min) {
                    min_id = Some(key.clone());
                }
                if max_id.as_ref().is_none_or(|max| key > *max) {
                    max_id = Some(key);
                }
            } else {
                sums.add_sampled(r);
            }
            for line in logs {
                insert_line
                    .execute(params![
                        unix_micros(line.at),
                        line.invocation_id,
                        line.app,
                        line.function,
                        line.stream.as_str(),
                        line.text,
                    ])
                    .during(DB, ACTION)?;
                lines += 1;
            }
        }
        if let (Some(min_id), Some(max_id)) = (&min_id, &max_id) {
            tx.prepare_cached(
                "INSERT INTO invocation_batch (min_id, max_id, count, records)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .during(DB, ACTION)?
            .execute(params![min_id, max_id, kept as i64, packed])
            .during(DB, ACTION)?;
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO usage_hourly (hour, app, function, requests, errors, cold_starts,
                 mib_ms, cpu_us, wall_us, bytes_in, bytes_out, sampled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (hour, app, function) DO UPDATE SET
                   requests = requests + excluded.requests,
                   errors = errors + excluded.errors,
                   cold_starts = cold_starts + excluded.cold_starts,
                   mib_ms = mib_ms + excluded.mib_ms,
                   cpu_us = cpu_us + excluded.cpu_us,
                   wall_us = wall_us + excluded.wall_us,
                   bytes_in = bytes_in + excluded.bytes_in,
                   bytes_out = bytes_out + excluded.bytes_out,
                   sampled = sampled + excluded.sampled",
            )
            .during(DB, ACTION)?;
        for ((hour, app, function), a) in &rollups {
            upsert
                .execute(params![
                    hour,
                    app,
                    function,
                    a.requests,
                    a.errors,
                    a.cold_starts,
                    a.mib_ms,
                    a.cpu_us,
                    a.wall_us,
                    a.bytes_in,
                    a.bytes_out,
                    a.sampled
                ])
                .during(DB, ACTION)?;
        }
    }
    tx.commit().during(DB, ACTION)?;
    stats.records_written.fetch_add(kept, Ordering::Relaxed);
    stats.log_lines_written.fetch_add(lines, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Deletes what is older than the retention allows, a chunk at a time.
pub(crate) fn prune(
    conn: &Connection,
    retention: Retention,
    now: SystemTime,
) -> Result<u64, SqliteError> {
    let before = |keep: Duration| now.checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH);
    let statements: [(&str, rusqlite::types::Value); 2] = [
        (
            "DELETE FROM invocation_batch WHERE seq IN
             (SELECT seq FROM invocation_batch WHERE max_id < ?1 LIMIT ?2)",
            time_key(before(retention.records)).into(),
        ),
        (
            "DELETE FROM log_line WHERE seq IN
             (SELECT seq FROM log_line WHERE at_us < ?1 LIMIT ?2)",
            unix_micros(before(retention.logs)).into(),
        ),
    ];
    let mut total = 0u64;
    for (sql, cutoff) in statements {
        loop {
            let deleted = conn
                .execute(sql, params![cutoff, PRUNE_CHUNK])
                .during(DB, "pruning old records")?;
            total += deleted as u64;
            if (deleted as i64) < PRUNE_CHUNK {
                break;
            }
        }
    }
    // One row per function and hour: small enough to delete in one go.
    total += conn
        .execute(
            "DELETE FROM usage_hourly WHERE hour < ?1",
            [unix_micros(before(retention.usage)).div_euclid(3_600_000_000)],
        )
        .during(DB, "pruning old usage")? as u64;
    if total > 0 {
        tracing::info!(rows = total, "pruned ledger rows past their retention");
    }
    Ok(total)
}

/// The bytes the ledger's pages hold (free pages left out: they are
/// written again before the file grows).
pub(crate) fn used_bytes(conn: &Connection) -> Result<u64, SqliteError> {
    let pragma = |name: &str| -> Result<i64, SqliteError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .during(DB, "measuring the ledger")
    };
    let used = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// Deletes the oldest raw records and log lines, whatever their age, until
/// they take at most nine tenths of `max_bytes`, and remembers the largest
/// id it deleted (`ledger_meta.trimmed_through`) so usage reads hourly
/// roll-ups for periods the raw records no longer cover. Answers the rows
/// deleted.
pub(crate) fn trim(conn: &Connection, max_bytes: u64) -> Result<u64, SqliteError> {
    const ACTION: &str = "holding the ledger to its size";
    if used_bytes(conn)? <= max_bytes {
        return Ok(0);
    }
    let target = max_bytes / 10 * 9;
    let mut total = 0u64;
    loop {
        conn.execute(
            "INSERT INTO ledger_meta (key, value)
             SELECT 'trimmed_through', max(max_id) FROM
                (SELECT max_id FROM invocation_batch ORDER BY seq LIMIT ?1)
             WHERE EXISTS (SELECT 1 FROM invocation_batch)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [TRIM_BATCHES],
        )
        .during(DB, ACTION)?;
        let batches = conn
            .execute(
                "DELETE FROM invocation_batch WHERE seq IN
                 (SELECT seq FROM invocation_batch ORDER BY seq LIMIT ?1)",
                [TRIM_BATCHES],
            )
            .during(DB, ACTION)?;
        let lines = conn
            .execute(
                "DELETE FROM log_line WHERE seq IN
                 (SELECT seq FROM log_line ORDER BY seq LIMIT ?1)",
                [TRIM_LINES],
            )
            .during(DB, ACTION)?;
        total += (batches + lines) as u64;
        if batches + lines == 0 || used_bytes(conn)? <= target {
            break;
        }
    }
    tracing::info!(
        rows = total,
        max_bytes,
        "deleted the oldest invocation records and log lines to keep the ledger within its size"
    );
    Ok(total)
}
