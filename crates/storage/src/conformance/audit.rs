//! The audit log conformance suite: what every [`AuditLog`] must do, the
//! same way. A backend's crate runs it with
//! [`audit_conformance!`](crate::audit_conformance), one test per check.
//!
//! Checks use namespaces no other run uses, so a backend that outlives the
//! test (a server) needs no cleaning.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::audit::{AuditEntry, AuditLog, AuditQuery};

/// Opens a fresh backend, with whatever must live as long as it.
pub type Open = dyn Fn() -> super::Opened<Arc<dyn AuditLog>>;

fn entry(namespace: Option<&str>, time: i64, action: &str) -> AuditEntry {
    AuditEntry {
        time,
        namespace: namespace.map(str::to_owned),
        token_id: "0123456789abcdef".into(),
        token_name: "ci".into(),
        role: "deployer".into(),
        source: "127.0.0.1:50000".into(),
        action: action.into(),
        target: "shop".into(),
        status: 201,
        outcome: "ok".into(),
        detail: format!("{action} at {time}"),
    }
}

fn query(namespace: Option<Option<&str>>, since: Option<i64>, limit: usize) -> AuditQuery {
    AuditQuery {
        namespace: namespace.map(|n| n.map(str::to_owned)),
        since,
        limit,
    }
}

pub async fn entries_read_back_whole_oldest_first(open: &Open) {
    let (log, _guard) = open().await;
    let ns = super::unique("ns");
    let now = crate::now_ms();
    let written = [
        entry(Some(&ns), now, "deploy"),
        entry(Some(&ns), now + 1, "activate"),
        entry(Some(&ns), now + 2, "secret.set"),
    ];
    for e in &written {
        log.append(e.clone()).await.unwrap();
    }
    let read = log.list(query(Some(Some(&ns)), None, 100)).await.unwrap();
    assert_eq!(read, written);
}

pub async fn a_namespace_reads_its_own_entries(open: &Open) {
    let (log, _guard) = open().await;
    let (ns, other) = (super::unique("ns"), super::unique("other"));
    let now = crate::now_ms();
    let mine = entry(Some(&ns), now, "deploy");
    let theirs = entry(Some(&other), now, "delete");
    let node = AuditEntry {
        target: super::unique("token"),
        ..entry(None, now, "token.create")
    };
    for e in [&mine, &theirs, &node] {
        log.append(e.clone()).await.unwrap();
    }
    assert_eq!(
        log.list(query(Some(Some(&ns)), None, 100)).await.unwrap(),
        std::slice::from_ref(&mine)
    );
    let nodes = log
        .list(query(Some(None), Some(now), 10_000))
        .await
        .unwrap();
    assert!(nodes.contains(&node), "{nodes:?}");
    assert!(nodes.iter().all(|e| e.namespace.is_none()), "{nodes:?}");
    let all = log.list(query(None, Some(now), 10_000)).await.unwrap();
    for e in [&mine, &theirs, &node] {
        assert!(all.contains(e), "{e:?} missing from {all:?}");
    }
}

pub async fn since_and_limit_keep_the_newest(open: &Open) {
    let (log, _guard) = open().await;
    let ns = super::unique("ns");
    let now = crate::now_ms();
    let written: Vec<_> = (0..10)
        .map(|i| entry(Some(&ns), now + i * 1000, &format!("deploy-{i}")))
        .collect();
    for e in &written {
        log.append(e.clone()).await.unwrap();
    }
    let since = log
        .list(query(Some(Some(&ns)), Some(now + 7000), 100))
        .await
        .unwrap();
    assert_eq!(since, written[7..]);
    let newest = log.list(query(Some(Some(&ns)), None, 3)).await.unwrap();
    assert_eq!(newest, written[7..]);
    let both = log
        .list(query(Some(Some(&ns)), Some(now + 2000), 2))
        .await
        .unwrap();
    assert_eq!(both, written[8..]);
}

/// One test per check of the audit log suite, for the backend `$open`
/// opens (a `fn() -> Opened<Arc<dyn AuditLog>>`).
#[macro_export]
macro_rules! audit_conformance {
    ($open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn entries_read_back_whole_oldest_first() {
            $crate::conformance::audit::entries_read_back_whole_oldest_first(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_namespace_reads_its_own_entries() {
            $crate::conformance::audit::a_namespace_reads_its_own_entries(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn since_and_limit_keep_the_newest() {
            $crate::conformance::audit::since_and_limit_keep_the_newest(&$open).await;
        }
    };
}
