//! The JetStream queue against the event-queue conformance suite, and two
//! nodes sharing one queue, on the NATS server at 127.0.0.1:4222
//! (`scripts/brokers.sh`). Every open uses names of its own and removes
//! its streams when the test ends.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratus_storage::conformance::Opened;
use stratus_storage::conformance::queue::{event, no_backoff};
use stratus_storage::{EventQueue, RetryPolicy};

use super::JetStreamQueue;
use crate::testing::{Scratch, bucket_name};

/// Removes a queue's stream and bucket.
fn scratch_for(scratch: Scratch, name: &str) -> Scratch {
    scratch
        .removing(format!("{name}_events"))
        .removing(format!("KV_{name}_event_status"))
}

fn open_jetstream(policy: RetryPolicy) -> Opened<Arc<dyn EventQueue>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let name = bucket_name("queue");
        let queue = JetStreamQueue::open(scratch.js(), &name, 1, policy)
            .await
            .unwrap();
        (
            Arc::new(queue) as Arc<dyn EventQueue>,
            Box::new(scratch_for(scratch, &name)) as Box<dyn Any>,
        )
    })
}

mod jetstream {
    stratus_storage::queue_conformance!(super::open_jetstream);
}

const LEASE: Duration = Duration::from_secs(30);

/// Two nodes, each with its own connection, share one queue: every event
/// is leased by exactly one of them while leases hold, and an event whose
/// lease runs out on one node is leased by the other with its next attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_queue() {
    let first = Scratch::connect().await;
    let second = Scratch::connect().await;
    let name = bucket_name("queue2");
    let nodes: Vec<Arc<dyn EventQueue>> = vec![
        Arc::new(
            JetStreamQueue::open(first.js(), &name, 1, no_backoff())
                .await
                .unwrap(),
        ),
        Arc::new(
            JetStreamQueue::open(second.js(), &name, 1, no_backoff())
                .await
                .unwrap(),
        ),
    ];
    let _scratch = scratch_for(first, &name);

    let mut enqueued = HashSet::new();
    for i in 0..200 {
        let node = &nodes[i % 2];
        enqueued.insert(
            node.enqueue(event("work", &format!("w{i}"), 3))
                .await
                .unwrap(),
        );
    }
    assert_eq!(enqueued.len(), 200);

    // Both lease in small batches, concurrently, and settle what they get;
    // one of them by the queue's own consumer, the other by every queue's.
    let handled: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let tasks: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let (node, handled) = (node.clone(), handled.clone());
            tokio::spawn(async move {
                let queue = (n == 0).then_some("work");
                let mut idle = 0;
                while idle < 5 {
                    let leased = node.lease(queue, 7, LEASE).await.unwrap();
                    if leased.is_empty() {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    idle = 0;
                    for d in leased {
                        assert_eq!(d.attempt, 1, "{} leased twice", d.id);
                        *handled.lock().unwrap().entry(d.seq).or_default() += 1;
                        node.succeed(d.seq, None).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 200, "every event handled");
    assert!(handled.values().all(|n| *n == 1), "each exactly once");
    assert_eq!(handled.keys().copied().collect::<HashSet<_>>(), enqueued);

    // A node leases and "dies"; when its lease runs out the other node
    // delivers the event again, with attempt 2, and the first can no
    // longer settle it.
    let seq = nodes[0].enqueue(event("work", "lost", 3)).await.unwrap();
    let leased = nodes[0]
        .lease(Some("work"), 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!((leased.len(), leased[0].seq), (1, seq));
    let t = std::time::Instant::now();
    let stolen = nodes[1].lease(None, 10, LEASE).await.unwrap();
    assert!(stolen.is_empty(), "{stolen:?} after {:?}", t.elapsed());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        let leased = nodes[1].lease(None, 10, LEASE).await.unwrap();
        if !leased.is_empty() {
            break leased;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired lease never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((again[0].seq, again[0].attempt), (seq, 2));
    assert!(matches!(
        nodes[0].succeed(seq, None).await,
        Err(stratus_storage::QueueError::NotFound(_))
    ));
    nodes[1]
        .succeed(seq, Some((200, b"ok".to_vec())))
        .await
        .unwrap();
    let status = nodes[0].status("lost").await.unwrap().unwrap();
    assert_eq!(
        (status.state, status.attempts),
        (stratus_storage::EventState::Succeeded, 2)
    );
    drop(second);
}

/// A consumer removed under a node (by hand, or after a long silence) is
/// made again by the next lease, which then still finds what is due.
#[tokio::test]
async fn a_removed_consumer_is_made_again() {
    let scratch = Scratch::connect().await;
    let name = bucket_name("queue");
    let queue = JetStreamQueue::open(scratch.js(), &name, 1, no_backoff())
        .await
        .unwrap();
    let scratch = scratch_for(scratch, &name);
    queue.enqueue(event("q", "a", 3)).await.unwrap();
    assert_eq!(queue.lease(Some("q"), 10, LEASE).await.unwrap().len(), 1);
    queue.enqueue(event("q", "b", 3)).await.unwrap();
    let consumer = format!("{name}_q_{}", super::record::digest(&["q"]));
    let delete = format!("$JS.API.CONSUMER.DELETE.{}.{consumer}", queue.stream());
    scratch
        .js()
        .request::<serde_json::Value>(&delete, &serde_json::json!({}))
        .await
        .unwrap();
    let leased = queue.lease(Some("q"), 10, LEASE).await.unwrap();
    assert_eq!(
        leased.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
}

/// JetStream out of reach is the backend's error, saying so, and changes
/// nothing.
#[tokio::test]
async fn an_unreachable_jetstream_is_a_backend_error() {
    let scratch = Scratch::connect().await;
    let name = bucket_name("queue");
    let queue = JetStreamQueue::open(scratch.js(), &name, 1, no_backoff())
        .await
        .unwrap();
    let scratch = scratch_for(scratch, &name);
    // Nothing listens on port 1: this client never connects.
    let offline = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("127.0.0.1:1")
        .await
        .unwrap();
    let offline = crate::JetStream::new(offline);
    let error = JetStreamQueue::open(offline.clone(), &name, 1, no_backoff())
        .await
        .unwrap_err();
    assert!(
        matches!(error, crate::JetStreamError::Unavailable { .. }),
        "{error}"
    );

    // The same queue, its messages published and pulled over the dead
    // connection.
    let cut = JetStreamQueue {
        inner: Arc::new(super::Inner {
            js: offline,
            name: queue.inner.name.clone(),
            stream: queue.inner.stream.clone(),
            status: queue.inner.status.clone(),
            policy: no_backoff(),
            held: Default::default(),
            consumers: Default::default(),
        }),
    };
    for error in [
        cut.enqueue(event("q", "a", 3)).await.unwrap_err(),
        cut.lease(None, 10, LEASE).await.unwrap_err(),
    ] {
        let stratus_storage::QueueError::Backend(e) = &error else {
            panic!("{error:?}");
        };
        assert!(e.to_string().contains("did not answer"), "{e}");
    }
    assert!(queue.status("a").await.unwrap().is_none());
    drop(scratch);
}

/// Pruning removes settled events (and frees their ids) and keeps the rest.
#[tokio::test]
async fn pruning_removes_settled_events_and_frees_their_ids() {
    let scratch = Scratch::connect().await;
    let name = bucket_name("queue");
    let q = JetStreamQueue::open(scratch.js(), &name, 1, no_backoff())
        .await
        .unwrap();
    let _scratch = scratch_for(scratch, &name);
    for id in ["done", "dead", "busy", "waiting"] {
        q.enqueue(event("p", id, 1)).await.unwrap();
    }
    let leased = q.lease(Some("p"), 3, LEASE).await.unwrap();
    let by_id = |id: &str| leased.iter().find(|d| d.id == id).unwrap().seq;
    q.succeed(by_id("done"), None).await.unwrap();
    q.fail(by_id("dead"), "no".into()).await.unwrap();
    // "busy" stays leased, "waiting" queued.
    assert_eq!(q.prune(std::time::SystemTime::UNIX_EPOCH).await.unwrap(), 0);
    assert_eq!(q.prune(std::time::SystemTime::now()).await.unwrap(), 2);
    assert!(q.status("done").await.unwrap().is_none());
    assert!(q.status("dead").await.unwrap().is_none());
    assert!(q.dead_letters("p", 10).await.unwrap().is_empty());
    assert!(q.status("busy").await.unwrap().is_some());
    assert!(q.status("waiting").await.unwrap().is_some());
    // A pruned id is a new event again.
    let again = q.enqueue(event("p", "done", 1)).await.unwrap();
    assert!(again > by_id("done"));
    assert_eq!(q.recent("p", 10).await.unwrap().len(), 3);
}
