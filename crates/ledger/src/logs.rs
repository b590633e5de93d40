//! Reading invocation logs back: `stratus logs` and the admin API.

use std::time::SystemTime;

use rusqlite::params;

use crate::Ledger;
use crate::error::{DbContext, LedgerError};
use crate::record::{
    InvocationRecord, LogLine, LogStream, Trigger, from_unix_micros, id_key, unix_micros,
};

/// Which log lines to read.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub app: String,
    pub function: String,
    pub since: Option<SystemTime>,
    /// Only the lines of this invocation.
    pub invocation: Option<String>,
    /// The newest this many lines (returned oldest first).
    pub limit: usize,
}

impl Ledger {
    pub fn logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, LedgerError> {
        const ACTION: &str = "reading logs";
        let conn = self.reader();
        let mut statement = conn
            .prepare_cached(
                "SELECT at_us, invocation_id, stream, text FROM log_line
                 WHERE app = ?1 AND function = ?2 AND at_us >= ?3
                   AND (?4 IS NULL OR invocation_id = ?4)
                 ORDER BY seq DESC LIMIT ?5",
            )
            .during(ACTION)?;
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
            .during(ACTION)?
            .collect::<Result<Vec<_>, _>>()
            .during(ACTION)?;
        lines.reverse();
        Ok(lines)
    }

    /// One invocation's record, if it is still kept.
    pub fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>, LedgerError> {
        const ACTION: &str = "reading an invocation";
        let conn = self.reader();
        let mut statement = conn
            .prepare_cached(
                "SELECT f.app, f.function, i.version, i.trigger, i.started_us, i.wall_us,
                        i.cpu_us, i.peak_memory, i.bytes_in, i.bytes_out, i.status, i.error, i.cold
                 FROM invocation i JOIN function_key f ON f.id = i.function_id
                 WHERE i.id = ?1",
            )
            .during(ACTION)?;
        let mut rows = statement
            .query_map([id_key(id)], |row| {
                Ok(InvocationRecord {
                    id: id.to_owned(),
                    app: row.get(0)?,
                    function: row.get(1)?,
                    version: row.get(2)?,
                    trigger: if row.get::<_, String>(3)? == "api" {
                        Trigger::Api
                    } else {
                        Trigger::Http
                    },
                    started_at: from_unix_micros(row.get(4)?),
                    wall: std::time::Duration::from_micros(row.get::<_, i64>(5)?.max(0) as u64),
                    cpu: std::time::Duration::from_micros(row.get::<_, i64>(6)?.max(0) as u64),
                    peak_memory: row.get::<_, i64>(7)? as u64,
                    bytes_in: row.get::<_, i64>(8)? as u64,
                    bytes_out: row.get::<_, i64>(9)? as u64,
                    status: row.get(10)?,
                    error: row.get(11)?,
                    cold: row.get(12)?,
                })
            })
            .during(ACTION)?;
        rows.next().transpose().during(ACTION)
    }
}
