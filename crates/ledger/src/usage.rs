//! Usage and cost: what `stratus usage` and `GET /v1/usage` report.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};
use stratus_sqlite::{During, SqliteError};
use stratus_storage::{UsageQuery, UsageReport, UsageSums};

use crate::batch;
use crate::error::DB;
use crate::keys::{time_key, unix_micros};
use crate::store::Reader;

type ByFunction = BTreeMap<(String, String), UsageSums>;

impl Reader {
    /// Usage per function over the period asked for.
    pub(crate) fn usage(&self, query: &UsageQuery) -> Result<UsageReport, SqliteError> {
        let now = SystemTime::now();
        let raw_from = now.checked_sub(self.retention.records);
        let exact = match (query.since, raw_from) {
            (Some(since), Some(from)) => since >= from && self.whole_since(since)?,
            (Some(since), None) => self.whole_since(since)?,
            (None, _) => false,
        } && !self.sampled_since(query.since, query.app.as_deref())?;
        let since = query.since.unwrap_or(SystemTime::UNIX_EPOCH);
        let sums = if exact {
            self.sum_records(since, query.app.as_deref())?
        } else {
            self.sum_hours(since, query.app.as_deref())?
        };
        Ok(UsageReport::priced(query.since, exact, &self.prices, sums))
    }

    /// Whether no raw record of an invocation since `since` was deleted to
    /// keep the file within its size.
    fn whole_since(&self, since: SystemTime) -> Result<bool, SqliteError> {
        let trimmed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT value FROM ledger_meta WHERE key = 'trimmed_through'",
                [],
                |row| row.get(0),
            )
            .optional()
            .during(DB, "reading usage")?;
        Ok(trimmed.is_none_or(|through| through < time_key(since)))
    }

    /// Whether any invocation of the hours from the one `since` falls in
    /// had its raw record sampled out: then the records do not add up to
    /// the totals, and the hourly roll-ups are read instead.
    fn sampled_since(
        &self,
        since: Option<SystemTime>,
        app: Option<&str>,
    ) -> Result<bool, SqliteError> {
        let Some(since) = since else {
            return Ok(false);
        };
        self.conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM usage_hourly
                 WHERE hour >= ?1 / 3600000000 AND (?2 IS NULL OR app = ?2) AND sampled > 0)",
            )
            .and_then(|mut s| s.query_row(params![unix_micros(since), app], |row| row.get(0)))
            .during(DB, "reading usage")
    }

    /// Exact sums from the raw records of invocations since `since`.
    fn sum_records(&self, since: SystemTime, app: Option<&str>) -> Result<ByFunction, SqliteError> {
        const ACTION: &str = "reading invocation records";
        let from = time_key(since);
        let conn = self.conn();
        let names = function_names(&conn)?;
        let mut statement = conn
            .prepare_cached("SELECT records FROM invocation_batch WHERE max_id >= ?1")
            .during(DB, ACTION)?;
        let mut rows = statement.query([&from]).during(DB, ACTION)?;
        let mut sums = ByFunction::new();
        while let Some(row) = rows.next().during(DB, ACTION)? {
            let bytes: Vec<u8> = row.get(0).during(DB, ACTION)?;
            let Some(records) = batch::unpack(&bytes) else {
                tracing::warn!("skipping a damaged batch of invocation records");
                continue;
            };
            for p in records.into_iter().filter(|p| p.key >= from) {
                let Some((a, f)) = names.get(&p.function_id) else {
                    continue;
                };
                if app.is_some_and(|wanted| wanted != a) {
                    continue;
                }
                sums.entry((a.clone(), f.clone()))
                    .or_default()
                    .add(&p.record);
            }
        }
        Ok(sums)
    }

    /// Sums from the hourly roll-ups, from the hour `since` falls in.
    fn sum_hours(&self, since: SystemTime, app: Option<&str>) -> Result<ByFunction, SqliteError> {
        const ACTION: &str = "reading usage";
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT app, function, SUM(requests), SUM(errors), SUM(cold_starts), SUM(mib_ms),
                        SUM(cpu_us), SUM(wall_us), SUM(bytes_in), SUM(bytes_out), SUM(sampled)
                 FROM usage_hourly
                 WHERE hour >= ?1 / 3600000000 AND (?2 IS NULL OR app = ?2)
                 GROUP BY app, function",
            )
            .during(DB, ACTION)?;
        let rows = statement
            .query_map(params![unix_micros(since), app], |row| {
                Ok((
                    (row.get(0)?, row.get(1)?),
                    UsageSums {
                        requests: row.get(2)?,
                        errors: row.get(3)?,
                        cold_starts: row.get(4)?,
                        mib_ms: row.get(5)?,
                        cpu_us: row.get(6)?,
                        wall_us: row.get(7)?,
                        bytes_in: row.get(8)?,
                        bytes_out: row.get(9)?,
                        sampled: row.get(10)?,
                    },
                ))
            })
            .during(DB, ACTION)?;
        rows.collect::<Result<ByFunction, _>>().during(DB, ACTION)
    }
}

/// `function_key` numbers to `(app, function)`.
pub(crate) fn function_names(
    conn: &rusqlite::Connection,
) -> Result<HashMap<i64, (String, String)>, SqliteError> {
    const ACTION: &str = "reading function names";
    let mut statement = conn
        .prepare_cached("SELECT id, app, function FROM function_key")
        .during(DB, ACTION)?;
    let names = statement
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
        .during(DB, ACTION)?
        .collect::<Result<HashMap<_, _>, _>>()
        .during(DB, ACTION)?;
    Ok(names)
}
