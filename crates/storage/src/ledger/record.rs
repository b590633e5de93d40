//! What the ledger stores: invocation records and log lines.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A request to the gateway.
    Http,
    /// A direct call through the admin API (`stratus invoke`).
    Api,
    /// An event from the queue (async invocations, queues, cron, brokers).
    Event,
    /// A call from another function (`http://<function>.svc/`).
    Service,
}

impl Trigger {
    /// Every trigger, in the order of [`Trigger::index`].
    pub const ALL: [Trigger; 4] = [
        Trigger::Http,
        Trigger::Api,
        Trigger::Event,
        Trigger::Service,
    ];

    /// Its place in [`Trigger::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Api => "api",
            Trigger::Event => "event",
            Trigger::Service => "service",
        }
    }

    /// The trigger named by [`Trigger::as_str`].
    pub fn parse(text: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One invocation, as metered.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// A UUIDv7 in simple form (32 hex digits) as the node makes them,
    /// whose timestamp is when the invocation arrived.
    pub id: String,
    pub app: String,
    pub function: String,
    pub version: u32,
    pub trigger: Trigger,
    /// When the request was admitted.
    pub started_at: SystemTime,
    /// From admission until the guest finished (or its response was done,
    /// whichever came last): the billed duration.
    pub wall: Duration,
    /// CPU time spent running the guest and the host calls it made.
    pub cpu: Duration,
    /// Peak linear memory in bytes.
    pub peak_memory: u64,
    /// Peak host memory the guest made the host hold for it (the headers
    /// it built), in bytes, as sampled while it ran: charged against the
    /// budget its `memory` cap gives, not billed.
    pub peak_host_memory: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The HTTP status the caller got.
    pub status: u16,
    /// The platform error code when the invocation failed (`timeout`,
    /// `function_trapped`, …), including a trap after the response started.
    pub error: Option<String>,
    /// Whether the function's code had to be loaded (scaled from zero).
    pub cold: bool,
    /// The invocation of the function that called this one through
    /// `http://<function>.svc/`, if one did.
    pub caller: Option<String>,
    /// What the invocation asked of other services over HTTP.
    pub outbound: Outbound,
}

/// An invocation's outbound HTTP: requests to the network (its
/// `allowed_outbound`) and calls to other functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outbound {
    pub requests: u32,
    /// Request and response bodies together.
    pub bytes: u64,
    /// Time spent waiting for the answers.
    pub time: Duration,
}

impl InvocationRecord {
    /// The billed duration in whole milliseconds, rounded up, at least 1
    /// (the rounding Lambda uses).
    pub fn billed_ms(&self) -> u64 {
        billed_ms(self.wall)
    }

    /// The billed memory in whole MiB, rounded up, at least 1.
    pub fn billed_mib(&self) -> u64 {
        billed_mib(self.peak_memory)
    }
}

/// [`InvocationRecord::billed_ms`] of a run of `wall`.
pub fn billed_ms(wall: Duration) -> u64 {
    (wall.as_micros().div_ceil(1000) as u64).max(1)
}

/// [`InvocationRecord::billed_mib`] of a run that peaked at `peak_memory`
/// bytes.
pub fn billed_mib(peak_memory: u64) -> u64 {
    peak_memory.div_ceil(1 << 20).max(1)
}

/// Which stream a log line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    /// The stream named by [`LogStream::as_str`]; anything else reads as
    /// stdout.
    pub fn parse(text: &str) -> LogStream {
        if text == "stderr" {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        }
    }
}

/// One line a function wrote during an invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub invocation_id: String,
    pub app: String,
    pub function: String,
    pub at: SystemTime,
    pub stream: LogStream,
    pub text: String,
}

/// RFC 3339 with milliseconds, UTC: what people and log tools read. A
/// time before 1970 reads as 1970; one beyond what a calendar date can
/// hold (a damaged row) as its raw microseconds.
pub fn format_time(t: SystemTime) -> String {
    let micros = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(time) => time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("@{micros}us"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(format_time(t), "2026-11-18T11:06:40.123Z");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(format_time(before), "1970-01-01T00:00:00.000Z");
        let beyond = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 1000);
        assert!(format_time(beyond).starts_with('@'));
    }
}
