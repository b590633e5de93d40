//! What the ledger's messages and roll-ups hold, as JSON: a batch of one
//! app's invocations (with their log lines) per message, and one writer's
//! running usage sums per key. Times are microseconds since the epoch, the
//! precision the ledger keeps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use stratus_storage::{InvocationRecord, LogLine, LogStream, Outbound, Trigger, UsageSums};

/// The most text one entry carries: an invocation's lines beyond it go in
/// further entries, so a message stays well under NATS' 1 MiB payload.
pub(super) const ENTRY_BYTES: usize = 192 << 10;

/// One app's invocations, in the order they were recorded.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Batch {
    pub app: String,
    pub entries: Vec<Entry>,
}

/// An invocation, or a continuation of its log lines. Field names are
/// short and zeros left out: every invocation of the cluster is written
/// (and replicated) once, so its bytes are the ledger's cost.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Entry {
    pub id: String,
    #[serde(rename = "fn")]
    pub function: String,
    /// Absent on a continuation.
    #[serde(default, rename = "r", skip_serializing_if = "Option::is_none")]
    pub record: Option<Record>,
    #[serde(default, rename = "l", skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Record {
    #[serde(rename = "v")]
    pub version: u32,
    #[serde(rename = "t")]
    pub trigger: String,
    #[serde(rename = "at")]
    pub started_us: u64,
    #[serde(rename = "wall")]
    pub wall_us: u64,
    #[serde(default, rename = "cpu", skip_serializing_if = "is_zero")]
    pub cpu_us: u64,
    #[serde(default, rename = "mem", skip_serializing_if = "is_zero")]
    pub peak_memory: u64,
    #[serde(default, rename = "host", skip_serializing_if = "is_zero")]
    pub peak_host_memory: u64,
    #[serde(default, rename = "in", skip_serializing_if = "is_zero")]
    pub bytes_in: u64,
    #[serde(default, rename = "out", skip_serializing_if = "is_zero")]
    pub bytes_out: u64,
    #[serde(rename = "s")]
    pub status: u16,
    #[serde(default, rename = "e", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cold: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(default, rename = "oreq", skip_serializing_if = "is_zero")]
    pub out_requests: u32,
    #[serde(default, rename = "obytes", skip_serializing_if = "is_zero")]
    pub out_bytes: u64,
    #[serde(default, rename = "otime", skip_serializing_if = "is_zero")]
    pub out_us: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Line {
    #[serde(rename = "at")]
    pub at_us: u64,
    /// `stderr`, or absent for stdout.
    #[serde(default, rename = "err", skip_serializing_if = "is_zero")]
    pub stderr: bool,
    #[serde(rename = "x")]
    pub text: String,
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn from_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Record {
    fn of(r: &InvocationRecord) -> Record {
        Record {
            version: r.version,
            trigger: r.trigger.as_str().to_owned(),
            started_us: micros(r.started_at),
            wall_us: duration_micros(r.wall),
            cpu_us: duration_micros(r.cpu),
            peak_memory: r.peak_memory,
            peak_host_memory: r.peak_host_memory,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            status: r.status,
            error: r.error.clone(),
            cold: r.cold,
            caller: r.caller.clone(),
            out_requests: r.outbound.requests,
            out_bytes: r.outbound.bytes,
            out_us: duration_micros(r.outbound.time),
        }
    }

    pub fn started_at(&self) -> SystemTime {
        from_micros(self.started_us)
    }

    pub fn to_record(&self, app: &str, entry: &Entry) -> InvocationRecord {
        InvocationRecord {
            id: entry.id.clone(),
            app: app.to_owned(),
            function: entry.function.clone(),
            version: self.version,
            trigger: Trigger::parse(&self.trigger).unwrap_or(Trigger::Http),
            started_at: self.started_at(),
            wall: Duration::from_micros(self.wall_us),
            cpu: Duration::from_micros(self.cpu_us),
            peak_memory: self.peak_memory,
            peak_host_memory: self.peak_host_memory,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            status: self.status,
            error: self.error.clone(),
            cold: self.cold,
            caller: self.caller.clone(),
            outbound: Outbound {
                requests: self.out_requests,
                bytes: self.out_bytes,
                time: Duration::from_micros(self.out_us),
            },
        }
    }
}

impl Line {
    fn of(line: &LogLine) -> Line {
        Line {
            at_us: micros(line.at),
            stderr: line.stream == LogStream::Stderr,
            text: line.text.clone(),
        }
    }

    pub fn at(&self) -> SystemTime {
        from_micros(self.at_us)
    }

    pub fn to_line(&self, app: &str, entry: &Entry) -> LogLine {
        LogLine {
            invocation_id: entry.id.clone(),
            app: app.to_owned(),
            function: entry.function.clone(),
            at: self.at(),
            stream: if self.stderr {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            text: self.text.clone(),
        }
    }
}

/// The entries of one invocation: its record with as many lines as fit,
/// then continuations. A single line longer than an entry holds is cut.
/// Without `keep` (its raw record sampled out), only its lines.
pub(super) fn entries(record: &InvocationRecord, logs: &[LogLine], keep: bool) -> Vec<Entry> {
    let mut out = vec![Entry {
        id: record.id.clone(),
        function: record.function.clone(),
        record: keep.then(|| Record::of(record)),
        lines: Vec::new(),
    }];
    let mut bytes = 0;
    for line in logs {
        let mut line = Line::of(line);
        if line.text.len() > ENTRY_BYTES {
            let mut cut = ENTRY_BYTES;
            while !line.text.is_char_boundary(cut) {
                cut -= 1;
            }
            line.text.truncate(cut);
            line.text
                .push_str(" [cut: longer than a ledger entry holds]");
        }
        if bytes + line.text.len() > ENTRY_BYTES
            && let Some(last) = out.last()
            && !last.lines.is_empty()
        {
            out.push(Entry {
                id: record.id.clone(),
                function: record.function.clone(),
                record: None,
                lines: Vec::new(),
            });
            bytes = 0;
        }
        bytes += line.text.len();
        if let Some(last) = out.last_mut() {
            last.lines.push(line);
        }
    }
    out.retain(|entry| entry.record.is_some() || !entry.lines.is_empty());
    out
}

/// One writer's running sums of one function for one hour, with the names
/// the key holds in hex.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Sums {
    pub app: String,
    pub function: String,
    #[serde(flatten)]
    pub sums: UsageSums,
}

/// The hour (since the epoch) `t` falls in.
pub(super) fn hour_of(t: SystemTime) -> u64 {
    micros(t) / 3_600_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_storage::conformance::ledger::record;

    fn line(r: &InvocationRecord, text: String) -> LogLine {
        LogLine {
            invocation_id: r.id.clone(),
            app: r.app.clone(),
            function: r.function.clone(),
            at: r.started_at,
            stream: LogStream::Stderr,
            text,
        }
    }

    #[test]
    fn a_record_reads_back_whole() {
        let mut r = record("shop", "cart", SystemTime::now());
        r.error = Some("timeout".into());
        r.trigger = Trigger::Service;
        let entries = entries(&r, &[line(&r, "hello".into())], true);
        assert_eq!(entries.len(), 1);
        let json = serde_json::to_vec(&entries[0]).unwrap();
        let back: Entry = serde_json::from_slice(&json).unwrap();
        let wire = back.record.as_ref().unwrap();
        let mut expected = r.clone();
        expected.started_at = from_micros(micros(r.started_at));
        assert_eq!(wire.to_record("shop", &back), expected);
        let text = back.lines[0].to_line("shop", &back);
        assert_eq!(
            (text.text.as_str(), text.stream),
            ("hello", LogStream::Stderr)
        );
    }

    #[test]
    fn a_plain_record_is_small() {
        let r = record("shop", "cart", SystemTime::now());
        let json = serde_json::to_vec(&entries(&r, &[], true)).unwrap();
        assert!(json.len() < 200, "{}", String::from_utf8_lossy(&json));
    }

    #[test]
    fn long_logs_continue_in_further_entries_and_a_huge_line_is_cut() {
        let r = record("shop", "cart", SystemTime::now());
        let lines: Vec<_> = (0..5)
            .map(|i| line(&r, format!("{i}").repeat(100 << 10)))
            .chain([line(&r, "x".repeat(1 << 20))])
            .collect();
        let entries = entries(&r, &lines, true);
        assert!(entries[0].record.is_some());
        assert!(
            entries[1..]
                .iter()
                .all(|e| e.record.is_none() && e.id == r.id)
        );
        let all: Vec<&Line> = entries.iter().flat_map(|e| &e.lines).collect();
        assert_eq!(all.len(), 6);
        for entry in &entries {
            let text: usize = entry.lines.iter().map(|l| l.text.len()).sum();
            assert!(text <= ENTRY_BYTES + 64, "{text}");
        }
        assert!(
            all[5]
                .text
                .ends_with("[cut: longer than a ledger entry holds]")
        );
    }
}
