//! The JetStream audit log against the storage crate's suite, on the NATS
//! server at 127.0.0.1:4222 (`scripts/brokers.sh`).
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use stratus_storage::conformance::Opened;
use stratus_storage::{AuditEntry, AuditLog, AuditQuery};

use crate::JetStreamAudit;
use crate::testing::{Scratch, bucket_name};

fn open_jetstream() -> Opened<Arc<dyn AuditLog>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let name = bucket_name("audit");
        let log = JetStreamAudit::open(scratch.js(), &name, 1, Duration::from_secs(3600))
            .await
            .unwrap();
        let scratch = scratch.removing(format!("{name}_audit"));
        (
            Arc::new(log) as Arc<dyn AuditLog>,
            Box::new(scratch) as Box<dyn Any>,
        )
    })
}

mod conformance {
    stratus_storage::audit_conformance!(super::open_jetstream);
}

/// A listing reads the newest hour first and further back only while it
/// holds fewer than its limit: entries of days ago (by their own clock)
/// are still found, and the limit still keeps the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_entries_are_listed_past_the_newest_hour() {
    let (log, _guard) = open_jetstream().await;
    let now = stratus_storage::now_ms();
    let day = 24 * 3600 * 1000;
    let entry = |time: i64, action: &str| AuditEntry {
        time,
        namespace: Some("old".into()),
        token_id: "0123456789abcdef".into(),
        token_name: "ci".into(),
        role: "deployer".into(),
        source: "127.0.0.1:50000".into(),
        action: action.into(),
        target: "shop".into(),
        status: 201,
        outcome: "ok".into(),
        detail: String::new(),
    };
    let written = [
        entry(now - 10 * day, "deploy"),
        entry(now - 2 * day, "activate"),
        entry(now, "rollback"),
    ];
    for e in &written {
        log.append(e.clone()).await.unwrap();
    }
    let query = |since: Option<i64>, limit: usize| AuditQuery {
        namespace: Some(Some("old".into())),
        since,
        limit,
    };
    assert_eq!(
        log.list(query(None, 100)).await.unwrap(),
        written,
        "however old"
    );
    assert_eq!(log.list(query(None, 2)).await.unwrap(), written[1..]);
    let recent = log.list(query(Some(now - 3 * day), 100)).await.unwrap();
    assert_eq!(recent, written[1..]);
}
