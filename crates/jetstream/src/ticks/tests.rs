//! Cron ticks shared through a bucket on the NATS server at 127.0.0.1:4222
//! (`scripts/brokers.sh`), each node's queue a SQLite one of its own.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stratus_queue::SqliteQueue;
use stratus_storage::{EventQueue, NewEvent, RetryPolicy};

use crate::testing::{Scratch, bucket_name};
use crate::{Kv, KvSettings, SharedTicks};

fn sqlite(dir: &tempfile::TempDir, policy: RetryPolicy) -> Arc<dyn EventQueue> {
    let path = dir.path().join(SqliteQueue::FILE);
    Arc::new(SqliteQueue::open(&path, policy, Duration::from_secs(86_400)).unwrap())
}

fn tick_event(id: &str) -> NewEvent {
    NewEvent {
        queue: "app/f".into(),
        origin: None,
        id: id.into(),
        source: "/apps/app/functions/f/cron".into(),
        kind: "dev.stratus.cron.tick".into(),
        subject: None,
        path: "/".into(),
        content_type: None,
        data: Vec::new(),
        traceparent: None,
        tracestate: None,
        max_attempts: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_three_nodes_firing_one_tick_exactly_one_stores_it() {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("ticks");
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..3 {
        let marks = Kv::open(scratch.js(), &bucket, &KvSettings::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        nodes.push(Arc::new(SharedTicks::new(
            sqlite(&dir, RetryPolicy::default()),
            marks,
        )));
        dirs.push(dir);
    }
    let _scratch = scratch.removing(format!("KV_{bucket}"));
    let trigger = "app/f cron */1 * * * * * UTC";
    let start = SystemTime::now();
    for second in 0..20u64 {
        let tick = start + Duration::from_secs(second);
        let fired: Vec<_> = nodes
            .iter()
            .map(|node| {
                let node = node.clone();
                tokio::spawn(async move {
                    node.fire(Some(tick_event(&format!("t{second}"))), trigger, tick)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut stored = 0;
        for f in fired {
            stored += usize::from(f.await.unwrap().is_some());
        }
        assert_eq!(stored, 1, "tick {second} stored {stored} times");
        // Every node knows the tick was fired, whoever fired it.
        for node in &nodes {
            assert_eq!(node.last_tick(trigger).await.unwrap(), Some(tick));
        }
    }
    // An older tick (a node catching up late) fires nowhere: the mark
    // moved past it by claims, so some node fired it. (A node on its own
    // stores an older tick's event; see the queue suite.)
    for node in &nodes {
        assert_eq!(
            node.fire(Some(tick_event("old")), trigger, start)
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn everything_but_ticks_goes_to_the_nodes_own_queue() {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("ticks");
    let marks = Kv::open(scratch.js(), &bucket, &KvSettings::default())
        .await
        .unwrap();
    let _scratch = scratch.removing(format!("KV_{bucket}"));
    let dir = tempfile::tempdir().unwrap();
    let own = sqlite(&dir, RetryPolicy::default());
    let shared = SharedTicks::new(own.clone(), marks);
    let seq = shared.enqueue(tick_event("e1")).await.unwrap();
    assert_eq!(own.status("e1").await.unwrap().unwrap().seq, seq);
    let leased = shared
        .lease(None, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    shared
        .succeed(leased[0].seq, Some((200, b"ok".to_vec())))
        .await
        .unwrap();
    assert_eq!(shared.recent("app/f", 10).await.unwrap().len(), 1);
}
