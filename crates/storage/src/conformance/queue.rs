//! The event-queue conformance suite: what every [`EventQueue`] must do,
//! the same way. A backend's crate runs it with
//! [`queue_conformance!`](crate::queue_conformance), one test per check; a
//! new backend (a JetStream one, say) is done when it passes.
//!
//! Each check opens a fresh, empty queue (some lease from every queue).
//! Checks that need time to pass (a backoff, a lease running out) use
//! short ones and wait for the outcome with a deadline, never a fixed
//! sleep, so a slow machine makes them slower, not flaky.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::queue::{Delivery, EventQueue, EventState, NewEvent, QueueError, RetryPolicy, Settled};

/// Opens a fresh, empty queue that retries with the policy, with whatever
/// must live as long as it (say the directory of a SQLite file).
pub type Open = dyn Fn(RetryPolicy) -> super::Opened<Arc<dyn EventQueue>>;

/// Long enough that no check sees it run out unless it waits for that.
const LEASE: Duration = Duration::from_secs(30);
/// How long a check waits for something due to come.
const DEADLINE: Duration = Duration::from_secs(10);

/// An event of `queue` with this id, as a backend's own tests build one.
pub fn event(queue: &str, id: &str, max_attempts: u32) -> NewEvent {
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
        traceparent: None,
        tracestate: None,
        max_attempts,
    }
}

/// Retries come back at once, so checks need not wait for backoff.
pub fn no_backoff() -> RetryPolicy {
    RetryPolicy {
        base: Duration::ZERO,
        max: Duration::ZERO,
        jitter: 0.0,
    }
}

async fn lease(q: &Arc<dyn EventQueue>, queue: Option<&str>, max: usize) -> Vec<Delivery> {
    q.lease(queue, max, LEASE).await.unwrap()
}

async fn lease_one(q: &Arc<dyn EventQueue>, queue: &str) -> Delivery {
    let mut leased = lease(q, Some(queue), 1).await;
    assert_eq!(leased.len(), 1, "one event of {queue} is due");
    leased.remove(0)
}

/// Leases from `queue` until something is due, failing after `DEADLINE`.
async fn lease_when_due(q: &Arc<dyn EventQueue>, queue: &str) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let leased = lease(q, Some(queue), 10).await;
        if !leased.is_empty() {
            return leased;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing of {queue} came due within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.id.as_str()).collect()
}

pub async fn an_event_is_delivered_once_settled_and_shows_its_result(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let before = SystemTime::now() - Duration::from_secs(1);
    let seq = q.enqueue(event("orders", "e1", 3)).await.unwrap();
    assert!(seq > 0);
    // The same id again is the same event.
    assert_eq!(q.enqueue(event("orders", "e1", 3)).await.unwrap(), seq);
    assert!(lease(&q, Some("other"), 10).await.is_empty());

    let d = lease_one(&q, "orders").await;
    assert_eq!((d.seq, d.attempt), (seq, 1));
    // Everything else is the event as it was sent.
    let sent = Delivery::unqueued(event("orders", "e1", 3), 1, d.time);
    assert_eq!(
        Delivery {
            seq: 0,
            ..d.clone()
        },
        sent
    );
    assert!(d.time >= before && d.time <= SystemTime::now() + Duration::from_secs(1));
    let status = q.status("e1").await.unwrap().unwrap();
    assert_eq!(
        (status.seq, status.state, status.attempts),
        (seq, EventState::Running, 1)
    );
    // Leased: nobody else gets it.
    assert!(lease(&q, None, 10).await.is_empty());

    q.succeed(seq, Some((200, b"ok".to_vec()))).await.unwrap();
    let status = q.status("e1").await.unwrap().unwrap();
    assert_eq!(status.state, EventState::Succeeded);
    assert_eq!(status.result_status, Some(200));
    assert_eq!(status.result_body.as_deref(), Some(&b"ok"[..]));
    assert!(lease(&q, None, 10).await.is_empty());
    // Settling twice is an error, not a silent change.
    assert!(matches!(
        q.succeed(seq, None).await,
        Err(QueueError::NotFound(_))
    ));
    // A handled event still de-duplicates its id, and stays handled.
    assert_eq!(q.enqueue(event("orders", "e1", 3)).await.unwrap(), seq);
    assert!(lease(&q, None, 10).await.is_empty());
}

pub async fn failures_are_retried_then_dead_then_redriven(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    q.enqueue(event("pay", "p1", 2)).await.unwrap();
    let first = lease_one(&q, "pay").await;
    let settled = q
        .fail(first.seq, "502 function_trapped".into())
        .await
        .unwrap();
    assert!(matches!(settled, Settled::Retry(_)));
    let status = q.status("p1").await.unwrap().unwrap();
    assert_eq!(
        (status.state, status.attempts, status.last_error.as_deref()),
        (EventState::Queued, 1, Some("502 function_trapped"))
    );

    let second = lease_one(&q, "pay").await;
    assert_eq!(
        (second.id.as_str(), second.attempt),
        ("p1", 2),
        "same ce-id"
    );
    let settled = q.fail(second.seq, "504 timeout".into()).await.unwrap();
    assert_eq!(settled, Settled::Dead);
    assert!(lease(&q, Some("pay"), 1).await.is_empty());

    let dead = q.dead_letters("pay", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, EventState::Dead);
    assert_eq!(dead[0].last_error.as_deref(), Some("504 timeout"));
    assert_eq!(dead[0].attempts, 2);

    assert_eq!(q.redrive("pay", Some("nope")).await.unwrap(), 0);
    assert_eq!(q.redrive("other", None).await.unwrap(), 0);
    assert_eq!(q.redrive("pay", None).await.unwrap(), 1);
    let again = lease_one(&q, "pay").await;
    assert_eq!((again.id.as_str(), again.attempt), ("p1", 1));
    assert!(q.dead_letters("pay", 10).await.unwrap().is_empty());

    // An event asking for no attempts gets one.
    q.enqueue(event("once", "o1", 0)).await.unwrap();
    let d = lease_one(&q, "once").await;
    assert_eq!(d.max_attempts, 1);
    assert_eq!(q.fail(d.seq, "no".into()).await.unwrap(), Settled::Dead);
}

pub async fn a_retry_waits_for_its_backoff(open: &Open) {
    let policy = RetryPolicy {
        base: Duration::from_secs(60),
        max: Duration::from_secs(60),
        jitter: 0.0,
    };
    let (q, _guard) = open(policy).await;
    q.enqueue(event("slow", "s1", 5)).await.unwrap();
    let d = lease_one(&q, "slow").await;
    let Settled::Retry(at) = q.fail(d.seq, "boom".into()).await.unwrap() else {
        panic!("expected a retry");
    };
    assert!(at > SystemTime::now() + Duration::from_secs(50));
    assert!(lease(&q, Some("slow"), 1).await.is_empty());
    let status = q.status("s1").await.unwrap().unwrap();
    assert!(status.next_at > SystemTime::now() + Duration::from_secs(50));
}

pub async fn a_retry_is_due_once_its_backoff_has_passed(open: &Open) {
    let policy = RetryPolicy {
        base: Duration::from_millis(500),
        max: Duration::from_millis(500),
        jitter: 0.0,
    };
    let (q, _guard) = open(policy).await;
    q.enqueue(event("soon", "s1", 3)).await.unwrap();
    let d = lease_one(&q, "soon").await;
    let Settled::Retry(at) = q.fail(d.seq, "boom".into()).await.unwrap() else {
        panic!("expected a retry");
    };
    let again = lease_when_due(&q, "soon").await;
    assert!(SystemTime::now() >= at, "delivered before its backoff");
    assert_eq!((again[0].id.as_str(), again[0].attempt), ("s1", 2));
}

pub async fn an_expired_lease_is_delivered_again(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    q.enqueue(event("q", "x", 3)).await.unwrap();
    let before = SystemTime::now();
    // The deliverer "dies": its lease runs out without a settle.
    let first = q
        .lease(Some("q"), 1, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = lease_when_due(&q, "q").await;
    assert!(SystemTime::now() >= before + Duration::from_millis(200));
    assert_eq!((again[0].id.as_str(), again[0].attempt), ("x", 2));
}

pub async fn an_extended_lease_outlasts_its_first_term(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    q.enqueue(event("long", "l1", 3)).await.unwrap();
    let short = Duration::from_millis(300);
    let d = q
        .lease(Some("long"), 1, short)
        .await
        .unwrap()
        .pop()
        .unwrap();
    // Renewed past the first term, it is not handed out again.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        q.extend(d.seq, short).await.unwrap();
    }
    assert!(lease(&q, Some("long"), 1).await.is_empty());
    assert_eq!(
        q.status("l1").await.unwrap().unwrap().state,
        EventState::Running
    );
    q.succeed(d.seq, None).await.unwrap();
    // Settled, it has no lease to extend; nor has an unknown seq.
    assert!(matches!(
        q.extend(d.seq, short).await,
        Err(QueueError::NotFound(_))
    ));
    assert!(matches!(
        q.extend(d.seq + 1_000, short).await,
        Err(QueueError::NotFound(_))
    ));

    // Not renewed, a lease runs out and the event is leased again.
    q.enqueue(event("long", "l2", 3)).await.unwrap();
    let first = q
        .lease(Some("long"), 1, short)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let started = std::time::Instant::now();
    let again = loop {
        if let Some(d) = q.lease(Some("long"), 1, LEASE).await.unwrap().pop() {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never leased again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (again.seq, again.id.as_str(), again.attempt),
        (first.seq, "l2", 2)
    );
}

pub async fn a_released_event_keeps_its_attempts(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    q.enqueue(event("busy", "b1", 1)).await.unwrap();
    for _ in 0..3 {
        let d = lease_one(&q, "busy").await;
        assert_eq!(d.attempt, 1, "back-pressure uses up no attempt");
        q.release(d.seq, Duration::ZERO).await.unwrap();
    }
    let d = lease_one(&q, "busy").await;
    assert_eq!(q.fail(d.seq, "real".into()).await.unwrap(), Settled::Dead);

    // Released with a delay, it waits that long.
    q.enqueue(event("later", "l1", 3)).await.unwrap();
    let d = lease_one(&q, "later").await;
    q.release(d.seq, Duration::from_secs(60)).await.unwrap();
    assert!(lease(&q, Some("later"), 1).await.is_empty());
    let status = q.status("l1").await.unwrap().unwrap();
    assert_eq!((status.state, status.attempts), (EventState::Queued, 0));
    assert!(status.next_at > SystemTime::now() + Duration::from_secs(50));
}

pub async fn a_rejected_event_is_dead_at_once_without_using_an_attempt(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    q.enqueue(event("fn:app/f", "big", 5)).await.unwrap();
    let d = lease(&q, None, 1).await.remove(0);
    q.reject(d.seq, "body_too_large: 4096 bytes".into())
        .await
        .unwrap();
    assert!(lease(&q, None, 10).await.is_empty());
    let dead = q.dead_letters("fn:app/f", 10).await.unwrap();
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref()),
        (0, Some("body_too_large: 4096 bytes"))
    );
    // Settling it again finds nothing leased.
    assert!(matches!(
        q.reject(d.seq, "again".into()).await,
        Err(QueueError::NotFound(_))
    ));
    assert_eq!(q.redrive("fn:app/f", Some("big")).await.unwrap(), 1);
    assert_eq!(lease(&q, None, 1).await[0].attempt, 1);
}

pub async fn only_a_leased_event_can_be_settled(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let waiting = q.enqueue(event("q", "w", 3)).await.unwrap();
    for seq in [waiting, waiting + 1_000_000] {
        let not_found =
            |r: Result<(), QueueError>| matches!(r, Err(QueueError::NotFound(s)) if s == seq);
        assert!(not_found(q.succeed(seq, None).await));
        assert!(not_found(q.release(seq, Duration::ZERO).await));
        assert!(not_found(q.reject(seq, "x".into()).await));
        assert!(matches!(q.fail(seq, "x".into()).await, Err(QueueError::NotFound(s)) if s == seq));
    }
    // None of that touched the waiting event.
    let status = q.status("w").await.unwrap().unwrap();
    assert_eq!(
        (status.state, status.attempts, status.last_error),
        (EventState::Queued, 0, None)
    );
    assert_eq!(lease_one(&q, "q").await.attempt, 1);
}

pub async fn ids_are_deduplicated_per_queue_and_origin(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let from = |app: &str| NewEvent {
        origin: Some(app.into()),
        ..event("fn:b/orders", "x", 3)
    };
    // Another app publishing "x" first takes nothing from the queue's own "x".
    let shop = q.enqueue(from("shop")).await.unwrap();
    let own = q.enqueue(event("fn:b/orders", "x", 3)).await.unwrap();
    let other = q.enqueue(from("other")).await.unwrap();
    assert!(shop != own && own != other && shop != other);
    // Each origin still de-duplicates its own ids.
    assert_eq!(q.enqueue(from("shop")).await.unwrap(), shop);
    assert_eq!(q.enqueue(event("fn:b/orders", "x", 3)).await.unwrap(), own);

    let recent = q.recent("fn:b/orders", 10).await.unwrap();
    let mut origins: Vec<Option<&str>> = recent.iter().map(|e| e.origin.as_deref()).collect();
    origins.sort_unstable();
    assert_eq!(origins, [None, Some("other"), Some("shop")]);

    // The same id in another queue (a publish's copy for another consumer)
    // is another event; `status` finds the newest.
    let copy = q.enqueue(event("fn:b/audit", "x", 3)).await.unwrap();
    assert!(copy > other);
    let status = q.status("x").await.unwrap().unwrap();
    assert_eq!((status.seq, status.queue.as_str()), (copy, "fn:b/audit"));
    assert_eq!(lease(&q, None, 10).await.len(), 4);
}

pub async fn lease_takes_the_longest_due_first_and_at_most_max(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let mut seqs = Vec::new();
    for id in ["a0", "a1", "a2", "a3", "a4"] {
        seqs.push(q.enqueue(event("a", id, 3)).await.unwrap());
    }
    for id in ["b0", "b1"] {
        seqs.push(q.enqueue(event("b", id, 3)).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(lease(&q, Some("a"), 0).await.is_empty());
    assert_eq!(ids(&lease(&q, Some("a"), 3).await), ["a0", "a1", "a2"]);
    assert_eq!(ids(&lease(&q, None, 10).await), ["a3", "a4", "b0", "b1"]);
    assert!(lease(&q, None, 10).await.is_empty());
}

pub async fn listings_keep_their_order_and_limit(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    for i in 0..5 {
        q.enqueue(event("q", &format!("e{i}"), 1)).await.unwrap();
    }
    q.enqueue(event("elsewhere", "z", 1)).await.unwrap();
    let newest: Vec<String> = q
        .recent("q", 3)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(newest, ["e4", "e3", "e2"]);
    let all = q.recent("q", 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|e| e.queue == "q" && e.max_attempts == 1));
    assert!(q.recent("nothing", 10).await.unwrap().is_empty());
    assert!(q.status("unknown").await.unwrap().is_none());

    // e3, e1 and e0 die, in that order; dead letters list by seq.
    let leased = lease(&q, Some("q"), 5).await;
    for id in ["e3", "e1", "e0"] {
        let d = leased.iter().find(|d| d.id == id).unwrap();
        let settled = q.fail(d.seq, format!("{id} failed")).await.unwrap();
        assert_eq!(settled, Settled::Dead);
    }
    let dead: Vec<String> = q
        .dead_letters("q", 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(dead, ["e0", "e1"]);
    assert!(q.dead_letters("elsewhere", 10).await.unwrap().is_empty());
    // Redriving one id leaves the others dead.
    assert_eq!(q.redrive("q", Some("e1")).await.unwrap(), 1);
    let dead: Vec<String> = q
        .dead_letters("q", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(dead, ["e0", "e3"]);
}

pub async fn concurrent_enqueues_are_all_stored(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let tasks: Vec<_> = (0..500)
        .map(|i| tokio::spawn(q.enqueue(event("bulk", &format!("b{i}"), 3))))
        .collect();
    let mut seqs = HashSet::new();
    for task in tasks {
        assert!(seqs.insert(task.await.unwrap().unwrap()));
    }
    let all = lease(&q, Some("bulk"), 1000).await;
    let ids: HashSet<&str> = ids(&all).into_iter().collect();
    assert_eq!((all.len(), ids.len()), (500, 500));
}

pub async fn a_cron_tick_is_stored_with_its_event(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert_eq!(q.last_tick("app/f#0").await.unwrap(), None);
    // A first start only marks where the schedule begins.
    let marked = q
        .fire(None, "app/f#0", tick - Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(marked, None);
    assert_eq!(
        q.last_tick("app/f#0").await.unwrap(),
        Some(tick - Duration::from_secs(120))
    );
    assert!(lease(&q, None, 10).await.is_empty());

    let seq = q
        .fire(Some(event("fn:app/f", "tick-1", 3)), "app/f#0", tick)
        .await
        .unwrap();
    assert_eq!(q.status("tick-1").await.unwrap().unwrap().seq, seq.unwrap());
    // An older tick never moves the mark back.
    q.fire(
        Some(event("fn:app/f", "tick-0", 3)),
        "app/f#0",
        tick - Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(q.last_tick("app/f#0").await.unwrap(), Some(tick));
    assert_eq!(q.last_tick("app/f#1").await.unwrap(), None);
    assert_eq!(lease(&q, None, 10).await.len(), 2);
}

pub async fn a_buried_event_is_a_dead_letter_that_redrive_delivers(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    q.bury(event("fn:app/f", "js-1", 3), 3, "answered 500".into())
        .await
        .unwrap();
    assert!(lease(&q, None, 10).await.is_empty());
    let dead = q.dead_letters("fn:app/f", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("answered 500"));
    assert_eq!(q.redrive("fn:app/f", None).await.unwrap(), 1);
    let d = lease(&q, None, 10).await.remove(0);
    assert_eq!((d.id.as_str(), d.attempt), ("js-1", 1));
}

pub async fn burying_a_duplicate_leaves_the_stored_event_alone(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let seq = q.enqueue(event("fn:app/f", "dup", 3)).await.unwrap();
    let buried = q
        .bury(event("fn:app/f", "dup", 3), 0, "too large".into())
        .await
        .unwrap();
    assert_eq!(buried, seq);
    assert!(q.dead_letters("fn:app/f", 10).await.unwrap().is_empty());
    assert_eq!(lease(&q, None, 10).await.len(), 1);
}

pub async fn the_trace_context_is_kept_through_retries_and_redrive(open: &Open) {
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let (q, _guard) = open(no_backoff()).await;
    let traced = NewEvent {
        traceparent: Some(PARENT.into()),
        tracestate: Some(STATE.into()),
        ..event("traced", "t1", 2)
    };
    q.enqueue(traced).await.unwrap();
    q.enqueue(event("traced", "plain", 2)).await.unwrap();
    let context = |d: &Delivery| (d.traceparent.clone(), d.tracestate.clone());
    let expected = (Some(PARENT.to_owned()), Some(STATE.to_owned()));

    let first = lease(&q, Some("traced"), 10).await;
    assert_eq!(ids(&first), ["t1", "plain"]);
    assert_eq!(context(&first[0]), expected);
    assert_eq!(context(&first[1]), (None, None), "none was published");
    q.succeed(first[1].seq, None).await.unwrap();

    // A retry is the same event: it continues the same trace.
    assert!(matches!(
        q.fail(first[0].seq, "500".into()).await.unwrap(),
        Settled::Retry(_)
    ));
    let second = lease_one(&q, "traced").await;
    assert_eq!((second.attempt, context(&second)), (2, expected.clone()));

    // Dead, then redriven: still the publisher's trace.
    assert_eq!(
        q.fail(second.seq, "500".into()).await.unwrap(),
        Settled::Dead
    );
    assert_eq!(q.redrive("traced", Some("t1")).await.unwrap(), 1);
    let again = lease_one(&q, "traced").await;
    assert_eq!((again.attempt, context(&again)), (1, expected.clone()));

    // So is an event buried where it came in (a broker's), once redriven.
    let buried = NewEvent {
        traceparent: Some(PARENT.into()),
        tracestate: Some(STATE.into()),
        ..event("buried", "b1", 3)
    };
    q.bury(buried, 3, "answered 500".into()).await.unwrap();
    assert_eq!(q.redrive("buried", None).await.unwrap(), 1);
    let redriven = lease_one(&q, "buried").await;
    assert_eq!(context(&redriven), expected);
}

/// `backlog` names each queue with events waiting or dead, how many, and
/// since when the oldest waits; what was handled is not counted.
pub async fn the_backlog_counts_what_waits_and_what_is_dead(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    assert_eq!(q.backlog().await.unwrap(), Vec::new(), "nothing yet");
    // Stored times may be rounded to the millisecond or the second.
    let before = SystemTime::now() - Duration::from_secs(1);
    for id in ["a1", "a2", "a3"] {
        q.enqueue(event("alpha", id, 1)).await.unwrap();
    }
    q.enqueue(event("beta", "b1", 1)).await.unwrap();
    let leased = lease(&q, Some("alpha"), 2).await;
    assert_eq!(ids(&leased), ["a1", "a2"]);
    q.succeed(leased[0].seq, None).await.unwrap();
    assert_eq!(
        q.fail(leased[1].seq, "500".into()).await.unwrap(),
        Settled::Dead
    );

    let backlog = q.backlog().await.unwrap();
    let shown: Vec<(&str, u64, u64)> = backlog
        .iter()
        .map(|b| (b.queue.as_str(), b.waiting, b.dead))
        .collect();
    assert_eq!(shown, [("alpha", 1, 1), ("beta", 1, 0)]);
    for b in &backlog {
        let oldest = b.oldest.expect("a waiting event has a time");
        assert!(oldest >= before && oldest <= SystemTime::now(), "{b:?}");
    }

    // A leased event still waits; once all are done only the dead remain.
    let rest = lease(&q, None, 10).await;
    assert_eq!(rest.len(), 2);
    let backlog = q.backlog().await.unwrap();
    assert_eq!(
        backlog.iter().map(|b| b.waiting).sum::<u64>(),
        2,
        "being delivered is waiting: {backlog:?}"
    );
    for d in rest {
        q.succeed(d.seq, None).await.unwrap();
    }
    let backlog = q.backlog().await.unwrap();
    let shown: Vec<(&str, u64, Option<SystemTime>, u64)> = backlog
        .iter()
        .map(|b| (b.queue.as_str(), b.waiting, b.oldest, b.dead))
        .collect();
    assert_eq!(shown, [("alpha", 0, None, 1)]);
}

pub async fn a_waiting_or_dead_event_reads_back_as_published(open: &Open) {
    let (q, _guard) = open(no_backoff()).await;
    let mut sent = event("jobs", "j1", 1);
    sent.origin = Some("shop".into());
    sent.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    q.enqueue(sent.clone()).await.unwrap();
    q.enqueue(event("jobs", "j2", 1)).await.unwrap();
    // Waiting: as published (at least one attempt, as stored).
    assert_eq!(q.published("jobs", "j1").await.unwrap(), Some(sent.clone()));

    let leased = lease(&q, Some("jobs"), 10).await;
    let first = leased.iter().find(|d| d.id == "j1").unwrap();
    assert_eq!(
        q.fail(first.seq, "refused".into()).await.unwrap(),
        Settled::Dead
    );
    // Dead: still as published.
    assert_eq!(q.published("jobs", "j1").await.unwrap(), Some(sent));
    assert_eq!(
        q.published("jobs", "j2").await.unwrap().map(|e| e.id),
        Some("j2".into())
    );
    assert_eq!(q.published("jobs", "nope").await.unwrap(), None);
    assert_eq!(q.published("other", "j1").await.unwrap(), None, "by queue");
}

/// One `#[tokio::test]` per check of the event-queue conformance suite,
/// each opening its queue with `$open` (a
/// [`conformance::queue::Open`](crate::conformance::queue::Open)).
#[macro_export]
macro_rules! queue_conformance {
    ($open:expr) => {
        $crate::queue_conformance!(@checks $open;
            an_event_is_delivered_once_settled_and_shows_its_result,
            failures_are_retried_then_dead_then_redriven,
            a_retry_waits_for_its_backoff,
            a_retry_is_due_once_its_backoff_has_passed,
            an_expired_lease_is_delivered_again,
            an_extended_lease_outlasts_its_first_term,
            a_released_event_keeps_its_attempts,
            a_rejected_event_is_dead_at_once_without_using_an_attempt,
            only_a_leased_event_can_be_settled,
            ids_are_deduplicated_per_queue_and_origin,
            lease_takes_the_longest_due_first_and_at_most_max,
            listings_keep_their_order_and_limit,
            concurrent_enqueues_are_all_stored,
            a_cron_tick_is_stored_with_its_event,
            a_buried_event_is_a_dead_letter_that_redrive_delivers,
            burying_a_duplicate_leaves_the_stored_event_alone,
            the_trace_context_is_kept_through_retries_and_redrive,
            the_backlog_counts_what_waits_and_what_is_dead,
            a_waiting_or_dead_event_reads_back_as_published,
        );
    };
    (@checks $open:expr; $($check:ident,)*) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::conformance::queue::$check(&$open).await;
            }
        )*
    };
}
