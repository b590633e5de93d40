//! The JetStream ledger against the storage crate's ledger suite, and two
//! nodes' ledgers read from either, on the NATS server at 127.0.0.1:4222
//! (`scripts/brokers.sh`). Every open uses names of its own and removes
//! its stream and bucket when the test ends.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use stratus_storage::conformance::Opened;
use stratus_storage::conformance::ledger::{line, record};
use stratus_storage::{LedgerStore, LiveLog, LogQuery, PriceSheet, Retention, UsageQuery};

use super::{JetStreamLedger, token};
use crate::testing::{Scratch, bucket_name};

const FLUSH: Duration = Duration::from_secs(10);

async fn open_named(scratch: &Scratch, name: &str, prices: PriceSheet) -> JetStreamLedger {
    JetStreamLedger::open(scratch.js(), name, 1, Retention::default(), prices)
        .await
        .unwrap()
}

fn scratch_for(scratch: Scratch, name: &str) -> Scratch {
    scratch
        .removing(format!("{name}_ledger"))
        .removing(format!("KV_{name}_usage"))
}

fn open_jetstream(prices: PriceSheet) -> Opened<Arc<dyn LedgerStore>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let name = bucket_name("ledger");
        let ledger = open_named(&scratch, &name, prices).await;
        (
            Arc::new(ledger) as Arc<dyn LedgerStore>,
            Box::new(scratch_for(scratch, &name)) as Box<dyn Any>,
        )
    })
}

mod jetstream {
    stratus_storage::ledger_conformance!(super::open_jetstream);
}

fn lines_of(app: &str, function: &str) -> LogQuery {
    LogQuery {
        app: app.into(),
        function: function.into(),
        since: None,
        invocation: None,
        limit: 100,
    }
}

/// The texts of a function's lines, as `ledger` reads them back.
async fn texts(ledger: &JetStreamLedger, app: &str, function: &str) -> Vec<String> {
    let lines = ledger.logs(lines_of(app, function)).await.unwrap();
    lines.into_iter().map(|l| l.text).collect()
}

/// Two nodes write one ledger: each reads what both recorded, and a
/// follower on one sees the other's lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reads_what_every_node_recorded() {
    let scratch = Scratch::connect().await;
    let name = bucket_name("ledger");
    let one = open_named(&scratch, &name, PriceSheet::default()).await;
    let two = open_named(&scratch, &name, PriceSheet::default()).await;
    let _scratch = scratch_for(scratch, &name);

    let mut follower = two
        .follow(&lines_of("shop", "cart"))
        .unwrap()
        .await
        .unwrap();
    let first = record("shop", "cart", SystemTime::now());
    one.record(first.clone(), vec![line(&first, "from one")]);
    let second = record("shop", "cart", SystemTime::now());
    two.record(second.clone(), vec![line(&second, "from two")]);
    assert!(one.flush(FLUSH).await && two.flush(FLUSH).await);

    for ledger in [&one, &two] {
        let since = Some(SystemTime::now() - Duration::from_secs(60));
        let exact = ledger
            .usage(UsageQuery {
                app: Some("shop".into()),
                since,
            })
            .await
            .unwrap();
        assert_eq!((exact.total.requests, exact.granularity), (2, "invocation"));
        let hourly = ledger
            .usage(UsageQuery {
                app: Some("shop".into()),
                since: None,
            })
            .await
            .unwrap();
        assert_eq!((hourly.total.requests, hourly.granularity), (2, "hour"));
        let texts = texts(ledger, "shop", "cart").await;
        assert_eq!(texts.len(), 2);
        assert!(texts.contains(&"from one".into()) && texts.contains(&"from two".into()));
        for r in [&first, &second] {
            let found = ledger.invocation(r.id.clone()).await.unwrap();
            assert_eq!(found.map(|f| f.id), Some(r.id.clone()));
        }
    }
    let mut live = Vec::new();
    while live.len() < 2 {
        match tokio::time::timeout(FLUSH, follower.recv()).await {
            Ok(Some(LiveLog::Line(line))) => live.push(line.text.clone()),
            other => panic!("{other:?}"),
        }
    }
    live.sort();
    assert_eq!(live, ["from one", "from two"]);
}

/// What another writer (or a hand) put on the stream that is not a batch,
/// or that claims another app than its subject, is skipped; the app's own
/// records read back around it.
#[tokio::test]
async fn damaged_or_misplaced_batches_are_skipped() {
    let scratch = Scratch::connect().await;
    let name = bucket_name("ledger");
    let ledger = open_named(&scratch, &name, PriceSheet::default()).await;
    let js = scratch.js();
    let _scratch = scratch_for(scratch, &name);

    let before = record("shop", "cart", SystemTime::now());
    ledger.record(before.clone(), vec![line(&before, "before")]);
    assert!(ledger.flush(FLUSH).await);
    let subject = format!("{name}.ledger.{}", token("shop"));
    js.publish(&subject, HeaderMap::new(), "not json".into())
        .await
        .unwrap();
    // A batch of another app, put on this app's subject.
    let stranger = record("other", "cart", SystemTime::now());
    let misplaced = serde_json::json!({
        "app": "other",
        "entries": super::wire::entries(&stranger, &[line(&stranger, "stranger")], true),
    });
    js.publish(&subject, HeaderMap::new(), misplaced.to_string().into())
        .await
        .unwrap();
    let after = record("shop", "cart", SystemTime::now());
    ledger.record(after.clone(), vec![line(&after, "after")]);
    assert!(ledger.flush(FLUSH).await);

    assert_eq!(texts(&ledger, "shop", "cart").await, ["before", "after"]);
    let usage = ledger
        .usage(UsageQuery {
            app: Some("shop".into()),
            since: Some(SystemTime::now() - Duration::from_secs(60)),
        })
        .await
        .unwrap();
    assert_eq!(usage.total.requests, 2);
    assert!(ledger.invocation("a.>".into()).await.unwrap().is_none());
}

/// A watch from now, or from a time, knows where it started: should its
/// first consumer be lost before it delivers anything, the next starts
/// there, not at the stream's beginning (a `logs -f` would otherwise be
/// sent the whole history).
#[tokio::test]
async fn watches_from_now_or_a_time_know_where_they_start() {
    use crate::watch::{Start, Watch};
    let scratch = Scratch::connect().await;
    let name = bucket_name("ledger");
    let ledger = open_named(&scratch, &name, PriceSheet::default()).await;
    let js = scratch.js();
    let _scratch = scratch_for(scratch, &name);
    for _ in 0..3 {
        let r = record("shop", "cart", SystemTime::now());
        ledger.record(r.clone(), vec![line(&r, "x")]);
        assert!(ledger.flush(FLUSH).await);
    }
    let (stream, prefix) = (format!("{name}_ledger"), format!("{name}.ledger."));
    let filter = format!("{prefix}>");
    let new = Watch::start(
        js.clone(),
        stream.clone(),
        filter.clone(),
        prefix.clone(),
        Start::New,
    )
    .await
    .unwrap();
    assert_eq!(new.revision(), 3);
    let later = SystemTime::now() + Duration::from_secs(60);
    let timed = Watch::start(js, stream, filter, prefix, Start::Time(later))
        .await
        .unwrap();
    assert_eq!(timed.revision(), 3);
}

/// Past its size limit the stream drops the oldest batches: usage then
/// comes from the hourly sums, whole and said to be hourly.
#[tokio::test]
async fn past_its_size_the_stream_drops_the_oldest_and_usage_stays_whole() {
    let scratch = Scratch::connect().await;
    let name = bucket_name("ledger");
    let retention = Retention {
        max_bytes: 64 << 10,
        ..Retention::default()
    };
    let ledger = JetStreamLedger::open(scratch.js(), &name, 1, retention, PriceSheet::default())
        .await
        .unwrap();
    let _scratch = scratch_for(scratch, &name);
    let text = "x".repeat(1000);
    let mut ids = Vec::new();
    for _ in 0..10 {
        for _ in 0..50 {
            let r = record("shop", "cart", SystemTime::now());
            ids.push(r.id.clone());
            ledger.record(r.clone(), vec![line(&r, &text)]);
        }
        assert!(ledger.flush(FLUSH).await);
    }
    let first = ledger.invocation(ids[0].clone()).await.unwrap();
    assert!(first.is_none(), "the oldest batch was dropped");
    let last = ledger.invocation(ids[499].clone()).await.unwrap();
    assert!(last.is_some(), "the newest is kept");
    let usage = ledger
        .usage(UsageQuery {
            app: Some("shop".into()),
            since: Some(SystemTime::now() - Duration::from_secs(60)),
        })
        .await
        .unwrap();
    assert_eq!((usage.total.requests, usage.granularity), (500, "hour"));
    let kept = texts(&ledger, "shop", "cart").await;
    assert!(
        !kept.is_empty() && kept.len() < 500,
        "{} lines kept",
        kept.len()
    );
}
