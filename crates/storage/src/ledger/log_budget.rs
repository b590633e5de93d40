//! A daily budget of log bytes per app.
//!
//! Each invocation's output is already capped, but an app that logs its cap
//! thousands of times a second would still fill the node's disk (170 MB in
//! 1.6 s was measured). Past its budget for the day (UTC) an app's lines are
//! dropped and counted; one marker line says so, once a day, where the app's
//! owner will look for them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::record::{LogLine, LogStream};

/// The default daily budget per app, in bytes.
pub const DEFAULT_LOG_BYTES_PER_APP_DAY: u64 = 256 << 20;

#[derive(Debug)]
pub(crate) struct LogBudget {
    per_day: AtomicU64,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    /// Days since the epoch that `apps` counts.
    day: u64,
    apps: HashMap<String, u64>,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            per_day: AtomicU64::new(DEFAULT_LOG_BYTES_PER_APP_DAY),
            used: Mutex::default(),
        }
    }
}

impl LogBudget {
    pub(crate) fn set_per_day(&self, bytes: u64) {
        self.per_day.store(bytes, Ordering::Relaxed);
    }

    /// Keeps the lines that fit the app's budget of today, in order; the
    /// rest are dropped and their number returned. The first invocation to
    /// pass the budget gets a marker line in place of what was dropped.
    pub(crate) fn admit(&self, logs: &mut Vec<LogLine>, now: SystemTime) -> u64 {
        let Some(first) = logs.first() else { return 0 };
        let limit = self.per_day.load(Ordering::Relaxed);
        let day = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.day != day {
            // A new day: every app starts again (and apps deleted since
            // yesterday stop taking room here).
            used.day = day;
            used.apps.clear();
        }
        let spent = used.apps.entry(first.app.clone()).or_insert(0);
        if *spent > limit {
            let dropped = logs.len() as u64;
            logs.clear();
            return dropped;
        }
        let mut keep = 0;
        for line in logs.iter() {
            let cost = line.text.len() as u64 + 1;
            if *spent + cost > limit {
                break;
            }
            *spent += cost;
            keep += 1;
        }
        if keep == logs.len() {
            return 0;
        }
        let dropped = (logs.len() - keep) as u64;
        // The marker stands where the first dropped line was.
        let mut marker = logs.swap_remove(keep);
        logs.truncate(keep);
        // Past the budget from now on: the marker is written once.
        *spent = limit + 1;
        marker.at = now;
        marker.stream = LogStream::Stderr;
        marker.text = format!(
            "[stratus] app {} has logged its {limit} bytes for today (--log-max-per-app-day); its log lines are dropped until 00:00 UTC",
            marker.app
        );
        logs.push(marker);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(app: &str, n: usize, len: usize) -> Vec<LogLine> {
        (0..n)
            .map(|i| LogLine {
                invocation_id: format!("inv-{i}"),
                app: app.to_string(),
                function: "f".into(),
                at: UNIX_EPOCH,
                stream: LogStream::Stdout,
                text: "x".repeat(len),
            })
            .collect()
    }

    #[test]
    fn lines_past_the_budget_are_dropped_with_one_marker_a_day() {
        let budget = LogBudget::default();
        budget.set_per_day(1000);
        let today = UNIX_EPOCH + std::time::Duration::from_secs(86_400 * 20_000);
        // 99 bytes a line (with its newline): 10 fit.
        let mut first = lines("a", 15, 98);
        assert_eq!(budget.admit(&mut first, today), 5);
        assert_eq!(first.len(), 11);
        assert!(
            first[10].text.contains("--log-max-per-app-day"),
            "{:?}",
            first[10]
        );
        let mut later = lines("a", 3, 1);
        assert_eq!(budget.admit(&mut later, today), 3);
        assert!(later.is_empty());
        // Another app has its own budget; the next day starts afresh.
        let mut other = lines("b", 3, 10);
        assert_eq!(budget.admit(&mut other, today), 0);
        let tomorrow = today + std::time::Duration::from_secs(86_400);
        let mut again = lines("a", 3, 10);
        assert_eq!(budget.admit(&mut again, tomorrow), 0);
        assert_eq!(again.len(), 3);
    }
}
