//! Reading the ledger back: every read is a scan of the stream from a
//! time, by an ephemeral consumer filtered to one app (or all), that ends
//! when it has caught up or found what it looked for; usage beyond the
//! last hour comes from the hourly sums instead.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stratus_storage::{
    InvocationQuery, InvocationRecord, LedgerError, LiveLog, LogFeed, LogLine, LogQuery, MAX_CALLS,
    UsageQuery, UsageReport, UsageSums,
};
use tokio::sync::mpsc;

use super::wire::{self, Batch};
use super::{Inner, ledger_error, token};
use crate::watch::{Start, Watch};

/// Usage of a period that starts at most this far back is summed from the
/// records themselves (exact); an older start reads the hourly sums. Exact
/// means reading every record of the period, so the window is short.
const EXACT_WINDOW: Duration = Duration::from_secs(3600);

/// A period of one app starting fewer hours back than this reads its
/// hours' usage keys one hour at a time.
const RECENT_HOURS: u64 = 3;

/// The longest an invocation's record can take, after the invocation
/// arrived, to be stored: the longest timeout a function may have, plus
/// time for batching and retries. A search for an id stops past it.
const LOOKUP_WINDOW: Duration = Duration::from_secs(16 * 60);

/// A message stored before the invocation arrived cannot hold it; clocks
/// of nodes and servers may differ a little.
const CLOCK_SLACK: Duration = Duration::from_secs(2);

/// How long one read may take before it is reported as out of reach.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// Windows back from now in which a function's newest lines are looked
/// for, each tried when the one before held too few.
const LOG_WINDOWS: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(86_400),
];

/// Lines a follower may fall behind by before it waits.
const FEED_CAPACITY: usize = 256;

enum Flow {
    Go,
    Stop,
}

/// The time an invocation id (a UUIDv7 in simple form) says it arrived;
/// none for an id of another form, or one from the future (nothing can be
/// stored for it yet, and JetStream reads no time past the year 9999).
fn arrival(id: &str) -> Option<SystemTime> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let ms = u64::from_str_radix(id.get(..12)?, 16).ok()?;
    let arrived = UNIX_EPOCH + Duration::from_millis(ms);
    (arrived <= SystemTime::now() + CLOCK_SLACK).then_some(arrived)
}

/// Whether an invocation can be found from its id alone: the id is a
/// UUIDv7 made when it arrived (as nodes make them), and it started then.
pub(super) fn id_tells_time(id: &str, started_at: SystemTime) -> bool {
    arrival(id).is_some_and(|arrived| {
        let apart = started_at
            .duration_since(arrived)
            .or_else(|_| arrived.duration_since(started_at))
            .unwrap_or_default();
        apart <= CLOCK_SLACK
    })
}

impl Inner {
    /// The record stored alone for an id that does not tell when it ran,
    /// with the time it was stored (its batch was stored with it).
    async fn indexed(
        &self,
        id: &str,
    ) -> Result<Option<(InvocationRecord, SystemTime)>, LedgerError> {
        let subject = format!("{}{}", self.index_prefix, super::id_digest(id));
        let read = tokio::time::timeout(READ_LIMIT, self.js.last_message(&self.stream, &subject))
            .await
            .map_err(|_| LedgerError::Unavailable("reading the ledger took too long".into()))?
            .map_err(ledger_error)?;
        let Some(message) = read else {
            return Ok(None);
        };
        let stored = message
            .header("Nats-Time-Stamp")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| {
                let nanos = u64::try_from(t.timestamp_nanos_opt()?).ok()?;
                Some(UNIX_EPOCH + Duration::from_nanos(nanos))
            })
            .unwrap_or(UNIX_EPOCH);
        let Ok(batch) = serde_json::from_slice::<Batch>(&message.payload) else {
            return Ok(None);
        };
        Ok(batch.entries.iter().find_map(|entry| {
            let record = entry.record.as_ref().filter(|_| entry.id == id)?;
            Some((record.to_record(&batch.app, entry), stored))
        }))
    }

    /// When to start looking for an invocation's batch, and when to give
    /// up: from when its id says it arrived, or from when its record was
    /// stored alone.
    async fn whereabouts(&self, id: &str) -> Result<Option<SystemTime>, LedgerError> {
        if let Some((_, stored)) = self.indexed(id).await? {
            return Ok(Some(stored));
        }
        Ok(arrival(id))
    }

    fn filter(&self, app: Option<&str>) -> String {
        match app {
            Some(app) => format!("{}{}", self.subject_prefix, token(app)),
            None => format!("{}>", self.subject_prefix),
        }
    }

    async fn watch(&self, app: Option<&str>, start: Start) -> Result<Watch, LedgerError> {
        Watch::start(
            self.js.clone(),
            self.stream.clone(),
            self.filter(app),
            self.subject_prefix.clone(),
            start,
        )
        .await
        .map_err(ledger_error)
    }

    /// Visits the batches of `app` (of every app when `None`) stored from
    /// `from` on, with the time each was stored, until caught up or told
    /// to stop. Batches stored after the scan began end it too: under
    /// steady writes the consumer may never report nothing pending.
    async fn scan(
        &self,
        app: Option<&str>,
        from: SystemTime,
        mut visit: impl FnMut(Batch, SystemTime) -> Flow,
    ) -> Result<(), LedgerError> {
        let began = SystemTime::now();
        let work = async {
            let mut watch = self.watch(app, Start::Time(from)).await?;
            while let Some(change) = watch.next_until_current().await.map_err(ledger_error)? {
                let Some(payload) = change.value else {
                    continue;
                };
                let batch: Batch = match serde_json::from_slice(&payload) {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping a damaged ledger batch");
                        continue;
                    }
                };
                // The subject is the app's; so must the content be.
                if app.is_some_and(|app| app != batch.app) {
                    continue;
                }
                if let Flow::Stop = visit(batch, watch.last_stored()) {
                    break;
                }
                if watch.last_stored() > began + CLOCK_SLACK {
                    break;
                }
            }
            Ok(())
        };
        tokio::time::timeout(READ_LIMIT, work)
            .await
            .unwrap_or_else(|_| {
                Err(LedgerError::Unavailable(format!(
                    "reading the ledger took longer than {}s",
                    READ_LIMIT.as_secs()
                )))
            })
    }

    pub(super) async fn invocation(
        &self,
        id: &str,
    ) -> Result<Option<InvocationRecord>, LedgerError> {
        if let Some((record, _)) = self.indexed(id).await? {
            return Ok(Some(record));
        }
        let Some(arrived) = arrival(id) else {
            return Ok(None);
        };
        let mut found = None;
        let from = arrived.checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH);
        self.scan(None, from, |batch, stored| {
            let entry = batch
                .entries
                .iter()
                .find(|e| e.id == id && e.record.is_some());
            if let Some((entry, record)) = entry.and_then(|e| Some((e, e.record.as_ref()?))) {
                found = Some(record.to_record(&batch.app, entry));
                return Flow::Stop;
            }
            if stored > arrived + LOOKUP_WINDOW {
                Flow::Stop
            } else {
                Flow::Go
            }
        })
        .await?;
        Ok(found)
    }

    pub(super) async fn logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, LedgerError> {
        let since = query.since.unwrap_or(UNIX_EPOCH);
        if let Some(id) = &query.invocation {
            return self.lines_of(query, id, since).await;
        }
        let now = SystemTime::now();
        let windows = LOG_WINDOWS.iter().map(|w| now.checked_sub(*w));
        // The last window reaches back as far as the stream keeps.
        for from in windows.chain([None]) {
            let from = from.unwrap_or(UNIX_EPOCH).max(since);
            let mut newest = VecDeque::with_capacity(query.limit.min(4096));
            self.scan(Some(&query.app), from, |batch, _| {
                for entry in batch
                    .entries
                    .iter()
                    .filter(|e| e.function == query.function)
                {
                    for line in entry.lines.iter().filter(|l| l.at() >= since) {
                        if newest.len() == query.limit {
                            newest.pop_front();
                        }
                        newest.push_back(line.to_line(&batch.app, entry));
                    }
                }
                Flow::Go
            })
            .await?;
            if newest.len() >= query.limit || from == since || from == UNIX_EPOCH {
                return Ok(newest.into());
            }
        }
        Ok(Vec::new())
    }

    /// A function's records as `query` asks, newest first, read as
    /// [`logs`](Self::logs) reads lines: the newest window first, a wider
    /// one when it holds too few.
    pub(super) async fn invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, LedgerError> {
        let since = query.since.unwrap_or(UNIX_EPOCH);
        let now = SystemTime::now();
        let windows = LOG_WINDOWS.iter().map(|w| now.checked_sub(*w));
        for from in windows.chain([None]) {
            let from = from.unwrap_or(UNIX_EPOCH).max(since);
            // Stored oldest first: the last `limit` found are the newest.
            let mut found = VecDeque::with_capacity(query.limit.min(4096));
            self.scan(Some(&query.app), from, |batch, _| {
                for entry in batch
                    .entries
                    .iter()
                    .filter(|e| e.function == query.function)
                {
                    if let Some(record) = &entry.record {
                        let record = record.to_record(&batch.app, entry);
                        if query.wants(&record) {
                            if found.len() == query.limit {
                                found.pop_front();
                            }
                            found.push_back(record);
                        }
                    }
                }
                Flow::Go
            })
            .await?;
            if found.len() >= query.limit || from == since || from == UNIX_EPOCH {
                let mut found = Vec::from(found);
                found.sort_by_key(|r| std::cmp::Reverse(r.started_at));
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    /// The records whose caller is `caller` among those that started
    /// within `from..=until`: read from the stream's batches stored from
    /// `from` until the clock slack past `until` (a call's record is
    /// stored once it ends, which is before its caller's).
    pub(super) async fn calls(
        &self,
        caller: &str,
        from: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<InvocationRecord>, LedgerError> {
        let mut found = Vec::new();
        let start = from.checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH);
        self.scan(None, start, |batch, stored| {
            for entry in &batch.entries {
                if let Some(record) = &entry.record
                    && record.caller.as_deref() == Some(caller)
                    && found.len() < MAX_CALLS
                {
                    found.push(record.to_record(&batch.app, entry));
                }
            }
            if stored > until + LOOKUP_WINDOW {
                Flow::Stop
            } else {
                Flow::Go
            }
        })
        .await?;
        found.sort_by_key(|r: &InvocationRecord| r.started_at);
        Ok(found)
    }

    /// One invocation's lines: in the batch that holds its record and the
    /// continuations right after it.
    async fn lines_of(
        &self,
        query: &LogQuery,
        id: &str,
        since: SystemTime,
    ) -> Result<Vec<LogLine>, LedgerError> {
        let Some(arrived) = self.whereabouts(id).await? else {
            return Ok(Vec::new());
        };
        let mut lines = Vec::new();
        let mut seen = false;
        let from = arrived.checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH);
        self.scan(Some(&query.app), from, |batch, stored| {
            let mut here = false;
            for entry in batch.entries.iter().filter(|e| e.id == id) {
                here = true;
                if entry.function != query.function {
                    continue;
                }
                let wanted = entry.lines.iter().filter(|l| l.at() >= since);
                lines.extend(wanted.map(|l| l.to_line(&batch.app, entry)));
            }
            seen |= here;
            if (seen && !here) || stored > arrived + LOOKUP_WINDOW {
                Flow::Stop
            } else {
                Flow::Go
            }
        })
        .await?;
        let skip = lines.len().saturating_sub(query.limit);
        Ok(lines.split_off(skip))
    }

    /// Whether the stream still holds every batch stored since `since`:
    /// past its size limit it drops the oldest, whatever their age.
    async fn whole_since(&self, since: SystemTime) -> Result<bool, LedgerError> {
        let subject = format!("$JS.API.STREAM.INFO.{}", self.stream);
        let info: serde_json::Value = tokio::time::timeout(
            READ_LIMIT,
            self.js.request(&subject, &serde_json::json!({})),
        )
        .await
        .map_err(|_| LedgerError::Unavailable("reading the ledger took too long".into()))?
        .map_err(ledger_error)?;
        let first = info["state"]["first_ts"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt())
            .and_then(|nanos| u64::try_from(nanos).ok())
            .map(|nanos| UNIX_EPOCH + Duration::from_nanos(nanos));
        // Batches are only ever dropped from the front, so none since
        // `since` was when the first kept is older, or when none was ever
        // dropped (the first kept is the stream's first).
        let never_dropped = info["state"]["first_seq"]
            .as_u64()
            .is_none_or(|seq| seq <= 1);
        Ok(never_dropped || first.is_some_and(|first| first <= since))
    }

    pub(super) async fn usage(&self, query: &UsageQuery) -> Result<UsageReport, LedgerError> {
        let exact_from = SystemTime::now().checked_sub(EXACT_WINDOW);
        let from_hour = query.since.map_or(0, wire::hour_of);
        let app = query.app.as_deref();
        let candidate = match (query.since, exact_from) {
            (Some(since), Some(from)) if since >= from && self.whole_since(since).await? => {
                Some(since)
            }
            _ => None,
        };
        // Records some of which were sampled out do not add up to the
        // totals: then the hourly sums (exact counts) answer.
        let hourly = self.hourly_sums(app, from_hour).await?;
        let sampled = hourly.values().any(|sums| sums.sampled > 0);
        let exact = candidate.filter(|_| !sampled);
        let Some(since) = exact else {
            return Ok(UsageReport::priced(
                query.since,
                false,
                &self.prices,
                hourly,
            ));
        };
        let mut sums: BTreeMap<(String, String), UsageSums> = BTreeMap::new();
        self.scan(app, since, |batch, _| {
            for entry in &batch.entries {
                let Some(record) = &entry.record else {
                    continue;
                };
                if record.started_at() >= since {
                    let key = (batch.app.clone(), entry.function.clone());
                    sums.entry(key)
                        .or_default()
                        .add(&record.to_record(&batch.app, entry));
                }
            }
            Flow::Go
        })
        .await?;
        Ok(UsageReport::priced(query.since, true, &self.prices, sums))
    }

    /// Every writer's hourly sums from `from_hour` on, per function (of
    /// one app when asked).
    async fn hourly_sums(
        &self,
        app: Option<&str>,
        from_hour: u64,
    ) -> Result<BTreeMap<(String, String), UsageSums>, LedgerError> {
        // Each key is one read: for a recent period of one app (every
        // exact read asks whether its hours had sampling) only the keys of
        // those hours, not of every hour the bucket keeps. One hour past
        // now covers a writer whose clock runs ahead.
        let now_hour = wire::hour_of(SystemTime::now());
        let prefixes: Vec<String> = match app {
            Some(app) if from_hour + RECENT_HOURS > now_hour => (from_hour..=now_hour + 1)
                .map(|hour| format!("{}.{hour}", token(app)))
                .collect(),
            Some(app) => vec![token(app)],
            None => vec![String::new()],
        };
        let read = async {
            let mut entries = Vec::new();
            for prefix in &prefixes {
                entries.extend(self.usage.entries(prefix).await?);
            }
            Ok::<_, crate::api::JetStreamError>(entries)
        };
        let entries = tokio::time::timeout(READ_LIMIT, read)
            .await
            .map_err(|_| LedgerError::Unavailable("reading usage took too long".into()))?
            .map_err(ledger_error)?;
        let mut sums: BTreeMap<(String, String), UsageSums> = BTreeMap::new();
        for entry in entries {
            let hour = entry.key.split('.').nth(1).and_then(|h| h.parse().ok());
            if hour.is_none_or(|hour: u64| hour < from_hour) {
                continue;
            }
            let stored: wire::Sums = match serde_json::from_slice(&entry.value) {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(key = %entry.key, error = %e, "skipping damaged usage");
                    continue;
                }
            };
            if app.is_some_and(|app| app != stored.app) {
                continue;
            }
            sums.entry((stored.app.clone(), stored.function.clone()))
                .or_default()
                .absorb(&stored.sums);
        }
        Ok(sums)
    }

    /// New lines of the query's function as batches arrive, until the
    /// follower drops the feed.
    pub(super) async fn follow(self: Arc<Self>, query: LogQuery) -> Result<LogFeed, LedgerError> {
        let mut watch = self.watch(Some(&query.app), Start::New).await?;
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    _ = tx.closed() => return,
                    change = watch.next() => change,
                };
                let Ok(change) = change else {
                    return;
                };
                let Some(batch) = change
                    .value
                    .and_then(|payload| serde_json::from_slice::<Batch>(&payload).ok())
                    .filter(|batch| batch.app == query.app)
                else {
                    continue;
                };
                for entry in &batch.entries {
                    let wanted = entry.function == query.function
                        && query.invocation.as_ref().is_none_or(|id| *id == entry.id);
                    if !wanted {
                        continue;
                    }
                    for line in &entry.lines {
                        let line = Arc::new(line.to_line(&batch.app, entry));
                        if tx.send(LiveLog::Line(line)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_tells_when_its_invocation_arrived() {
        let id = "0193a1b2c3d47000000000000000abcd";
        assert_eq!(arrival(&"f".repeat(32)), None, "from the future");
        let ms = u64::from_str_radix("0193a1b2c3d4", 16).unwrap();
        assert_eq!(arrival(id), Some(UNIX_EPOCH + Duration::from_millis(ms)));
        for bad in ["", "a.>", "0193a1b2c3d4", &"z".repeat(32), &"0".repeat(33)] {
            assert_eq!(arrival(bad), None, "{bad}");
        }
    }
}
