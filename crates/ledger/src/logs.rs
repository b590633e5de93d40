//! Reading invocation logs back: `stratus logs` and the admin API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, params};
use stratus_sqlite::{During, SqliteError};
use stratus_storage::{InvocationQuery, InvocationRecord, LogLine, LogQuery, LogStream, MAX_CALLS};

use crate::batch;
use crate::error::DB;
use crate::keys::{from_unix_micros, id_key, time_key, unix_micros};
use crate::store::Reader;
use crate::usage::function_names;

/// How many records one listing of invocations unpacks at most: a
/// function that ran rarely among busy ones is looked for this far back.
const MAX_SCANNED: usize = 1_000_000;

/// Longer than any invocation may run (the largest `timeout` is 15 min).
const LONGEST_INVOCATION: Duration = Duration::from_secs(20 * 60);

impl Reader {
    pub(crate) fn logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, SqliteError> {
        const ACTION: &str = "reading logs";
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT at_us, invocation_id, stream, text FROM log_line
                 WHERE app = ?1 AND function = ?2 AND at_us >= ?3
                   AND (?4 IS NULL OR invocation_id = ?4)
                 ORDER BY seq DESC LIMIT ?5",
            )
            .during(DB, ACTION)?;
        let mut lines = statement
            .query_map(
                params![
                    query.app,
                    query.function,
                    query.since.map(unix_micros).unwrap_or(0),
                    query.invocation,
                    query.limit as i64
                ],
                |row| {
                    Ok(LogLine {
                        at: from_unix_micros(row.get(0)?),
                        invocation_id: row.get(1)?,
                        app: query.app.clone(),
                        function: query.function.clone(),
                        stream: LogStream::parse(&row.get::<_, String>(2)?),
                        text: row.get(3)?,
                    })
                },
            )
            .during(DB, ACTION)?
            .collect::<Result<Vec<_>, _>>()
            .during(DB, ACTION)?;
        lines.reverse();
        Ok(lines)
    }

    /// One invocation's record, if it is still kept.
    pub(crate) fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>, SqliteError> {
        const ACTION: &str = "reading an invocation";
        let key = id_key(id);
        // Its batch was committed after it ended, which is at most the
        // longest timeout after it started: only batches that begin within
        // that window can hold it.
        let window = match key.get(..6) {
            Some(ms) if key.len() == 16 => {
                let mut be = [0u8; 8];
                be[2..].copy_from_slice(ms);
                let started = UNIX_EPOCH + Duration::from_millis(u64::from_be_bytes(be));
                time_key(
                    started
                        .checked_sub(LONGEST_INVOCATION)
                        .unwrap_or(UNIX_EPOCH),
                )
            }
            _ => Vec::new(),
        };
        let conn = self.conn();
        let names = function_names(&conn)?;
        let mut statement = conn
            .prepare_cached(
                "SELECT records FROM invocation_batch
                 WHERE min_id <= ?1 AND max_id >= ?1 AND min_id >= ?2",
            )
            .during(DB, ACTION)?;
        let mut rows = statement.query(params![key, window]).during(DB, ACTION)?;
        while let Some(row) = rows.next().during(DB, ACTION)? {
            let bytes: Vec<u8> = row.get(0).during(DB, ACTION)?;
            let found = batch::unpack(&bytes)
                .into_iter()
                .flatten()
                .find(|p| p.key == key);
            if let Some(p) = found {
                let (app, function) = names.get(&p.function_id).cloned().unwrap_or_default();
                return Ok(Some(InvocationRecord {
                    app,
                    function,
                    ..p.record
                }));
            }
        }
        Ok(None)
    }

    /// A function's records as `query` asks, newest first: batches are
    /// read newest first, and once `limit` records are found, until one
    /// holds nothing that started after the oldest of them.
    pub(crate) fn invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, SqliteError> {
        const ACTION: &str = "listing invocations";
        let conn = self.conn();
        let function_id: Option<i64> = conn
            .query_row(
                "SELECT id FROM function_key WHERE app = ?1 AND function = ?2",
                params![query.app, query.function],
                |row| row.get(0),
            )
            .optional()
            .during(DB, ACTION)?;
        let Some(function_id) = function_id else {
            return Ok(Vec::new());
        };
        let since = time_key(query.since.unwrap_or(UNIX_EPOCH));
        let until = query.until.map_or_else(|| vec![0xff; 16], time_key);
        let mut statement = conn
            .prepare_cached(
                "SELECT records FROM invocation_batch
                 WHERE max_id >= ?1 AND min_id < ?2 ORDER BY seq DESC",
            )
            .during(DB, ACTION)?;
        let mut rows = statement.query(params![since, until]).during(DB, ACTION)?;
        let (mut found, mut scanned) = (Vec::<InvocationRecord>::new(), 0);
        while let Some(row) = rows.next().during(DB, ACTION)? {
            let bytes: Vec<u8> = row.get(0).during(DB, ACTION)?;
            let records = batch::unpack(&bytes).unwrap_or_default();
            scanned += records.len();
            let newest = records.iter().map(|p| p.record.started_at).max();
            if found.len() >= query.limit
                && let Some(newest) = newest
                && found.iter().all(|r| r.started_at > newest)
            {
                break;
            }
            found.extend(
                records
                    .into_iter()
                    .filter(|p| p.function_id == function_id && query.wants(&p.record))
                    .map(|p| InvocationRecord {
                        app: query.app.clone(),
                        function: query.function.clone(),
                        ..p.record
                    }),
            );
            if scanned >= MAX_SCANNED {
                break;
            }
        }
        found.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        found.truncate(query.limit);
        Ok(found)
    }

    /// The records whose caller is `caller`, among those that started
    /// within `from..=until`, by start.
    pub(crate) fn calls(
        &self,
        caller: &str,
        from: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<InvocationRecord>, SqliteError> {
        const ACTION: &str = "reading an invocation's calls";
        let conn = self.conn();
        let names = function_names(&conn)?;
        let (from_key, until_key) = (time_key(from), time_key(until + Duration::from_millis(1)));
        let mut statement = conn
            .prepare_cached(
                "SELECT records FROM invocation_batch
                 WHERE max_id >= ?1 AND min_id < ?2 ORDER BY seq",
            )
            .during(DB, ACTION)?;
        let mut rows = statement
            .query(params![from_key, until_key])
            .during(DB, ACTION)?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().during(DB, ACTION)? {
            let bytes: Vec<u8> = row.get(0).during(DB, ACTION)?;
            for p in batch::unpack(&bytes).unwrap_or_default() {
                if p.record.caller.as_deref() == Some(caller) && found.len() < MAX_CALLS {
                    let (app, function) = names.get(&p.function_id).cloned().unwrap_or_default();
                    found.push(InvocationRecord {
                        app,
                        function,
                        ..p.record
                    });
                }
            }
        }
        found.sort_by_key(|r| r.started_at);
        Ok(found)
    }
}
