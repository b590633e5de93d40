//! Usage and cost: what `stratus usage` and `GET /v1/usage` report.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use rusqlite::params;

use crate::Ledger;
use crate::batch;
use crate::error::{DB, LedgerError};
use crate::record::{InvocationRecord, format_time, time_key, unix_micros};
use stratus_sqlite::During;

/// What compute costs. The defaults are the public AWS Lambda x86 list
/// price, so users can compare a Stratus bill with a Lambda one.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq)]
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
        let now = SystemTime::now();
        let raw_from = now.checked_sub(self.retention.records);
        let exact = match (query.since, raw_from) {
            (Some(since), Some(from)) => since >= from,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let since = query.since.unwrap_or(SystemTime::UNIX_EPOCH);
        let prices = &self.prices;
        let sums = if exact {
            self.sum_records(since, query.app.as_deref())?
        } else {
            self.sum_hours(since, query.app.as_deref())?
        };
        let rows: Vec<UsageRow> = sums
            .into_iter()
            .map(|((app, function), s)| {
                let gb_s = gb_seconds(s.mib_ms);
                UsageRow {
                    app,
                    function,
                    requests: s.requests as u64,
                    errors: s.errors as u64,
                    cold_starts: s.cold_starts as u64,
                    gb_seconds: gb_s,
                    cpu_seconds: s.cpu_us as f64 / 1e6,
                    duration_seconds: s.wall_us as f64 / 1e6,
                    bytes_in: s.bytes_in as u64,
                    bytes_out: s.bytes_out as u64,
                    cost: prices.cost(s.requests as u64, gb_s),
                }
            })
            .collect();
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

/// Usage sums of one function (over a period, or one hour of the
/// roll-up table).
#[derive(Debug, Default)]
pub(crate) struct Sums {
    pub requests: i64,
    pub errors: i64,
    pub cold_starts: i64,
    /// Billed MiB × billed milliseconds.
    pub mib_ms: i64,
    pub cpu_us: i64,
    pub wall_us: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

impl Sums {
    pub(crate) fn add(&mut self, r: &InvocationRecord) {
        self.requests += 1;
        self.errors += i64::from(r.error.is_some());
        self.cold_starts += i64::from(r.cold);
        self.mib_ms += (r.billed_mib() * r.billed_ms()) as i64;
        self.cpu_us += r.cpu.as_micros() as i64;
        self.wall_us += r.wall.as_micros() as i64;
        self.bytes_in += r.bytes_in as i64;
        self.bytes_out += r.bytes_out as i64;
    }
}

type ByFunction = BTreeMap<(String, String), Sums>;

impl Ledger {
    /// Exact sums from the raw records of invocations since `since`.
    fn sum_records(&self, since: SystemTime, app: Option<&str>) -> Result<ByFunction, LedgerError> {
        const ACTION: &str = "reading invocation records";
        let from = time_key(since);
        let conn = self.reader();
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
    fn sum_hours(&self, since: SystemTime, app: Option<&str>) -> Result<ByFunction, LedgerError> {
        const ACTION: &str = "reading usage";
        let conn = self.reader();
        let mut statement = conn
            .prepare_cached(
                "SELECT app, function, SUM(requests), SUM(errors), SUM(cold_starts), SUM(mib_ms),
                        SUM(cpu_us), SUM(wall_us), SUM(bytes_in), SUM(bytes_out)
                 FROM usage_hourly
                 WHERE hour >= ?1 / 3600000000 AND (?2 IS NULL OR app = ?2)
                 GROUP BY app, function",
            )
            .during(DB, ACTION)?;
        let rows = statement
            .query_map(params![unix_micros(since), app], |row| {
                Ok((
                    (row.get(0)?, row.get(1)?),
                    Sums {
                        requests: row.get(2)?,
                        errors: row.get(3)?,
                        cold_starts: row.get(4)?,
                        mib_ms: row.get(5)?,
                        cpu_us: row.get(6)?,
                        wall_us: row.get(7)?,
                        bytes_in: row.get(8)?,
                        bytes_out: row.get(9)?,
                    },
                ))
            })
            .during(DB, ACTION)?;
        Ok(rows.collect::<Result<ByFunction, _>>().during(DB, ACTION)?)
    }
}

/// `function_key` numbers to `(app, function)`.
pub(crate) fn function_names(
    conn: &rusqlite::Connection,
) -> Result<HashMap<i64, (String, String)>, LedgerError> {
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
