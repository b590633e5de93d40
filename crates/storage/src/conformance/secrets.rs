//! The secret backend conformance suite: what every [`SecretBackend`] must
//! do, the same way. A backend's crate runs it with
//! [`secrets_conformance!`](crate::secrets_conformance), one test per
//! check.
//!
//! Checks use apps no other run uses, so a backend that outlives the test
//! (a server) needs no cleaning.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::secrets::{SealedSecret, SecretBackend};

/// Opens a fresh backend, with whatever must live as long as it (say its
/// directory).
pub type Open = dyn Fn() -> super::Opened<Arc<dyn SecretBackend>>;

/// A sealed value whose bytes say which it is, set at `micros`.
fn sealed(what: &str, micros: u64) -> SealedSecret {
    SealedSecret {
        nonce: format!("nonce of {what}").into_bytes(),
        // Every byte value: ciphertext is binary.
        ciphertext: what.bytes().chain(0..=255u8).collect(),
        updated: SystemTime::UNIX_EPOCH + Duration::from_micros(micros),
    }
}

pub async fn a_put_reads_back_and_a_second_replaces_it(open: &Open) {
    let (store, _guard) = open().await;
    let app = super::unique("app");
    assert_eq!(store.get(&app, "TOKEN").unwrap(), None);
    store
        .put(&app, "TOKEN", &sealed("first", 1_700_000_000_000_001))
        .unwrap();
    assert_eq!(
        store.get(&app, "TOKEN").unwrap(),
        Some(sealed("first", 1_700_000_000_000_001))
    );
    store
        .put(&app, "TOKEN", &sealed("second", 1_700_000_000_000_002))
        .unwrap();
    assert_eq!(
        store.get(&app, "TOKEN").unwrap(),
        Some(sealed("second", 1_700_000_000_000_002))
    );
    let listed = store.list(&app).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].updated,
        SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_002)
    );
}

pub async fn list_is_sorted_by_name_and_holds_only_that_app(open: &Open) {
    let (store, _guard) = open().await;
    let (app, other) = (super::unique("app"), super::unique("other"));
    for (i, name) in ["b_key", "A_KEY", "a_key", "Z"].iter().enumerate() {
        store.put(&app, name, &sealed(name, i as u64)).unwrap();
    }
    store.put(&other, "ELSEWHERE", &sealed("x", 9)).unwrap();
    let names: Vec<_> = store
        .list(&app)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["A_KEY", "Z", "a_key", "b_key"]);
    assert!(store.list(&super::unique("nobody")).unwrap().is_empty());
}

pub async fn apps_with_the_same_name_are_apart(open: &Open) {
    let (store, _guard) = open().await;
    let (a, b) = (super::unique("a"), super::unique("b"));
    store.put(&a, "KEY", &sealed("of a", 1)).unwrap();
    store.put(&b, "KEY", &sealed("of b", 2)).unwrap();
    assert_eq!(store.get(&a, "KEY").unwrap(), Some(sealed("of a", 1)));
    assert!(store.delete(&b, "KEY").unwrap());
    assert_eq!(store.get(&b, "KEY").unwrap(), None);
    assert_eq!(store.get(&a, "KEY").unwrap(), Some(sealed("of a", 1)));
}

pub async fn delete_says_whether_there_was_one(open: &Open) {
    let (store, _guard) = open().await;
    let app = super::unique("app");
    store.put(&app, "KEY", &sealed("v", 1)).unwrap();
    store.put(&app, "KEPT", &sealed("k", 1)).unwrap();
    assert!(store.delete(&app, "KEY").unwrap());
    assert!(!store.delete(&app, "KEY").unwrap());
    assert!(!store.delete(&app, "NEVER").unwrap());
    assert_eq!(store.get(&app, "KEY").unwrap(), None);
    let names: Vec<_> = store
        .list(&app)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["KEPT"]);
    // Set again after deletion, it is there again.
    store.put(&app, "KEY", &sealed("again", 2)).unwrap();
    assert_eq!(store.get(&app, "KEY").unwrap(), Some(sealed("again", 2)));
}

pub async fn concurrent_writers_each_land_whole(open: &Open) {
    let (store, _guard) = open().await;
    let app = super::unique("app");
    std::thread::scope(|scope| {
        for writer in 0..4u64 {
            let (store, app) = (&store, &app);
            scope.spawn(move || {
                for i in 0..25u64 {
                    store
                        .put(app, &format!("K{writer}_{i}"), &sealed("own", i))
                        .unwrap();
                    // All writers also replace one shared name.
                    let what = format!("writer {writer}");
                    store.put(app, "SHARED", &sealed(&what, writer)).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list(&app).unwrap().len(), 101);
    // The shared one is one writer's value whole, never a mix.
    let shared = store.get(&app, "SHARED").unwrap().unwrap();
    let whole = (0..4u64).any(|w| shared == sealed(&format!("writer {w}"), w));
    assert!(whole, "{shared:?} is no writer's value");
}

/// Expands to one `#[tokio::test]` per check of the secret backend suite,
/// on a multi-threaded runtime (a backend across a network may block a
/// worker in its synchronous calls), opening each backend with `$open` (a
/// [`conformance::secrets::Open`](crate::conformance::secrets::Open)).
#[macro_export]
macro_rules! secrets_conformance {
    ($open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_put_reads_back_and_a_second_replaces_it() {
            $crate::conformance::secrets::a_put_reads_back_and_a_second_replaces_it(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn list_is_sorted_by_name_and_holds_only_that_app() {
            $crate::conformance::secrets::list_is_sorted_by_name_and_holds_only_that_app(&$open)
                .await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn apps_with_the_same_name_are_apart() {
            $crate::conformance::secrets::apps_with_the_same_name_are_apart(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn delete_says_whether_there_was_one() {
            $crate::conformance::secrets::delete_says_whether_there_was_one(&$open).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_writers_each_land_whole() {
            $crate::conformance::secrets::concurrent_writers_each_land_whole(&$open).await;
        }
    };
}
