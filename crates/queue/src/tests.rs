//! What only the SQLite queue can show: its file outlives the process (a
//! reopen finds what was acknowledged, and what was leased is due at
//! once), and its schema migrates. Everything any backend must do is in
//! the storage crate's conformance suite (`conformance.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stratus_storage::conformance::queue::{event, no_backoff};
use stratus_storage::{EventQueue, EventState, RetryPolicy};

use crate::SqliteQueue;

fn open(dir: &tempfile::TempDir, policy: RetryPolicy) -> SqliteQueue {
    SqliteQueue::open(
        &dir.path().join(SqliteQueue::FILE),
        policy,
        Duration::from_secs(86_400),
    )
    .unwrap()
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn acknowledged_events_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = Arc::new(open(&dir, no_backoff()));
        let mut tasks = Vec::new();
        for i in 0..500 {
            let queue = queue.clone();
            tasks.push(tokio::spawn(async move {
                queue.enqueue(event("bulk", &format!("b{i}"), 3)).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    let queue = open(&dir, no_backoff());
    let all = queue.lease(Some("bulk"), 1000, LEASE).await.unwrap();
    assert_eq!(all.len(), 500);
}

#[tokio::test]
async fn a_restart_makes_leased_events_due_at_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = open(&dir, no_backoff());
        queue.enqueue(event("q", "r1", 3)).await.unwrap();
        let leased = queue
            .lease(None, 10, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
    }
    let queue = open(&dir, no_backoff());
    let again = queue.lease(None, 10, LEASE).await.unwrap();
    assert_eq!((again[0].id.as_str(), again[0].queue.as_str()), ("r1", "q"));
}

#[tokio::test]
async fn a_cron_tick_and_its_event_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    {
        let queue = open(&dir, no_backoff());
        queue
            .fire(Some(event("fn:app/f", "tick-1", 3)), "app/f#0", tick)
            .await
            .unwrap();
    }
    let queue = open(&dir, no_backoff());
    assert_eq!(queue.last_tick("app/f#0").await.unwrap(), Some(tick));
    assert_eq!(queue.lease(None, 10, LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn events_stored_before_origins_existed_survive_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteQueue::FILE);
    {
        // A queue as a node before this schema left it: version 2, one
        // event waiting, one already handled.
        let mut conn = stratus_sqlite::open(&path, false).unwrap();
        stratus_sqlite::migrate(&mut conn, &path, &crate::schema::MIGRATIONS[..2]).unwrap();
        conn.execute_batch(
            "INSERT INTO event (seq, queue, id, source, kind, path, data, state, max_attempts,
                                created_us, updated_us, next_us)
             VALUES (7, 'fn:b/orders', 'old-1', '/s', 't', '/', x'01', 'queued', 3, 1, 1, 1),
                    (8, 'fn:b/orders', 'old-2', '/s', 't', '/', x'02', 'succeeded', 3, 1, 1, 1);",
        )
        .unwrap();
    }
    // Kept however old: the writer's first pruning would race the reads.
    let queue = SqliteQueue::open(&path, no_backoff(), Duration::MAX).unwrap();
    let old = queue.status("old-2").await.unwrap().unwrap();
    assert_eq!(
        (old.seq, old.state, old.origin),
        (8, EventState::Succeeded, None)
    );
    // The stored events keep de-duplicating the queue's own publishes ...
    assert_eq!(
        queue
            .enqueue(event("fn:b/orders", "old-1", 3))
            .await
            .unwrap(),
        7
    );
    // ... and the waiting one is delivered.
    let leased = queue.lease(None, 10, LEASE).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!((leased[0].seq, leased[0].id.as_str()), (7, "old-1"));
    assert_eq!(leased[0].data, [1]);
}

#[tokio::test]
async fn events_stored_before_trace_contexts_are_delivered_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteQueue::FILE);
    {
        // A queue as a node before trace contexts left it: version 3.
        let mut conn = stratus_sqlite::open(&path, false).unwrap();
        stratus_sqlite::migrate(&mut conn, &path, &crate::schema::MIGRATIONS[..3]).unwrap();
        conn.execute_batch(
            "INSERT INTO event (seq, queue, id, source, kind, path, data, state, max_attempts,
                                created_us, updated_us, next_us)
             VALUES (3, 'fn:b/orders', 'old-1', '/s', 't', '/', x'01', 'queued', 3, 1, 1, 1);",
        )
        .unwrap();
    }
    let queue = open(&dir, no_backoff());
    let traced = stratus_storage::NewEvent {
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        tracestate: Some("rojo=1".into()),
        ..event("fn:b/orders", "new-1", 3)
    };
    queue.enqueue(traced.clone()).await.unwrap();
    let leased = queue.lease(None, 10, LEASE).await.unwrap();
    let seen: Vec<_> = leased
        .iter()
        .map(|d| (d.id.as_str(), d.traceparent.clone(), d.tracestate.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("old-1", None, None),
            ("new-1", traced.traceparent, traced.tracestate)
        ]
    );
}

#[tokio::test]
async fn errors_read_as_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    let err = queue.succeed(42, None).await.unwrap_err();
    assert_eq!(err.to_string(), "no event 42 is waiting in this queue");
    // A database that cannot be opened names itself, through `Backend`.
    let err = SqliteQueue::open(dir.path(), no_backoff(), LEASE).unwrap_err();
    assert!(
        matches!(err, stratus_storage::QueueError::Backend(_)),
        "{err}"
    );
    assert!(err.to_string().contains("cannot open database"), "{err}");
}

/// Settled events (succeeded or dead) are pruned once they settled longer
/// ago than `keep_settled`; what is still waiting or running never is, and
/// a pruned id no longer de-duplicates.
#[test]
fn pruning_removes_only_events_settled_before_the_cutoff() {
    use crate::store;
    let dir = tempfile::tempdir().unwrap();
    let conn = crate::schema::open(&dir.path().join(SqliteQueue::FILE)).unwrap();
    let seq = |id: &str, at: i64| store::enqueue(&conn, &event("q", id, 3), at).unwrap();
    let (old_done, new_done, running) = (
        seq("old-done", 100),
        seq("new-done", 100),
        seq("running", 100),
    );
    seq("waiting", 100);
    store::bury(&conn, &event("q", "old-dead", 3), 3, "no", 200).unwrap();
    store::bury(&conn, &event("q", "new-dead", 3), 3, "no", 900).unwrap();
    // Lease the first three (due at 100, in order) and settle two of them.
    let leased = store::lease(&conn, Some("q"), 3, LEASE, 150).unwrap();
    assert_eq!(
        leased.iter().map(|d| d.seq).collect::<Vec<_>>(),
        [old_done, new_done, running]
    );
    assert!(store::succeed(&conn, old_done, None, 200).unwrap());
    assert!(store::succeed(&conn, new_done, None, 900).unwrap());

    assert_eq!(store::prune(&conn, 500).unwrap(), 2);
    let state = |id: &str| store::status(&conn, id).unwrap().map(|s| s.state);
    assert_eq!(state("old-done"), None);
    assert_eq!(state("old-dead"), None);
    assert_eq!(state("new-done"), Some(EventState::Succeeded));
    assert_eq!(state("new-dead"), Some(EventState::Dead));
    assert_eq!(state("running"), Some(EventState::Running));
    assert_eq!(state("waiting"), Some(EventState::Queued));
    // Nothing else is old enough; a pruned id is a new event again.
    assert_eq!(store::prune(&conn, 500).unwrap(), 0);
    let again = seq("old-done", 1000);
    assert!(again > old_done, "{again} after {old_done}");
    assert_eq!(state("old-done"), Some(EventState::Queued));
}
