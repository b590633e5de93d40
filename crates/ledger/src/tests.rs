//! What only the SQLite ledger does: its file across restarts, pruning,
//! its schema, the packed batches, and retrying writes the disk refused.
//! What every ledger does is in the conformance suite (`conformance.rs`).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use stratus_storage::conformance;
use stratus_storage::{
    InvocationRecord, LedgerStore, LogLine, LogQuery, LogStream, Outbound, PriceSheet, Retention,
    Trigger, UsageQuery,
};

use crate::writer::prune;
use crate::{SqliteLedger, batch, keys};

/// A UUIDv7-shaped id (as the gateway makes) for an invocation at `t`.
fn id_at(t: SystemTime, n: u64) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{ms:012x}{n:020x}")
}

fn id(n: u64) -> String {
    id_at(SystemTime::now(), n)
}

fn record(id: &str, function: &str, wall_ms: u64, peak_mib: u64) -> InvocationRecord {
    InvocationRecord {
        id: id.into(),
        wall: Duration::from_millis(wall_ms),
        peak_memory: peak_mib << 20,
        ..conformance::ledger::record("shop", function, SystemTime::now())
    }
}

fn line(id: &str, function: &str, text: &str) -> LogLine {
    LogLine {
        invocation_id: id.into(),
        app: "shop".into(),
        function: function.into(),
        at: SystemTime::now(),
        stream: LogStream::Stdout,
        text: text.into(),
    }
}

fn open(dir: &tempfile::TempDir) -> SqliteLedger {
    SqliteLedger::open(
        &dir.path().join(SqliteLedger::FILE),
        Retention::default(),
        PriceSheet::default(),
    )
    .unwrap()
}

const FLUSH: Duration = Duration::from_secs(10);

#[tokio::test]
async fn records_and_logs_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let x1 = id(1);
    {
        let ledger = open(&dir);
        ledger.record(record(&x1, "cart", 5, 2), vec![line(&x1, "cart", "hello")]);
        assert!(ledger.flush(FLUSH).await);
    }
    let ledger = open(&dir);
    let found = ledger.invocation(x1.clone()).await.unwrap().unwrap();
    assert_eq!(found.function, "cart");
    assert_eq!(found.wall, Duration::from_millis(5));
    let logs = ledger
        .logs(LogQuery {
            app: "shop".into(),
            function: "cart".into(),
            since: None,
            invocation: Some(x1.clone()),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].text, "hello");
}

#[tokio::test]
async fn pruning_drops_what_is_past_retention_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let then = SystemTime::now() - Duration::from_secs(30 * 86_400);
    let (old_id, new_id) = (id_at(then, 1), id(2));
    let mut old = record(&old_id, "cart", 1, 1);
    old.started_at = then;
    let mut old_line = line(&old_id, "cart", "old");
    old_line.at = old.started_at;
    ledger.record(old, vec![old_line]);
    // Raw records are pruned a committed batch at a time: commit the old
    // one on its own.
    assert!(ledger.flush(FLUSH).await);
    ledger.record(
        record(&new_id, "cart", 1, 1),
        vec![line(&new_id, "cart", "new")],
    );
    assert!(ledger.flush(FLUSH).await);

    let conn = crate::schema::open(&dir.path().join(SqliteLedger::FILE)).unwrap();
    // The writer thread prunes on start too, so it may have got there first.
    prune(&conn, Retention::default(), SystemTime::now()).unwrap();
    let lines: i64 = conn
        .query_row("SELECT COUNT(*) FROM log_line", [], |r| r.get(0))
        .unwrap();
    assert_eq!(lines, 1, "only the new line is left");
    assert!(ledger.invocation(old_id).await.unwrap().is_none());
    assert!(ledger.invocation(new_id).await.unwrap().is_some());
    // The roll-up keeps the old invocation's usage beyond raw retention.
    let all = ledger.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(all.total.requests, 2);
    assert_eq!(all.granularity, "hour");
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteLedger::FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let error = SqliteLedger::open(&path, Retention::default(), PriceSheet::default()).unwrap_err();
    assert!(
        error.to_string().contains("schema version 99")
            && error.to_string().contains("run a newer Stratus"),
        "{error}"
    );
}

#[test]
fn uuid_ids_are_stored_as_their_bytes_and_order_by_time() {
    let earlier = id_at(SystemTime::UNIX_EPOCH + Duration::from_millis(1_000), 7);
    assert_eq!(keys::id_key(&earlier).len(), 16);
    let key = keys::time_key(SystemTime::UNIX_EPOCH + Duration::from_millis(1_001));
    assert!(keys::id_key(&earlier) < key);
    assert_eq!(keys::id_key("not-a-uuid"), b"not-a-uuid");
}

#[test]
fn a_batch_packs_and_unpacks_every_field() {
    let mut r = record(&id(9), "cart", 12, 3);
    r.error = Some("timeout".into());
    r.cold = true;
    r.trigger = Trigger::Api;
    let mut bytes = Vec::new();
    batch::push(&mut bytes, 42, &r);
    batch::push(&mut bytes, 7, &record("odd-id", "cart", 1, 1));
    let unpacked = batch::unpack(&bytes).unwrap();
    assert_eq!(unpacked.len(), 2);
    assert_eq!(unpacked[0].function_id, 42);
    let back = &unpacked[0].record;
    assert_eq!(
        (back.id.as_str(), back.wall, back.cpu),
        (r.id.as_str(), r.wall, r.cpu)
    );
    assert_eq!(
        (back.error.as_deref(), back.cold, back.trigger),
        (Some("timeout"), true, Trigger::Api)
    );
    assert_eq!(
        (back.peak_memory, back.bytes_in, back.bytes_out, back.status),
        (3 << 20, 10, 20, 200)
    );
    assert_eq!(unpacked[1].record.id, "odd-id");
    // Cut short, it is refused rather than misread.
    assert!(batch::unpack(&bytes[..bytes.len() - 1]).is_none());
}

#[test]
fn a_service_call_keeps_its_caller_and_outbound_usage() {
    let mut r = record(&id(5), "pricing", 3, 1);
    r.trigger = Trigger::Service;
    // One id, made once: two calls a millisecond apart differ.
    let caller = id(4);
    r.caller = Some(caller.clone());
    r.outbound = Outbound {
        requests: 3,
        bytes: 4096,
        time: Duration::from_micros(1500),
    };
    let mut bytes = Vec::new();
    batch::push(&mut bytes, 1, &r);
    let back = batch::unpack(&bytes).unwrap().remove(0).record;
    assert_eq!(back.trigger, Trigger::Service);
    assert_eq!(back.caller, Some(caller));
    assert_eq!(back.outbound, r.outbound);
}

#[test]
fn the_peak_host_memory_is_kept() {
    let mut r = record(&id(6), "flood", 3, 64);
    r.peak_host_memory = 61 << 20;
    let mut bytes = Vec::new();
    batch::push(&mut bytes, 1, &r);
    let back = batch::unpack(&bytes).unwrap().remove(0).record;
    assert_eq!(back.peak_host_memory, 61 << 20);
    assert_eq!(back.trigger, Trigger::Http);
    // As the version before wrote it: no host memory bit, no last field.
    let trigger_at = 1 + bytes[0] as usize + 8 + 4;
    bytes[trigger_at] &= !0x40;
    bytes.truncate(bytes.len() - 8);
    let back = batch::unpack(&bytes).unwrap().remove(0).record;
    assert_eq!((back.peak_host_memory, back.outbound), (0, r.outbound));
}

#[test]
fn records_packed_before_the_extension_still_read() {
    // The layout of a record from before callers and outbound usage were
    // recorded: key, function, version, trigger 0 (http, no high bit),
    // start, five numbers, status, cold, error.
    let mut old = Vec::new();
    old.push(3u8);
    old.extend_from_slice(b"old");
    old.extend_from_slice(&9i64.to_le_bytes());
    old.extend_from_slice(&2u32.to_le_bytes());
    old.push(0);
    old.extend_from_slice(&0i64.to_le_bytes());
    for n in [1000u64, 10, 1 << 20, 5, 6] {
        old.extend_from_slice(&n.to_le_bytes());
    }
    old.extend_from_slice(&200u16.to_le_bytes());
    old.push(0);
    old.push(0);
    let back = batch::unpack(&old).unwrap().remove(0).record;
    assert_eq!(
        (back.id.as_str(), back.version, back.status),
        ("old", 2, 200)
    );
    assert_eq!(back.trigger, Trigger::Http);
    assert_eq!((back.caller, back.outbound), (None, Outbound::default()));
}

#[tokio::test]
async fn a_write_the_database_refuses_is_kept_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let first = id(1);
    ledger.record(record(&first, "cart", 1, 1), vec![]);
    assert!(ledger.flush(FLUSH).await);
    // Take the log table away: every write fails until it is back.
    let conn = crate::schema::open(&dir.path().join(SqliteLedger::FILE)).unwrap();
    conn.execute("ALTER TABLE log_line RENAME TO log_line_away", [])
        .unwrap();
    let kept = id(2);
    ledger.record(
        record(&kept, "cart", 1, 1),
        vec![line(&kept, "cart", "kept")],
    );
    assert!(!ledger.flush(Duration::from_millis(300)).await);
    assert!(ledger.stats().write_failures.load(Ordering::Relaxed) >= 1);
    assert!(ledger.invocation(kept.clone()).await.unwrap().is_none());
    conn.execute("ALTER TABLE log_line_away RENAME TO log_line", [])
        .unwrap();
    // Retried (after a second), nothing lost.
    assert!(ledger.flush(FLUSH).await);
    assert!(ledger.invocation(kept.clone()).await.unwrap().is_some());
    let logs = ledger
        .logs(LogQuery {
            app: "shop".into(),
            function: "cart".into(),
            since: None,
            invocation: Some(kept),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(ledger.stats().records_dropped.load(Ordering::Relaxed), 0);
}

/// While the disk refuses writes, what is held in memory is bounded: past
/// `MAX_PENDING` records the oldest are dropped and counted, and the rest
/// are written once the disk takes them again.
#[tokio::test]
async fn while_writes_fail_the_records_held_are_bounded_and_the_oldest_dropped() {
    use crate::writer::MAX_PENDING;
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger.record(record(&id(0), "cart", 1, 1), vec![]);
    assert!(ledger.flush(FLUSH).await);
    let conn = crate::schema::open(&dir.path().join(SqliteLedger::FILE)).unwrap();
    conn.execute("ALTER TABLE log_line RENAME TO log_line_away", [])
        .unwrap();
    let excess = 5_000u64;
    let total = MAX_PENDING as u64 + excess;
    let (mut oldest, mut newest) = (String::new(), String::new());
    for n in 1..=total {
        let id = id(n);
        if n == 1 {
            oldest = id.clone();
        }
        newest = id.clone();
        // A line each: what the renamed table refuses.
        let lines = vec![line(&id, "cart", "x")];
        ledger.record(record(&id, "cart", 1, 1), lines);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ledger.stats().records_dropped.load(Ordering::Relaxed) < excess {
        assert!(std::time::Instant::now() < deadline, "nothing dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.execute("ALTER TABLE log_line_away RENAME TO log_line", [])
        .unwrap();
    assert!(ledger.flush(FLUSH).await);
    assert_eq!(
        ledger.stats().records_dropped.load(Ordering::Relaxed),
        excess
    );
    assert!(ledger.invocation(oldest).await.unwrap().is_none());
    assert!(ledger.invocation(newest).await.unwrap().is_some());
    let usage = ledger.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(usage.total.requests, 1 + MAX_PENDING as u64);
}

/// Past its size budget the ledger deletes the oldest raw records and log
/// lines, whatever their age; usage stays whole (from the hourly roll-ups,
/// reported as such) and the newest invocations read back.
#[tokio::test]
async fn past_its_size_the_oldest_records_and_lines_go_and_usage_stays_whole() {
    const BUDGET: u64 = 2 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteLedger::FILE);
    let retention = Retention {
        max_bytes: BUDGET,
        ..Retention::default()
    };
    let ledger = SqliteLedger::open(&path, retention, PriceSheet::default()).unwrap();
    let text = "x".repeat(200);
    let mut n = 0;
    let mut first = String::new();
    for _ in 0..10 {
        for _ in 0..2000 {
            n += 1;
            let id = id(n);
            if n == 1 {
                first = id.clone();
            }
            ledger.record(record(&id, "cart", 1, 1), vec![line(&id, "cart", &text)]);
        }
        assert!(ledger.flush(FLUSH).await);
    }
    let last = id(n);
    ledger.record(
        record(&last, "cart", 1, 1),
        vec![line(&last, "cart", "last")],
    );
    assert!(ledger.flush(FLUSH).await);

    let conn = crate::schema::open(&path).unwrap();
    let before = crate::writer::used_bytes(&conn).unwrap();
    assert!(
        before > BUDGET,
        "the test writes more than the budget: {before}"
    );
    // The writer trims every few seconds; do it now.
    crate::writer::trim(&conn, BUDGET).unwrap();
    let after = crate::writer::used_bytes(&conn).unwrap();
    assert!(after <= BUDGET, "{after} bytes kept of a {BUDGET} budget");

    assert!(
        ledger.invocation(first).await.unwrap().is_none(),
        "the oldest went"
    );
    assert!(ledger.invocation(last.clone()).await.unwrap().is_some());
    let lines = ledger
        .logs(LogQuery {
            app: "shop".into(),
            function: "cart".into(),
            since: None,
            invocation: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(lines[0].text, "last");
    for since in [None, Some(SystemTime::now() - Duration::from_secs(600))] {
        let usage = ledger
            .usage(UsageQuery {
                app: Some("shop".into()),
                since,
            })
            .await
            .unwrap();
        assert_eq!(usage.total.requests, n + 1, "{since:?}");
        assert_eq!(usage.granularity, "hour", "raw records are no longer whole");
    }
}
