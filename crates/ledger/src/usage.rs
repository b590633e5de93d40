//! Usage and cost: what `stratus usage` and `GET /v1/usage` report.

use std::time::SystemTime;

use rusqlite::params;
use serde::Serialize;

use crate::Ledger;
use crate::error::{DbContext, LedgerError};
use crate::record::{format_time, time_key, unix_micros};

/// What compute costs. The defaults are the public AWS Lambda x86 list
/// price, so users can compare a Stratus bill with a Lambda one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceSheet {
    pub currency: String,
    /// Per GB-second of peak memory × billed duration.
    pub per_gb_second: f64,
    /// Per million invocations.
    pub per_million_requests: f64,
}

impl Default for PriceSheet {
    fn default() -> Self {
        PriceSheet {
            currency: "USD".into(),
            per_gb_second: 0.000_016_666_7,
            per_million_requests: 0.20,
        }
    }
}

impl PriceSheet {
    fn cost(&self, requests: u64, gb_seconds: f64) -> f64 {
        requests as f64 * self.per_million_requests / 1e6 + gb_seconds * self.per_gb_second
    }
}

/// Which usage to report.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub app: Option<String>,
    /// Only invocations that started at or after this time.
    pub since: Option<SystemTime>,
}

/// Usage of one function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    pub app: String,
    pub function: String,
    pub requests: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub gb_seconds: f64,
    pub cpu_seconds: f64,
    pub duration_seconds: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    /// The start of the period, when one was asked for.
    pub since: Option<String>,
    /// `invocation` when the period is covered by raw records (exact);
    /// `hour` when it reaches back past them and hourly roll-ups were used
    /// (the period then starts at the top of the hour `since` falls in).
    pub granularity: &'static str,
    pub prices: PriceSheet,
    pub functions: Vec<UsageRow>,
    pub total: UsageRow,
}

/// Billed GB-seconds from the summed MiB × milliseconds.
fn gb_seconds(mib_ms: i64) -> f64 {
    mib_ms as f64 / 1024.0 / 1000.0
}

impl Ledger {
    /// Usage per function over the period asked for.
    pub fn usage(&self, query: &UsageQuery) -> Result<UsageReport, LedgerError> {
        const ACTION: &str = "reading usage";
        let now = SystemTime::now();
        let raw_from = now.checked_sub(self.retention.records);
        let exact = match (query.since, raw_from) {
            (Some(since), Some(from)) => since >= from,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let since = query.since.unwrap_or(SystemTime::UNIX_EPOCH);
        let from: rusqlite::types::Value = if exact {
            time_key(since).into()
        } else {
            unix_micros(since).into()
        };
        let sql = if exact {
            "SELECT f.app, f.function, COUNT(*), SUM(i.error IS NOT NULL), SUM(i.cold),
                    SUM(MAX(1, (i.peak_memory + 1048575) / 1048576) * MAX(1, (i.wall_us + 999) / 1000)),
                    SUM(i.cpu_us), SUM(i.wall_us), SUM(i.bytes_in), SUM(i.bytes_out)
             FROM invocation i JOIN function_key f ON f.id = i.function_id
             WHERE i.id >= ?1 AND (?2 IS NULL OR f.app = ?2)
             GROUP BY f.app, f.function ORDER BY f.app, f.function"
        } else {
            "SELECT app, function, SUM(requests), SUM(errors), SUM(cold_starts), SUM(mib_ms),
                    SUM(cpu_us), SUM(wall_us), SUM(bytes_in), SUM(bytes_out)
             FROM usage_hourly
             WHERE hour >= ?1 / 3600000000 AND (?2 IS NULL OR app = ?2)
             GROUP BY app, function ORDER BY app, function"
        };
        let conn = self.reader();
        let mut statement = conn.prepare_cached(sql).during(ACTION)?;
        let prices = &self.prices;
        let rows = statement
            .query_map(params![from, query.app], |row| {
                let requests: i64 = row.get(2)?;
                let gb_s = gb_seconds(row.get(5)?);
                Ok(UsageRow {
                    app: row.get(0)?,
                    function: row.get(1)?,
                    requests: requests as u64,
                    errors: row.get::<_, i64>(3)? as u64,
                    cold_starts: row.get::<_, i64>(4)? as u64,
                    gb_seconds: gb_s,
                    cpu_seconds: row.get::<_, i64>(6)? as f64 / 1e6,
                    duration_seconds: row.get::<_, i64>(7)? as f64 / 1e6,
                    bytes_in: row.get::<_, i64>(8)? as u64,
                    bytes_out: row.get::<_, i64>(9)? as u64,
                    cost: prices.cost(requests as u64, gb_s),
                })
            })
            .during(ACTION)?
            .collect::<Result<Vec<_>, _>>()
            .during(ACTION)?;
        let mut total = UsageRow {
            app: String::new(),
            function: String::new(),
            requests: 0,
            errors: 0,
            cold_starts: 0,
            gb_seconds: 0.0,
            cpu_seconds: 0.0,
            duration_seconds: 0.0,
            bytes_in: 0,
            bytes_out: 0,
            cost: 0.0,
        };
        for row in &rows {
            total.requests += row.requests;
            total.errors += row.errors;
            total.cold_starts += row.cold_starts;
            total.gb_seconds += row.gb_seconds;
            total.cpu_seconds += row.cpu_seconds;
            total.duration_seconds += row.duration_seconds;
            total.bytes_in += row.bytes_in;
            total.bytes_out += row.bytes_out;
            total.cost += row.cost;
        }
        Ok(UsageReport {
            since: query.since.map(format_time),
            granularity: if exact { "invocation" } else { "hour" },
            prices: prices.clone(),
            functions: rows,
            total,
        })
    }
}
