//! The token store conformance suite: what every [`TokenStore`] must do,
//! the same way. A backend's crate runs it with
//! [`tokens_conformance!`](crate::tokens_conformance), one test per check.
//!
//! Checks use namespaces and ids no other run uses, so a backend that
//! outlives the test (a server) needs no cleaning.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::tokens::{Role, TokenRecord, TokenStore, TokenStoreError};

/// Opens a fresh backend, with whatever must live as long as it.
pub type Open = dyn Fn() -> super::Opened<Arc<dyn TokenStore>>;

fn record(namespace: Option<&str>, name: &str, role: Role, created_at: i64) -> TokenRecord {
    TokenRecord {
        id: super::unique("t").replace('-', ""),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
        role,
        salt: "00ff".repeat(8),
        hash: "ab".repeat(32),
        created_at,
        expires_at: Some(created_at + 86_400_000),
        last_used_at: None,
    }
}

pub async fn a_token_reads_back_whole(open: &Open) {
    let (store, _guard) = open().await;
    let ns = super::unique("ns");
    let token = record(Some(&ns), "ci", Role::Deployer, 1_700_000_000_000);
    assert_eq!(store.get(&token.id).await.unwrap(), None);
    store.create(token.clone()).await.unwrap();
    assert_eq!(store.get(&token.id).await.unwrap(), Some(token.clone()));
    let node_wide = TokenRecord {
        namespace: None,
        expires_at: None,
        ..record(None, "ops", Role::Admin, 1_700_000_000_001)
    };
    store.create(node_wide.clone()).await.unwrap();
    assert_eq!(store.get(&node_wide.id).await.unwrap(), Some(node_wide));
}

pub async fn an_id_is_taken_once(open: &Open) {
    let (store, _guard) = open().await;
    let ns = super::unique("ns");
    let first = record(Some(&ns), "first", Role::Viewer, 1);
    store.create(first.clone()).await.unwrap();
    let again = TokenRecord {
        name: "second".into(),
        role: Role::Admin,
        ..first.clone()
    };
    assert!(matches!(
        store.create(again).await,
        Err(TokenStoreError::Conflict(_))
    ));
    assert_eq!(store.get(&first.id).await.unwrap(), Some(first));
}

pub async fn a_list_holds_its_namespaces_tokens_oldest_first(open: &Open) {
    let (store, _guard) = open().await;
    let (ns, other) = (super::unique("ns"), super::unique("other"));
    let b = record(Some(&ns), "b", Role::Viewer, 2_000);
    let a = record(Some(&ns), "a", Role::Admin, 1_000);
    let elsewhere = record(Some(&other), "a", Role::Admin, 1_500);
    let node_wide = record(None, &super::unique("wide"), Role::Viewer, 1_200);
    for token in [&b, &a, &elsewhere, &node_wide] {
        store.create(token.clone()).await.unwrap();
    }
    assert_eq!(store.list(Some(&ns)).await.unwrap(), [a, b]);
    assert_eq!(store.list(Some(&other)).await.unwrap(), [elsewhere]);
    let wide = store.list(None).await.unwrap();
    assert!(wide.contains(&node_wide), "{wide:?}");
    assert!(wide.iter().all(|t| t.namespace.is_none()), "{wide:?}");
}

pub async fn a_revoked_token_is_gone(open: &Open) {
    let (store, _guard) = open().await;
    let ns = super::unique("ns");
    let (keep, gone) = (
        record(Some(&ns), "keep", Role::Viewer, 1),
        record(Some(&ns), "gone", Role::Viewer, 2),
    );
    store.create(keep.clone()).await.unwrap();
    store.create(gone.clone()).await.unwrap();
    assert!(store.revoke(&gone.id).await.unwrap());
    assert!(!store.revoke(&gone.id).await.unwrap());
    assert_eq!(store.get(&gone.id).await.unwrap(), None);
    assert_eq!(store.list(Some(&ns)).await.unwrap(), [keep]);
}

pub async fn a_touch_notes_the_last_use(open: &Open) {
    let (store, _guard) = open().await;
    let ns = super::unique("ns");
    let token = record(Some(&ns), "used", Role::Invoker, 1);
    store.create(token.clone()).await.unwrap();
    store.touch(&token.id, 5_000).await.unwrap();
    store.touch(&token.id, 9_000).await.unwrap();
    // A touch that arrives late (an earlier use) never moves it back.
    store.touch(&token.id, 7_000).await.unwrap();
    let read = store.get(&token.id).await.unwrap().unwrap();
    assert_eq!(read.last_used_at, Some(9_000));
    assert_eq!(
        TokenRecord {
            last_used_at: None,
            ..read
        },
        token
    );
    // A revoked token is not brought back by a late touch.
    store.revoke(&token.id).await.unwrap();
    store.touch(&token.id, 10_000).await.unwrap();
    assert_eq!(store.get(&token.id).await.unwrap(), None);
}

/// One test per check of the token store suite, for the backend `$open`
/// opens (a `fn() -> Opened<Arc<dyn TokenStore>>`).
#[macro_export]
macro_rules! tokens_conformance {
    ($open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_token_reads_back_whole() {
            $crate::conformance::tokens::a_token_reads_back_whole(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_id_is_taken_once() {
            $crate::conformance::tokens::an_id_is_taken_once(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_list_holds_its_namespaces_tokens_oldest_first() {
            $crate::conformance::tokens::a_list_holds_its_namespaces_tokens_oldest_first(&$open)
                .await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_revoked_token_is_gone() {
            $crate::conformance::tokens::a_revoked_token_is_gone(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_touch_notes_the_last_use() {
            $crate::conformance::tokens::a_touch_notes_the_last_use(&$open).await;
        }
    };
}
