//! Behaviour of the store against a real temporary data directory.

use std::path::Path;

use serde_json::json;
use stratus_store::{NewFunction, Store, StoreError, sha256_hex};

fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

/// Stores `bytes` and returns a function using them.
fn func(store: &Store, name: &str, bytes: &[u8]) -> NewFunction {
    let blob = store.put_blob(bytes).expect("put blob");
    NewFunction {
        name: name.to_owned(),
        component_sha256: blob.sha256,
        spec: json!({ "route": format!("/{name}") }),
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn reopen_keeps_data_and_schema_is_version_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("first open");
        let f = func(&store, "hello", b"component");
        store
            .create_version("shop", "name = \"shop\"", &[f], true)
            .expect("create");
    }
    let store = Store::open(dir.path()).expect("second open");
    assert_eq!(store.data_dir(), dir.path());
    let app = store
        .app("shop")
        .expect("query")
        .expect("app survives reopen");
    assert_eq!(app.live_version, Some(1));
    assert_eq!(
        store.manifest("shop", 1).expect("manifest"),
        "name = \"shop\""
    );
    drop(store);

    let conn = rusqlite::Connection::open(dir.path().join("stratus.db")).expect("raw open");
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 1);
    assert_eq!(stratus_store::schema::SCHEMA_VERSION, 1);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

#[test]
fn opening_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("open"));
    let db = dir.path().join("stratus.db");
    rusqlite::Connection::open(&db)
        .expect("raw open")
        .pragma_update(None, "user_version", 9)
        .expect("bump version");
    let err = Store::open(dir.path()).expect_err("newer schema must be refused");
    assert!(matches!(
        err,
        StoreError::Sqlite(stratus_sqlite::SqliteError::SchemaTooNew {
            found: 9,
            supported: 1,
            ..
        })
    ));
    assert!(err.to_string().contains(&db.display().to_string()), "{err}");
}

#[test]
fn put_blob_dedupes_identical_bytes() {
    let (dir, store) = fresh();
    let first = store.put_blob(b"same bytes").expect("first put");
    let second = store.put_blob(b"same bytes").expect("second put");
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.sha256, sha256_hex(b"same bytes"));

    let files = files_under(&dir.path().join("components"));
    assert_eq!(files.len(), 1, "one file, no temp leftovers: {files:?}");
    let expected = dir
        .path()
        .join("components/sha256")
        .join(&first.sha256[..2])
        .join(&first.sha256);
    assert_eq!(files[0], expected);
    assert_eq!(store.blob_path(&first.sha256), expected);
    assert!(store.has_blob(&first.sha256));
    assert_eq!(store.read_blob(&first.sha256).expect("read"), b"same bytes");
}

#[test]
fn sha256_hex_is_lowercase_hex_of_the_digest() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn reading_a_missing_blob_names_hash_and_path() {
    let (_dir, store) = fresh();
    let sha = sha256_hex(b"never stored");
    assert!(!store.has_blob(&sha));
    let err = store.read_blob(&sha).expect_err("missing");
    assert!(matches!(err, StoreError::BlobMissing { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&sha), "{msg}");
    assert!(
        msg.contains(&store.blob_path(&sha).display().to_string()),
        "{msg}"
    );
}

#[test]
fn malformed_hashes_are_rejected_not_turned_into_paths() {
    let (_dir, store) = fresh();
    assert!(!store.has_blob("../../etc/passwd"));
    assert!(!store.has_blob("x"));
    let err = store.read_blob("../../etc/passwd").expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "\"../../etc/passwd\" is not a SHA-256 hash (expected 64 lowercase hex characters)"
    );
}

#[test]
fn version_numbers_count_up_and_activate_moves_live() {
    let (_dir, store) = fresh();
    let f = func(&store, "hello", b"c1");
    for expected in 1..=3 {
        let v = store
            .create_version("shop", "m", std::slice::from_ref(&f), true)
            .expect("create");
        assert_eq!(v.number, expected);
        assert!(v.live);
        assert_eq!(v.app, "shop");
        assert_eq!(v.functions.len(), 1);
    }
    let app = store.app("shop").expect("query").expect("exists");
    assert_eq!(app.live_version, Some(3));
    assert_eq!(app.versions, 3);
    assert!(app.updated_at >= app.created_at);

    // Numbers are per app.
    let other = store
        .create_version("blog", "m", &[f], true)
        .expect("create");
    assert_eq!(other.number, 1);
}

#[test]
fn activate_false_leaves_live_unchanged() {
    let (_dir, store) = fresh();
    let f = func(&store, "hello", b"c1");
    let staged = store
        .create_version("new", "m", std::slice::from_ref(&f), false)
        .expect("create");
    assert!(!staged.live);
    assert_eq!(
        store
            .app("new")
            .expect("query")
            .expect("exists")
            .live_version,
        None
    );

    store
        .create_version("shop", "m", std::slice::from_ref(&f), true)
        .expect("v1");
    let v2 = store.create_version("shop", "m", &[f], false).expect("v2");
    assert_eq!(v2.number, 2);
    assert!(!v2.live);
    let app = store.app("shop").expect("query").expect("exists");
    assert_eq!(app.live_version, Some(1));
    assert_eq!(app.versions, 2);
}

#[test]
fn missing_blob_fails_the_deploy_and_leaves_no_rows() {
    let (_dir, store) = fresh();
    let present = func(&store, "ok", b"uploaded");
    let missing_sha = sha256_hex(b"never uploaded");
    let missing = NewFunction {
        name: "broken".into(),
        component_sha256: missing_sha.clone(),
        spec: json!({}),
    };
    let err = store
        .create_version("shop", "m", &[present, missing], true)
        .expect_err("must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "function \"broken\" of app \"shop\" uses component {missing_sha}, which has not been uploaded"
        )
    );
    assert!(store.list_apps().expect("list").is_empty());
    assert!(store.app("shop").expect("query").is_none());
    assert!(matches!(
        store.list_versions("shop"),
        Err(StoreError::AppNotFound(name)) if name == "shop"
    ));
}

#[test]
fn duplicate_function_names_are_rejected() {
    let (_dir, store) = fresh();
    let f = func(&store, "hello", b"c1");
    let err = store
        .create_version("shop", "m", &[f.clone(), f], true)
        .expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "function \"hello\" appears more than once in the new version of app \"shop\""
    );
    assert!(store.list_apps().expect("list").is_empty());
}

#[test]
fn set_live_rolls_back_and_rejects_unknown_versions() {
    let (_dir, store) = fresh();
    let f = func(&store, "hello", b"c1");
    store
        .create_version("shop", "m", std::slice::from_ref(&f), true)
        .expect("v1");
    store.create_version("shop", "m", &[f], true).expect("v2");

    store.set_live("shop", 1).expect("rollback");
    assert_eq!(
        store.app("shop").expect("q").expect("e").live_version,
        Some(1)
    );

    let err = store.set_live("shop", 7).expect_err("unknown version");
    assert_eq!(err.to_string(), "app \"shop\" has no version 7");
    assert_eq!(
        store.app("shop").expect("q").expect("e").live_version,
        Some(1)
    );

    let err = store.set_live("nope", 1).expect_err("unknown app");
    assert_eq!(err.to_string(), "app \"nope\" not found");
}

#[test]
fn list_versions_is_newest_first_with_live_flag() {
    let (_dir, store) = fresh();
    let a = func(&store, "a", b"ca");
    let b = func(&store, "b", b"cb");
    store
        .create_version("shop", "m1", std::slice::from_ref(&a), true)
        .expect("v1");
    // Given out of order; records come back sorted by name.
    store
        .create_version("shop", "m2", &[b.clone(), a.clone()], true)
        .expect("v2");
    store.create_version("shop", "m3", &[b], false).expect("v3");

    let versions = store.list_versions("shop").expect("list");
    let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [3, 2, 1]);
    let live: Vec<bool> = versions.iter().map(|v| v.live).collect();
    assert_eq!(live, [false, true, false]);
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
}

#[test]
fn version_and_manifest_lookups() {
    let (_dir, store) = fresh();
    let f = func(&store, "hello", b"c1");
    let created = store
        .create_version("shop", "name = \"shop\"\n", &[f], true)
        .expect("v1");
    let read = store.version("shop", 1).expect("version");
    assert_eq!(read.number, created.number);
    assert_eq!(read.created_at, created.created_at);
    assert_eq!(read.functions, created.functions);
    assert!(read.live);
    assert_eq!(
        store.manifest("shop", 1).expect("manifest"),
        "name = \"shop\"\n"
    );

    let err = store.version("shop", 2).expect_err("no v2");
    assert!(matches!(err, StoreError::VersionNotFound { ref app, number: 2 } if app == "shop"));
    let err = store.manifest("ghost", 1).expect_err("no app");
    assert!(matches!(err, StoreError::AppNotFound(ref n) if n == "ghost"));
}

#[test]
fn list_apps_is_ordered_by_name() {
    let (_dir, store) = fresh();
    let f = func(&store, "hello", b"c1");
    for name in ["zeta", "alpha", "mid"] {
        store
            .create_version(name, "m", std::slice::from_ref(&f), true)
            .expect("create");
    }
    let names: Vec<String> = store
        .list_apps()
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["alpha", "mid", "zeta"]);
}

#[test]
fn delete_app_removes_rows_and_unshared_blobs_only() {
    let (_dir, store) = fresh();
    let shared = func(&store, "shared", b"shared component");
    let own = func(&store, "own", b"only in shop");
    store
        .create_version("shop", "m", &[shared.clone(), own.clone()], true)
        .expect("shop");
    store
        .create_version("shop", "m", std::slice::from_ref(&own), false)
        .expect("shop v2");
    store
        .create_version("blog", "m", std::slice::from_ref(&shared), true)
        .expect("blog");

    store.delete_app("shop").expect("delete");

    assert!(store.app("shop").expect("query").is_none());
    assert!(matches!(
        store.version("shop", 1),
        Err(StoreError::AppNotFound(_))
    ));
    assert!(!store.has_blob(&own.component_sha256));
    assert!(!store.blob_path(&own.component_sha256).exists());
    assert!(store.has_blob(&shared.component_sha256));
    assert_eq!(store.list_apps().expect("list").len(), 1);
    assert_eq!(
        store
            .version("blog", 1)
            .expect("blog intact")
            .functions
            .len(),
        1
    );

    let err = store.delete_app("shop").expect_err("already gone");
    assert_eq!(err.to_string(), "app \"shop\" not found");

    // A recreated app starts numbering afresh.
    let again = func(&store, "own", b"only in shop");
    let v = store
        .create_version("shop", "m", &[again], true)
        .expect("recreate");
    assert_eq!(v.number, 1);
}

#[test]
fn live_functions_cover_every_apps_live_version() {
    let (_dir, store) = fresh();
    let a1 = func(&store, "a", b"v1");
    let a2 = func(&store, "a", b"v2");
    let b = func(&store, "b", b"other");
    store
        .create_version("shop", "m", &[a1], true)
        .expect("shop v1");
    store
        .create_version("shop", "m", &[a2.clone(), b.clone()], true)
        .expect("shop v2");
    store
        .create_version("shop", "m", std::slice::from_ref(&b), false)
        .expect("shop v3 staged");
    store
        .create_version("blog", "m", std::slice::from_ref(&b), true)
        .expect("blog v1");
    store
        .create_version("draft", "m", std::slice::from_ref(&b), false)
        .expect("draft never live");

    let live = store.live_functions().expect("live");
    let summary: Vec<(&str, u32, &str)> = live
        .iter()
        .map(|l| (l.app.as_str(), l.version, l.function.name.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("blog", 1, "b"), ("shop", 2, "a"), ("shop", 2, "b")]
    );
    assert_eq!(live[1].function.component_sha256, a2.component_sha256);
}

#[test]
fn opening_a_regular_file_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write file");
    let err = Store::open(&file).expect_err("a file is not a data dir");
    assert!(matches!(err, StoreError::NotADirectory { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("not a directory"), "{msg}");

    // A path *below* a regular file cannot be created either.
    let below = file.join("data");
    let err = Store::open(&below).expect_err("cannot create under a file");
    assert!(matches!(err, StoreError::CreateDir { .. }));
    assert!(
        err.to_string().contains(&below.display().to_string()),
        "{err}"
    );
}

#[test]
fn error_display_texts() {
    let cases: Vec<(StoreError, &str)> = vec![
        (
            StoreError::AppNotFound("shop".into()),
            "app \"shop\" not found",
        ),
        (
            StoreError::VersionNotFound {
                app: "shop".into(),
                number: 4,
            },
            "app \"shop\" has no version 4",
        ),
        (
            StoreError::NotADirectory {
                path: "/srv/stratus".into(),
            },
            "data directory /srv/stratus exists but is not a directory; point Stratus at a directory or remove the file",
        ),
        (
            StoreError::BlobMissing {
                sha256: "ab".repeat(32),
                path: "/d/components/sha256/ab/x".into(),
            },
            "component blob abababababababababababababababababababababababababababababababab is missing (expected at /d/components/sha256/ab/x)",
        ),
        (
            StoreError::VersionNumbersExhausted {
                app: "shop".into(),
                last: u32::MAX,
            },
            "app \"shop\" has used every version number up to 4294967295; delete and recreate the app",
        ),
        (
            StoreError::Sqlite(stratus_sqlite::SqliteError::SchemaTooNew {
                path: "/d/stratus.db".into(),
                found: 3,
                supported: 1,
            }),
            "database /d/stratus.db has schema version 3, but this build of Stratus only understands up to version 1; run a newer Stratus",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
    }
}
