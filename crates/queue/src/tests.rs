use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::*;

fn event(queue: &str, id: &str, max_attempts: u32) -> NewEvent {
    NewEvent {
        queue: queue.into(),
        origin: None,
        id: id.into(),
        source: "/tests".into(),
        kind: "com.example.test".into(),
        subject: Some("subject".into()),
        path: "/".into(),
        content_type: Some("application/json".into()),
        data: br#"{"n":1}"#.to_vec(),
        max_attempts,
    }
}

/// Retries come back at once, so tests need not wait for backoff.
fn no_backoff() -> RetryPolicy {
    RetryPolicy {
        base: Duration::ZERO,
        max: Duration::ZERO,
        jitter: 0.0,
    }
}

fn open(dir: &tempfile::TempDir, policy: RetryPolicy) -> Queue {
    Queue::open(
        &dir.path().join(Queue::FILE),
        policy,
        Duration::from_secs(86_400),
    )
    .unwrap()
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_event_is_delivered_once_settled_and_shows_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    let seq = queue.enqueue(event("orders", "e1", 3)).await.unwrap();
    // The same id again is the same event.
    assert_eq!(queue.enqueue(event("orders", "e1", 3)).await.unwrap(), seq);
    assert!(
        queue
            .lease(Some("other"), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    let leased = queue.lease(Some("orders"), 10, LEASE).await.unwrap();
    assert_eq!(leased.len(), 1);
    let d = &leased[0];
    assert_eq!((d.id.as_str(), d.attempt, d.max_attempts), ("e1", 1, 3));
    assert_eq!(d.subject.as_deref(), Some("subject"));
    assert_eq!(d.data, br#"{"n":1}"#);
    assert_eq!(
        queue.status("e1").unwrap().unwrap().state,
        EventState::Running
    );
    // Leased: nobody else gets it.
    assert!(
        queue
            .lease(Some("orders"), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    queue
        .succeed(seq, Some((200, b"ok".to_vec())))
        .await
        .unwrap();
    let status = queue.status("e1").unwrap().unwrap();
    assert_eq!(status.state, EventState::Succeeded);
    assert_eq!(status.result_status, Some(200));
    assert_eq!(status.result_body.as_deref(), Some(&b"ok"[..]));
    assert!(
        queue
            .lease(Some("orders"), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    // Settling twice is an error, not a silent change.
    assert!(matches!(
        queue.succeed(seq, None).await,
        Err(QueueError::NotFound(_))
    ));
}

#[tokio::test]
async fn failures_are_retried_then_dead_then_redriven() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    queue.enqueue(event("pay", "p1", 2)).await.unwrap();
    let first = queue.lease(Some("pay"), 1, LEASE).await.unwrap().remove(0);
    let settled = queue
        .fail(first.seq, "502 function_trapped".into())
        .await
        .unwrap();
    assert!(matches!(settled, Settled::Retry(_)));

    let second = queue.lease(Some("pay"), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(
        (second.id.as_str(), second.attempt),
        ("p1", 2),
        "same ce-id"
    );
    let settled = queue.fail(second.seq, "504 timeout".into()).await.unwrap();
    assert_eq!(settled, Settled::Dead);
    assert!(queue.lease(Some("pay"), 1, LEASE).await.unwrap().is_empty());

    let dead = queue.dead_letters("pay", 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("504 timeout"));
    assert_eq!(dead[0].attempts, 2);

    assert_eq!(queue.redrive("pay", Some("nope")).await.unwrap(), 0);
    assert_eq!(queue.redrive("pay", None).await.unwrap(), 1);
    let again = queue.lease(Some("pay"), 1, LEASE).await.unwrap().remove(0);
    assert_eq!((again.id.as_str(), again.attempt), ("p1", 1));
    assert!(queue.dead_letters("pay", 10).unwrap().is_empty());
}

#[tokio::test]
async fn a_retry_waits_for_its_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RetryPolicy {
        base: Duration::from_secs(60),
        max: Duration::from_secs(60),
        jitter: 0.0,
    };
    let queue = open(&dir, policy);
    queue.enqueue(event("slow", "s1", 5)).await.unwrap();
    let d = queue.lease(Some("slow"), 1, LEASE).await.unwrap().remove(0);
    let Settled::Retry(at) = queue.fail(d.seq, "boom".into()).await.unwrap() else {
        panic!("expected a retry");
    };
    assert!(at > SystemTime::now() + Duration::from_secs(50));
    assert!(
        queue
            .lease(Some("slow"), 1, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_lease_is_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    queue.enqueue(event("q", "x", 3)).await.unwrap();
    // The deliverer "dies": its lease runs out without a settle.
    let first = queue.lease(Some("q"), 1, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1);
    let again = queue.lease(Some("q"), 1, LEASE).await.unwrap();
    assert_eq!((again[0].id.as_str(), again[0].attempt), ("x", 2));
}

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

#[test]
fn backoff_doubles_up_to_its_cap_minus_jitter() {
    let policy = RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(10),
        jitter: 0.5,
    };
    for _ in 0..100 {
        let d3 = policy.delay(3);
        assert!(
            d3 <= Duration::from_secs(4) && d3 >= Duration::from_secs(2),
            "{d3:?}"
        );
        let d9 = policy.delay(9);
        assert!(
            d9 <= Duration::from_secs(10) && d9 >= Duration::from_secs(5),
            "{d9:?}"
        );
    }
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
async fn a_released_event_keeps_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    queue.enqueue(event("busy", "b1", 1)).await.unwrap();
    for _ in 0..3 {
        let d = queue.lease(Some("busy"), 1, LEASE).await.unwrap().remove(0);
        assert_eq!(d.attempt, 1, "back-pressure uses up no attempt");
        queue.release(d.seq, Duration::ZERO).await.unwrap();
    }
    let d = queue.lease(Some("busy"), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(
        queue.fail(d.seq, "real".into()).await.unwrap(),
        Settled::Dead
    );
}

#[tokio::test]
async fn a_rejected_event_is_dead_at_once_without_using_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    queue.enqueue(event("fn:app/f", "big", 5)).await.unwrap();
    let d = queue.lease(None, 1, LEASE).await.unwrap().remove(0);
    queue
        .reject(d.seq, "body_too_large: 4096 bytes".into())
        .await
        .unwrap();
    assert!(queue.lease(None, 10, LEASE).await.unwrap().is_empty());
    let dead = queue.dead_letters("fn:app/f", 10).unwrap();
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref()),
        (0, Some("body_too_large: 4096 bytes"))
    );
    // Settling it again finds nothing leased.
    assert!(queue.reject(d.seq, "again".into()).await.is_err());
    assert_eq!(queue.redrive("fn:app/f", Some("big")).await.unwrap(), 1);
}

#[tokio::test]
async fn a_cron_tick_is_stored_with_its_event_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    {
        let queue = open(&dir, no_backoff());
        assert_eq!(queue.last_tick("app/f#0").unwrap(), None);
        queue
            .fire(Some(event("fn:app/f", "tick-1", 3)), "app/f#0", tick)
            .await
            .unwrap();
        // An older tick never moves the mark back.
        queue
            .fire(
                Some(event("fn:app/f", "tick-0", 3)),
                "app/f#0",
                tick - Duration::from_secs(60),
            )
            .await
            .unwrap();
    }
    let queue = open(&dir, no_backoff());
    assert_eq!(queue.last_tick("app/f#0").unwrap(), Some(tick));
    assert_eq!(queue.lease(None, 10, LEASE).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_buried_event_is_a_dead_letter_that_redrive_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    queue
        .bury(event("fn:app/f", "js-1", 3), 3, "answered 500".into())
        .await
        .unwrap();
    assert!(queue.lease(None, 10, LEASE).await.unwrap().is_empty());
    let dead = queue.dead_letters("fn:app/f", 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("answered 500"));
    assert_eq!(queue.redrive("fn:app/f", None).await.unwrap(), 1);
    let d = queue.lease(None, 10, LEASE).await.unwrap().remove(0);
    assert_eq!((d.id.as_str(), d.attempt), ("js-1", 1));
}

#[tokio::test]
async fn burying_a_duplicate_leaves_the_stored_event_alone() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    queue.enqueue(event("fn:app/f", "dup", 3)).await.unwrap();
    queue
        .bury(event("fn:app/f", "dup", 3), 0, "too large".into())
        .await
        .unwrap();
    assert!(queue.dead_letters("fn:app/f", 10).unwrap().is_empty());
    assert_eq!(queue.lease(None, 10, LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn another_apps_id_never_shadows_the_queues_own() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&dir, no_backoff());
    let from = |app: &str| NewEvent {
        origin: Some(app.into()),
        ..event("fn:b/orders", "x", 3)
    };
    // Another app publishing "x" first takes nothing from the queue's own "x".
    let shop = queue.enqueue(from("shop")).await.unwrap();
    let own = queue.enqueue(event("fn:b/orders", "x", 3)).await.unwrap();
    let other = queue.enqueue(from("other")).await.unwrap();
    assert!(shop != own && own != other && shop != other);
    // Each origin still de-duplicates its own ids.
    assert_eq!(queue.enqueue(from("shop")).await.unwrap(), shop);
    assert_eq!(
        queue.enqueue(event("fn:b/orders", "x", 3)).await.unwrap(),
        own
    );

    let recent = queue.recent("fn:b/orders", 10).unwrap();
    let mut origins: Vec<Option<&str>> = recent.iter().map(|e| e.origin.as_deref()).collect();
    origins.sort_unstable();
    assert_eq!(origins, [None, Some("other"), Some("shop")]);
    assert_eq!(queue.lease(None, 10, LEASE).await.unwrap().len(), 3);
}

#[tokio::test]
async fn events_stored_before_origins_existed_survive_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(Queue::FILE);
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
    let queue = open(&dir, no_backoff());
    let old = queue.status("old-2").unwrap().unwrap();
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
