//! What is asked of the ledger, and how usage is summed and priced: the
//! same arithmetic for every backend, so a bill does not depend on where
//! the records are kept.

use std::time::{Duration, SystemTime};

use super::record::{InvocationRecord, LogLine, format_time};

/// Which log lines to read.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub app: String,
    pub function: String,
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Only the lines of this invocation.
    pub invocation: Option<String>,
    /// The newest this many lines (returned oldest first).
    pub limit: usize,
}

impl LogQuery {
    /// Whether `line` is one this query asks for (its time aside: a
    /// follower wants every new line).
    pub fn wants(&self, line: &LogLine) -> bool {
        line.app == self.app
            && line.function == self.function
            && self
                .invocation
                .as_ref()
                .is_none_or(|id| *id == line.invocation_id)
    }
}

/// Which invocation records to list.
#[derive(Debug, Clone)]
pub struct InvocationQuery {
    pub app: String,
    pub function: String,
    /// Only invocations that started at or after this time.
    pub since: Option<SystemTime>,
    /// Only invocations that started before this time.
    pub until: Option<SystemTime>,
    pub status: Option<StatusFilter>,
    pub trigger: Option<super::record::Trigger>,
    /// Only invocations that took at least this long.
    pub min_duration: Option<Duration>,
    /// The newest this many.
    pub limit: usize,
}

/// How an invocation ended, as a listing filters by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// It answered, and the platform saw no failure.
    Ok,
    /// A trap, a timeout, a limit, a refusal, or a 5xx answer.
    Error,
    /// Exactly this status.
    Code(u16),
}

impl InvocationQuery {
    /// Whether `record`, of this query's function, is one it asks for.
    pub fn wants(&self, record: &InvocationRecord) -> bool {
        let failed = record.error.is_some() || record.status >= 500;
        self.since.is_none_or(|t| record.started_at >= t)
            && self.until.is_none_or(|t| record.started_at < t)
            && self.trigger.is_none_or(|t| t == record.trigger)
            && self.min_duration.is_none_or(|d| record.wall >= d)
            && match self.status {
                None => true,
                Some(StatusFilter::Ok) => !failed,
                Some(StatusFilter::Error) => failed,
                Some(StatusFilter::Code(code)) => record.status == code,
            }
    }
}

/// Which usage to report.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub app: Option<String>,
    /// Only invocations that started at or after this time.
    pub since: Option<SystemTime>,
}

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

/// How long a ledger keeps what it stores. Each backend prunes in its own
/// way (and time); these are the ages past which it may.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Raw invocation records (what one invocation's read and exact usage
    /// need).
    pub records: Duration,
    /// Log lines.
    pub logs: Duration,
    /// Hourly usage roll-ups, which is what usage reads beyond `records`.
    pub usage: Duration,
    /// The most disk raw records and log lines may take together: past
    /// it the oldest go first, whatever their age. The hourly roll-ups are
    /// kept (usage and bills come from them), and usage that would need a
    /// record no longer kept is read from them (`hour` granularity).
    pub max_bytes: u64,
}

/// [`Retention::max_bytes`] unless set: enough for weeks of a busy
/// function's records, and a bound a small disk can give.
pub const DEFAULT_LEDGER_MAX_BYTES: u64 = 1 << 30;

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Retention {
            records: Duration::from_secs(7 * DAY),
            logs: Duration::from_secs(7 * DAY),
            usage: Duration::from_secs(400 * DAY),
            max_bytes: DEFAULT_LEDGER_MAX_BYTES,
        }
    }
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
    /// Of `requests`, those whose raw record was sampled out: counted in
    /// every total, but not one by one.
    pub sampled: u64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    /// The start of the period, when one was asked for.
    pub since: Option<String>,
    /// `invocation` when the period is covered by raw records (exact);
    /// `hour` when it reaches back past them, or some of its records were
    /// sampled out, and hourly roll-ups were used (the period then starts
    /// at the top of the hour `since` falls in). The totals are exact
    /// counts either way.
    pub granularity: &'static str,
    pub prices: PriceSheet,
    /// By app, then function.
    pub functions: Vec<UsageRow>,
    pub total: UsageRow,
}

/// Usage sums of one function, over a period or one hour: what a backend
/// adds up (record by record, or per hour as it stores them) before
/// [`UsageReport::priced`] turns it into a report. Serializable, for a
/// backend that stores sums as documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageSums {
    pub requests: i64,
    pub errors: i64,
    pub cold_starts: i64,
    /// Billed MiB × billed milliseconds.
    pub mib_ms: i64,
    pub cpu_us: i64,
    pub wall_us: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// Of `requests`, those whose raw record was sampled out.
    #[serde(default)]
    pub sampled: i64,
}

impl UsageSums {
    /// Counts one invocation. A function that answers a 5xx itself has not
    /// failed: errors are the platform's error codes.
    pub fn add(&mut self, r: &InvocationRecord) {
        self.requests += 1;
        self.errors += i64::from(r.error.is_some());
        self.cold_starts += i64::from(r.cold);
        self.mib_ms += (r.billed_mib() * r.billed_ms()) as i64;
        self.cpu_us += r.cpu.as_micros() as i64;
        self.wall_us += r.wall.as_micros() as i64;
        self.bytes_in += r.bytes_in as i64;
        self.bytes_out += r.bytes_out as i64;
    }

    /// Counts one invocation whose raw record was sampled out.
    pub fn add_sampled(&mut self, r: &InvocationRecord) {
        self.add(r);
        self.sampled += 1;
    }

    /// Adds sums counted elsewhere (another hour, another writer).
    pub fn absorb(&mut self, other: &UsageSums) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.cold_starts += other.cold_starts;
        self.mib_ms += other.mib_ms;
        self.cpu_us += other.cpu_us;
        self.wall_us += other.wall_us;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.sampled += other.sampled;
    }
}

/// Billed GB-seconds from the summed MiB × milliseconds.
fn gb_seconds(mib_ms: i64) -> f64 {
    mib_ms as f64 / 1024.0 / 1000.0
}

impl UsageReport {
    /// The report of `sums` per `(app, function)` (in the order wanted in
    /// the report: by app, then function) for the period from `since`,
    /// `exact` when summed from raw records rather than hourly roll-ups.
    pub fn priced(
        since: Option<SystemTime>,
        exact: bool,
        prices: &PriceSheet,
        sums: impl IntoIterator<Item = ((String, String), UsageSums)>,
    ) -> UsageReport {
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
                    sampled: s.sampled as u64,
                    cost: prices.cost(s.requests as u64, gb_s),
                }
            })
            .collect();
        let total = total_of(&rows);
        UsageReport {
            since: since.map(format_time),
            granularity: if exact { "invocation" } else { "hour" },
            prices: prices.clone(),
            functions: rows,
            total,
        }
    }

    /// The same report of only the apps `keep` names (by key): a
    /// namespace's share of a node's usage.
    pub fn retain_apps(mut self, keep: impl Fn(&str) -> bool) -> UsageReport {
        self.functions.retain(|row| keep(&row.app));
        self.total = total_of(&self.functions);
        self
    }
}

/// The sums of `rows`, priced as they were.
fn total_of(rows: &[UsageRow]) -> UsageRow {
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
        sampled: 0,
        cost: 0.0,
    };
    for row in rows {
        total.requests += row.requests;
        total.errors += row.errors;
        total.cold_starts += row.cold_starts;
        total.gb_seconds += row.gb_seconds;
        total.cpu_seconds += row.cpu_seconds;
        total.duration_seconds += row.duration_seconds;
        total.bytes_in += row.bytes_in;
        total.bytes_out += row.bytes_out;
        total.sampled += row.sampled;
        total.cost += row.cost;
    }
    total
}
