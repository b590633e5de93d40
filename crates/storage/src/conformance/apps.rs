//! The app store conformance suite: what every [`AppStore`] must do, the
//! same way. A backend's crate runs it with
//! [`apps_conformance!`](crate::apps_conformance), one test per check.
//!
//! Checks name their apps with a prefix no other run uses and only look at
//! apps with it, so a backend that outlives the test (a server) needs no
//! cleaning. Hashes need not be stored anywhere: the app store records
//! them without looking.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use crate::apps::{AppStore, AppStoreError, NewFunction};
use crate::artifacts::sha256_hex;

/// Opens a fresh backend, with whatever must live as long as it (say the
/// directory of a SQLite file).
pub type Open = dyn Fn() -> super::Opened<Arc<dyn AppStore>>;

/// A prefix no other test run uses.
fn prefix(check: &str) -> String {
    super::unique(check)
}

/// A function named `name` whose component is `component`'s hash.
fn func(name: &str, component: &str) -> NewFunction {
    NewFunction {
        name: name.to_owned(),
        component_sha256: sha256_hex(component.as_bytes()),
        spec: json!({ "route": format!("/{name}") }),
    }
}

/// The names of the apps under `prefix`, in the order listed.
async fn apps_under(store: &dyn AppStore, prefix: &str) -> Vec<String> {
    let apps = store.list_apps().await.unwrap();
    apps.into_iter()
        .map(|a| a.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

async fn live_version(store: &dyn AppStore, app: &str) -> Option<u32> {
    store.app(app).await.unwrap().unwrap().live_version
}

pub async fn version_numbers_count_up_from_1_and_are_never_reused(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("numbers");
    let f = func("hello", "c1");
    for expected in 1..=3 {
        let v = store
            .create_version(&shop, "m", vec![f.clone()], true)
            .await
            .unwrap();
        assert_eq!(v.number, expected);
        assert!(v.live);
        assert_eq!(v.app, shop);
        assert_eq!(v.functions.len(), 1);
    }
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!(app.name, shop);
    assert_eq!(app.live_version, Some(3));
    assert_eq!(app.versions, 3);
    assert!(app.updated_at >= app.created_at);

    // A rollback does not free the numbers above it.
    store.set_live(&shop, 1).await.unwrap();
    let v = store
        .create_version(&shop, "m", vec![f.clone()], false)
        .await
        .unwrap();
    assert_eq!(v.number, 4);

    // Numbers are per app.
    let other = store
        .create_version(&format!("{shop}-blog"), "m", vec![f], true)
        .await
        .unwrap();
    assert_eq!(other.number, 1);
}

pub async fn activate_false_leaves_live_unchanged(open: &Open) {
    let (store, _guard) = open().await;
    let p = prefix("staged");
    let f = func("hello", "c1");
    let new = format!("{p}-new");
    let staged = store
        .create_version(&new, "m", vec![f.clone()], false)
        .await
        .unwrap();
    assert!(!staged.live);
    let app = store.app(&new).await.unwrap().unwrap();
    assert_eq!(app.live_version, None);
    assert_eq!(app.versions, 1);

    let shop = format!("{p}-shop");
    store
        .create_version(&shop, "m", vec![f.clone()], true)
        .await
        .unwrap();
    let v2 = store
        .create_version(&shop, "m", vec![f], false)
        .await
        .unwrap();
    assert_eq!(v2.number, 2);
    assert!(!v2.live);
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!(app.live_version, Some(1));
    assert_eq!(app.versions, 2);
}

pub async fn a_repeated_function_is_refused_with_nothing_written(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("duplicate");
    let f = func("hello", "c1");
    let err = store
        .create_version(
            &shop,
            "m",
            vec![f.clone(), func("other", "c2"), f.clone()],
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppStoreError::DuplicateFunction { ref function, .. } if function == "hello"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("function \"hello\" appears more than once in the new version of app \"{shop}\"")
    );
    assert!(store.app(&shop).await.unwrap().is_none());
    assert!(apps_under(&*store, &shop).await.is_empty());

    // Nor is anything written to an app that exists.
    store
        .create_version(&shop, "m", vec![f.clone()], true)
        .await
        .unwrap();
    store
        .create_version(&shop, "m", vec![f.clone(), f], true)
        .await
        .unwrap_err();
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!((app.versions, app.live_version), (1, Some(1)));
}

pub async fn set_live_rolls_back_and_refuses_unknown_versions(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("rollback");
    let f = func("hello", "c1");
    store
        .create_version(&shop, "m", vec![f.clone()], true)
        .await
        .unwrap();
    store
        .create_version(&shop, "m", vec![f], true)
        .await
        .unwrap();

    store.set_live(&shop, 1).await.unwrap();
    assert_eq!(live_version(&*store, &shop).await, Some(1));
    let versions = store.list_versions(&shop).await.unwrap();
    let flags: Vec<(u32, bool)> = versions.iter().map(|v| (v.number, v.live)).collect();
    assert_eq!(flags, [(2, false), (1, true)]);

    let err = store.set_live(&shop, 7).await.unwrap_err();
    assert!(
        matches!(err, AppStoreError::VersionNotFound { number: 7, .. }),
        "{err}"
    );
    assert_eq!(err.to_string(), format!("app \"{shop}\" has no version 7"));
    assert_eq!(live_version(&*store, &shop).await, Some(1));

    let ghost = format!("{shop}-ghost");
    let err = store.set_live(&ghost, 1).await.unwrap_err();
    assert!(
        matches!(err, AppStoreError::AppNotFound(ref n) if *n == ghost),
        "{err}"
    );
    assert_eq!(err.to_string(), format!("app \"{ghost}\" not found"));
}

pub async fn versions_are_listed_newest_first_with_functions_by_name(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("versions");
    let a = func("a", "ca");
    let b = func("b", "cb");
    store
        .create_version(&shop, "m1", vec![a.clone()], true)
        .await
        .unwrap();
    // Given out of order; records come back sorted by name.
    let v2 = store
        .create_version(&shop, "m2", vec![b.clone(), a.clone()], true)
        .await
        .unwrap();
    let names: Vec<&str> = v2.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    store
        .create_version(&shop, "m3", vec![b], false)
        .await
        .unwrap();

    let versions = store.list_versions(&shop).await.unwrap();
    let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [3, 2, 1]);
    let live: Vec<bool> = versions.iter().map(|v| v.live).collect();
    assert_eq!(live, [false, true, false]);
    assert!(versions.iter().all(|v| v.app == shop));
    let names = |i: usize| -> Vec<&str> {
        versions[i]
            .functions
            .iter()
            .map(|f| f.name.as_str())
            .collect()
    };
    assert_eq!(names(0), ["b"]);
    assert_eq!(names(1), ["a", "b"]);
    assert_eq!(names(2), ["a"]);
    assert_eq!(
        versions[2].functions[0].component_sha256,
        a.component_sha256
    );
    assert_eq!(versions[2].functions[0].spec, json!({ "route": "/a" }));
    assert_eq!(versions[1].functions, v2.functions);
}

pub async fn manifest_and_spec_are_returned_as_stored(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("as-stored");
    let manifest = "[app]\nname = \"shop\"  \n\n# ünïcode, \"quotes\", \\ and a tab\t\n";
    let spec = json!({
        "route": "/x",
        "memory": 134217728u64,
        "ratio": 0.5,
        "nothing": null,
        "flags": [true, false],
        "env": { "A": "1", "nested": { "deep": ["x", 1, null] } },
        "empty": {},
    });
    let f = NewFunction {
        name: "hello".into(),
        component_sha256: sha256_hex(b"c1"),
        spec: spec.clone(),
    };
    let created = store
        .create_version(&shop, manifest, vec![f], true)
        .await
        .unwrap();
    assert_eq!(created.functions[0].spec, spec);
    assert_eq!(store.manifest(&shop, 1).await.unwrap(), manifest);
    assert_eq!(
        store.version(&shop, 1).await.unwrap().functions[0].spec,
        spec
    );
    let live = store.live_functions().await.unwrap();
    let mine = live.iter().find(|l| l.app == shop).unwrap();
    assert_eq!(mine.function.spec, spec);

    // An empty manifest is text like any other.
    store
        .create_version(&shop, "", vec![func("hello", "c1")], false)
        .await
        .unwrap();
    assert_eq!(store.manifest(&shop, 2).await.unwrap(), "");
}

pub async fn version_lookups_and_not_found_errors(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("lookups");
    let created = store
        .create_version(&shop, "name = \"shop\"\n", vec![func("hello", "c1")], true)
        .await
        .unwrap();
    let read = store.version(&shop, 1).await.unwrap();
    assert_eq!(read, created);
    // Names no app can have (a backend may turn names into keys or
    // subjects) are unknown apps, not errors.
    for hostile in ["a.>", "*", "../x", "a b", ""] {
        assert!(store.app(hostile).await.unwrap().is_none(), "{hostile:?}");
        assert!(
            store.version(hostile, 1).await.unwrap_err().is_not_found(),
            "{hostile:?}"
        );
    }
    assert!(read.live);

    let err = store.version(&shop, 2).await.unwrap_err();
    assert!(
        matches!(err, AppStoreError::VersionNotFound { ref app, number: 2 } if *app == shop),
        "{err}"
    );
    assert!(err.is_not_found());
    let err = store.manifest(&shop, 2).await.unwrap_err();
    assert!(
        matches!(err, AppStoreError::VersionNotFound { number: 2, .. }),
        "{err}"
    );

    let ghost = format!("{shop}-ghost");
    assert!(store.app(&ghost).await.unwrap().is_none());
    let is_ghost =
        |err: AppStoreError| matches!(err, AppStoreError::AppNotFound(ref n) if *n == ghost);
    assert!(is_ghost(store.version(&ghost, 1).await.unwrap_err()));
    assert!(is_ghost(store.manifest(&ghost, 1).await.unwrap_err()));
    assert!(is_ghost(store.list_versions(&ghost).await.unwrap_err()));
    assert!(is_ghost(store.set_live(&ghost, 1).await.unwrap_err()));
    assert!(is_ghost(store.delete_app(&ghost).await.unwrap_err()));
}

pub async fn apps_are_listed_by_name(open: &Open) {
    let (store, _guard) = open().await;
    let p = prefix("list");
    let f = func("hello", "c1");
    for name in ["zeta", "alpha", "mid"] {
        store
            .create_version(&format!("{p}-{name}"), "m", vec![f.clone()], true)
            .await
            .unwrap();
    }
    let expected: Vec<String> = ["alpha", "mid", "zeta"]
        .iter()
        .map(|n| format!("{p}-{n}"))
        .collect();
    assert_eq!(apps_under(&*store, &p).await, expected);
    let listed = store.list_apps().await.unwrap();
    let alpha = listed.iter().find(|a| a.name == expected[0]).unwrap();
    assert_eq!(Some(alpha), store.app(&expected[0]).await.unwrap().as_ref());
}

pub async fn live_functions_are_those_of_live_versions_only(open: &Open) {
    let (store, _guard) = open().await;
    let p = prefix("live");
    let (shop, blog, draft) = (
        format!("{p}-shop"),
        format!("{p}-blog"),
        format!("{p}-draft"),
    );
    let a1 = func("a", "v1");
    let a2 = func("a", "v2");
    let b = func("b", "other");
    store
        .create_version(&shop, "m", vec![a1], true)
        .await
        .unwrap();
    store
        .create_version(&shop, "m", vec![b.clone(), a2.clone()], true)
        .await
        .unwrap();
    store
        .create_version(&shop, "m", vec![b.clone()], false)
        .await
        .unwrap();
    store
        .create_version(&blog, "m", vec![b.clone()], true)
        .await
        .unwrap();
    store
        .create_version(&draft, "m", vec![b], false)
        .await
        .unwrap();

    let live: Vec<_> = store
        .live_functions()
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.app.starts_with(&p))
        .collect();
    let summary: Vec<(&str, u32, &str)> = live
        .iter()
        .map(|l| (l.app.as_str(), l.version, l.function.name.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (blog.as_str(), 1, "b"),
            (shop.as_str(), 2, "a"),
            (shop.as_str(), 2, "b")
        ]
    );
    assert_eq!(live[1].function.component_sha256, a2.component_sha256);

    // A rollback changes what is live.
    store.set_live(&shop, 3).await.unwrap();
    let shop_live: Vec<(u32, String)> = store
        .live_functions()
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.app == shop)
        .map(|l| (l.version, l.function.name))
        .collect();
    assert_eq!(shop_live, [(3, "b".to_string())]);
}

pub async fn delete_removes_every_version_and_returns_the_unshared_components(open: &Open) {
    let (store, _guard) = open().await;
    let p = prefix("delete");
    let (shop, blog) = (format!("{p}-shop"), format!("{p}-blog"));
    let shared = func("shared", &format!("{p} shared"));
    let own = func("own", &format!("{p} only in shop"));
    // Two functions of one version on one component, and the component in
    // two versions: reported once.
    let own_twice = NewFunction {
        name: "own-again".into(),
        ..own.clone()
    };
    store
        .create_version(&shop, "m", vec![shared.clone(), own.clone()], true)
        .await
        .unwrap();
    store
        .create_version(&shop, "m", vec![own.clone(), own_twice], false)
        .await
        .unwrap();
    store
        .create_version(&blog, "m", vec![shared.clone()], true)
        .await
        .unwrap();

    let unused = store.delete_app(&shop).await.unwrap();
    assert_eq!(unused, std::slice::from_ref(&own.component_sha256));

    assert!(store.app(&shop).await.unwrap().is_none());
    assert!(matches!(
        store.version(&shop, 1).await,
        Err(AppStoreError::AppNotFound(_))
    ));
    assert!(matches!(
        store.version(&shop, 2).await,
        Err(AppStoreError::AppNotFound(_))
    ));
    assert!(
        store
            .live_functions()
            .await
            .unwrap()
            .iter()
            .all(|l| l.app != shop)
    );
    assert_eq!(apps_under(&*store, &p).await, std::slice::from_ref(&blog));
    let blog_v1 = store.version(&blog, 1).await.unwrap();
    assert_eq!(blog_v1.functions.len(), 1);
    assert!(blog_v1.live);

    let err = store.delete_app(&shop).await.unwrap_err();
    assert_eq!(err.to_string(), format!("app \"{shop}\" not found"));

    // A recreated app starts numbering afresh.
    let v = store
        .create_version(&shop, "m", vec![own.clone()], true)
        .await
        .unwrap();
    assert_eq!(v.number, 1);

    // The last user of a component gets it back.
    let mut unused = store.delete_app(&blog).await.unwrap();
    unused.sort();
    assert_eq!(unused, [shared.component_sha256]);
    let unused = store.delete_app(&shop).await.unwrap();
    assert_eq!(unused, [own.component_sha256]);
    assert!(apps_under(&*store, &p).await.is_empty());
}

pub async fn racing_writers_never_share_a_number_and_losers_write_nothing(open: &Open) {
    let (store, _guard) = open().await;
    let shop = prefix("race");
    // A new app (both writers create it) and then an existing one.
    for round in 0..2 {
        let writers: Vec<_> = (0..6)
            .map(|writer| {
                let (store, shop) = (store.clone(), shop.clone());
                tokio::spawn(async move {
                    let manifest = format!("round {round} writer {writer}");
                    let f = func("hello", &manifest);
                    let result = store.create_version(&shop, &manifest, vec![f], true).await;
                    (manifest, result)
                })
            })
            .collect();
        let mut won = Vec::new();
        for writer in writers {
            let (manifest, result) = writer.await.unwrap();
            match result {
                Ok(version) => won.push((version.number, manifest)),
                // A backend shared by nodes may refuse a racing write.
                Err(AppStoreError::Conflict(app)) => assert_eq!(app, shop),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(!won.is_empty(), "every writer lost");
        won.sort();
        let stored = store.list_versions(&shop).await.unwrap();
        assert_eq!(
            store.app(&shop).await.unwrap().unwrap().versions as usize,
            stored.len()
        );
        // Each acknowledged version is there with its writer's manifest,
        // and nothing else is: numbers are not shared or skipped.
        let first = if round == 0 {
            1
        } else {
            stored.len() - won.len() + 1
        };
        for (i, (number, manifest)) in won.iter().enumerate() {
            assert_eq!(*number as usize, first + i, "{won:?}");
            assert_eq!(&store.manifest(&shop, *number).await.unwrap(), manifest);
        }
    }
}

/// A canary with its policy and history is kept as written; a version the
/// app lacks is refused with nothing written; moving the live pointer any
/// way ends the canary and keeps the history; a promotion moves it and
/// ends the canary in one write.
pub async fn traffic_is_kept_and_a_new_live_version_ends_the_canary(open: &Open) {
    use crate::traffic::{Canary, RolloutAction, RolloutEvent, RolloutPolicy, Sticky, Traffic};
    let (store, _guard) = open().await;
    let shop = prefix("traffic");
    for activate in [true, false, false] {
        store
            .create_version(&shop, "m", vec![func("hello", "c1")], activate)
            .await
            .unwrap();
    }
    assert_eq!(
        store.app(&shop).await.unwrap().unwrap().traffic,
        Traffic::default()
    );
    let canary = |version| Canary {
        version,
        percent: 10,
        steps: vec![50, 100],
        interval_ms: 60_000,
        since: 1_700_000_000_000,
        sticky: Some(Sticky::Header("x-user".into())),
        policy: RolloutPolicy::default(),
    };
    let mut traffic = Traffic {
        canary: Some(canary(2)),
        ..Traffic::default()
    };
    traffic.record(RolloutEvent {
        at: 1_700_000_000_000,
        action: RolloutAction::Started,
        stable: 1,
        canary: 2,
        percent: 10,
        by: "ci".into(),
        reason: "deployed with --canary 10".into(),
    });
    store
        .set_traffic(&shop, None, traffic.clone())
        .await
        .unwrap();
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!((app.live_version, &app.traffic), (Some(1), &traffic));

    // Unknown versions, as the canary or as the live one: nothing written.
    let mut wrong = traffic.clone();
    wrong.canary = Some(canary(9));
    let err = store.set_traffic(&shop, None, wrong).await.unwrap_err();
    assert!(
        matches!(err, AppStoreError::VersionNotFound { number: 9, .. }),
        "{err:?}"
    );
    let err = store
        .set_traffic(&shop, Some(7), Traffic::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppStoreError::VersionNotFound { number: 7, .. }),
        "{err:?}"
    );
    let err = store
        .set_traffic(&prefix("traffic-none"), None, Traffic::default())
        .await
        .unwrap_err();
    assert!(matches!(err, AppStoreError::AppNotFound(_)), "{err:?}");
    assert_eq!(store.app(&shop).await.unwrap().unwrap().traffic, traffic);

    // A rollback by hand ends it; the history stays.
    store.set_live(&shop, 1).await.unwrap();
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!(app.traffic.canary, None);
    assert_eq!(app.traffic.history, traffic.history);

    // So does a deploy that activates, but not one that does not.
    store
        .set_traffic(&shop, None, traffic.clone())
        .await
        .unwrap();
    store
        .create_version(&shop, "m", vec![func("hello", "c1")], false)
        .await
        .unwrap();
    assert_eq!(store.app(&shop).await.unwrap().unwrap().traffic, traffic);
    store
        .create_version(&shop, "m", vec![func("hello", "c1")], true)
        .await
        .unwrap();
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!((app.live_version, app.traffic.canary), (Some(5), None));

    // A promotion: the live pointer and the traffic in one write.
    let mut promoted = traffic.clone();
    promoted.canary = None;
    store
        .set_traffic(&shop, Some(3), promoted.clone())
        .await
        .unwrap();
    let app = store.app(&shop).await.unwrap().unwrap();
    assert_eq!((app.live_version, &app.traffic), (Some(3), &promoted));
    let live: Vec<u32> = store
        .live_functions()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.app == shop)
        .map(|f| f.version)
        .collect();
    assert_eq!(live, [3]);
}

/// Expands to one `#[tokio::test]` per check of the app store suite,
/// opening each backend with `$open` (a
/// [`conformance::apps::Open`](crate::conformance::apps::Open)).
#[macro_export]
macro_rules! apps_conformance {
    ($open:expr) => {
        #[tokio::test]
        async fn racing_writers_never_share_a_number_and_losers_write_nothing() {
            $crate::conformance::apps::racing_writers_never_share_a_number_and_losers_write_nothing(&$open).await;
        }
        #[tokio::test]
        async fn version_numbers_count_up_from_1_and_are_never_reused() {
            $crate::conformance::apps::version_numbers_count_up_from_1_and_are_never_reused(&$open).await;
        }
        #[tokio::test]
        async fn activate_false_leaves_live_unchanged() {
            $crate::conformance::apps::activate_false_leaves_live_unchanged(&$open).await;
        }
        #[tokio::test]
        async fn a_repeated_function_is_refused_with_nothing_written() {
            $crate::conformance::apps::a_repeated_function_is_refused_with_nothing_written(&$open).await;
        }
        #[tokio::test]
        async fn set_live_rolls_back_and_refuses_unknown_versions() {
            $crate::conformance::apps::set_live_rolls_back_and_refuses_unknown_versions(&$open).await;
        }
        #[tokio::test]
        async fn versions_are_listed_newest_first_with_functions_by_name() {
            $crate::conformance::apps::versions_are_listed_newest_first_with_functions_by_name(&$open).await;
        }
        #[tokio::test]
        async fn manifest_and_spec_are_returned_as_stored() {
            $crate::conformance::apps::manifest_and_spec_are_returned_as_stored(&$open).await;
        }
        #[tokio::test]
        async fn version_lookups_and_not_found_errors() {
            $crate::conformance::apps::version_lookups_and_not_found_errors(&$open).await;
        }
        #[tokio::test]
        async fn apps_are_listed_by_name() {
            $crate::conformance::apps::apps_are_listed_by_name(&$open).await;
        }
        #[tokio::test]
        async fn live_functions_are_those_of_live_versions_only() {
            $crate::conformance::apps::live_functions_are_those_of_live_versions_only(&$open).await;
        }
        #[tokio::test]
        async fn traffic_is_kept_and_a_new_live_version_ends_the_canary() {
            $crate::conformance::apps::traffic_is_kept_and_a_new_live_version_ends_the_canary(&$open).await;
        }
        #[tokio::test]
        async fn delete_removes_every_version_and_returns_the_unshared_components() {
            $crate::conformance::apps::delete_removes_every_version_and_returns_the_unshared_components(&$open).await;
        }
    };
}
