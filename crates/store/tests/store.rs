//! What is particular to the SQLite app store and the component files: the
//! data directory's layout, reopening, schema versions, file modes and
//! the errors of opening. Behaviour every backend shares is in the
//! storage crate's conformance suites (`src/conformance.rs` runs them).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use bytes::Bytes;
use serde_json::json;
use stratus_storage::{
    AppStore, AppStoreError, ArtifactError, ArtifactStore, NewFunction, sha256_hex,
};
use stratus_store::{CorruptSpec, FileArtifacts, FileError, OpenError, SqliteAppStore};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn func(name: &str, bytes: &[u8]) -> NewFunction {
    NewFunction {
        name: name.to_owned(),
        component_sha256: sha256_hex(bytes),
        spec: json!({ "route": format!("/{name}") }),
    }
}

#[tokio::test]
async fn reopen_keeps_data_and_schema_is_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteAppStore::open(dir.path()).unwrap();
        store
            .create_version("shop", "name = \"shop\"", vec![func("hello", b"c")], true)
            .await
            .unwrap();
    }
    let store = SqliteAppStore::open(dir.path()).unwrap();
    assert_eq!(store.path(), dir.path().join("stratus.db"));
    let app = store
        .app("shop")
        .await
        .unwrap()
        .expect("app survives reopen");
    assert_eq!(app.live_version, Some(1));
    assert_eq!(store.manifest("shop", 1).await.unwrap(), "name = \"shop\"");
    drop(store);

    let conn = rusqlite::Connection::open(dir.path().join("stratus.db")).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    assert_eq!(stratus_store::schema::SCHEMA_VERSION, 4);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn opening_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteAppStore::open(dir.path()).unwrap());
    let db = dir.path().join("stratus.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 9)
        .unwrap();
    let err = SqliteAppStore::open(dir.path()).expect_err("newer schema must be refused");
    assert!(matches!(
        err,
        OpenError::Sqlite(stratus_sqlite::SqliteError::SchemaTooNew {
            found: 9,
            supported: 4,
            ..
        })
    ));
    assert!(err.to_string().contains(&db.display().to_string()), "{err}");
}

#[tokio::test]
async fn a_corrupt_spec_is_a_backend_error_naming_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAppStore::open(dir.path()).unwrap();
    store
        .create_version("shop", "m", vec![func("hello", b"c")], true)
        .await
        .unwrap();
    rusqlite::Connection::open(dir.path().join("stratus.db"))
        .unwrap()
        .execute("UPDATE function SET spec = '{not json'", [])
        .unwrap();
    let err = store.version("shop", 1).await.unwrap_err();
    assert!(matches!(err, AppStoreError::Backend(_)), "{err}");
    assert!(
        err.to_string().starts_with(
            "stored spec of function \"hello\" in version 1 of app \"shop\" is not valid JSON: "
        ),
        "{err}"
    );
    assert!(store.live_functions().await.is_err());
}

#[tokio::test]
async fn components_are_files_by_hash_with_no_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileArtifacts::open(dir.path()).unwrap();
    let first = files.put(Bytes::from_static(b"same bytes")).await.unwrap();
    let second = files.put(Bytes::from_static(b"same bytes")).await.unwrap();
    assert!(first.created && !second.created);

    let found = files_under(&dir.path().join("components"));
    assert_eq!(found.len(), 1, "one file, no temp leftovers: {found:?}");
    let expected = dir
        .path()
        .join("components/sha256")
        .join(&first.sha256[..2])
        .join(&first.sha256);
    assert_eq!(found[0], expected);
    assert_eq!(files.local_path(&first.sha256).await.unwrap(), expected);

    // The file is the node owner's alone, as the temporary file it was.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&expected).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A blob removed behind the store's back is missing, not an I/O error.
    std::fs::remove_file(&expected).unwrap();
    assert!(!files.contains(&first.sha256).await.unwrap());
    assert!(matches!(
        files.read(&first.sha256).await,
        Err(ArtifactError::Missing { .. })
    ));
}

#[tokio::test]
async fn reading_a_missing_blob_names_hash_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileArtifacts::open(dir.path()).unwrap();
    let sha = sha256_hex(b"never stored");
    let err = files.read(&sha).await.unwrap_err();
    let path = dir
        .path()
        .join("components/sha256")
        .join(&sha[..2])
        .join(&sha);
    assert_eq!(
        err.to_string(),
        format!(
            "component blob {sha} is missing (expected at {})",
            path.display()
        )
    );
    // Not looked at: the file backend names where the file would be.
    assert_eq!(files.local_path(&sha).await.unwrap(), path);
}

#[tokio::test]
async fn both_backends_share_a_data_directory_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let sha = {
        let files = FileArtifacts::open(dir.path()).unwrap();
        let apps = SqliteAppStore::open(dir.path()).unwrap();
        let sha = files.put(Bytes::from_static(b"c")).await.unwrap().sha256;
        apps.create_version("shop", "m", vec![func("hello", b"c")], true)
            .await
            .unwrap();
        sha
    };
    let files = FileArtifacts::open(dir.path()).unwrap();
    let apps = SqliteAppStore::open(dir.path()).unwrap();
    let live = apps.live_functions().await.unwrap();
    assert_eq!(live[0].function.component_sha256, sha);
    assert_eq!(files.read(&sha).await.unwrap(), b"c");
}

#[test]
fn opening_a_regular_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let errors = [
        SqliteAppStore::open(&file).expect_err("a file is not a data dir"),
        FileArtifacts::open(&file).expect_err("a file is not a data dir"),
    ];
    for err in errors {
        assert!(matches!(err, OpenError::NotADirectory { .. }));
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("not a directory"), "{msg}");
    }

    // A path *below* a regular file cannot be created either.
    let below = file.join("data");
    let errors = [
        SqliteAppStore::open(&below).expect_err("cannot create under a file"),
        FileArtifacts::open(&below).expect_err("cannot create under a file"),
    ];
    for err in errors {
        assert!(
            matches!(err, OpenError::CreateDir { ref path, .. } if *path == below),
            "{err}"
        );
        assert!(
            err.to_string().contains(&below.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn error_display_texts() {
    let io = || std::io::Error::other("disk full");
    let cases: Vec<(Box<dyn std::error::Error>, &str)> = vec![
        (
            Box::new(OpenError::NotADirectory {
                path: "/srv/stratus".into(),
            }),
            "data directory /srv/stratus exists but is not a directory; point Stratus at a directory or remove the file",
        ),
        (
            Box::new(OpenError::Sqlite(
                stratus_sqlite::SqliteError::SchemaTooNew {
                    path: "/d/stratus.db".into(),
                    found: 3,
                    supported: 1,
                },
            )),
            "database /d/stratus.db has schema version 3, but this build of Stratus only understands up to version 1; run a newer Stratus",
        ),
        (
            Box::new(FileError::Write {
                path: "/d/components/sha256/ab/x".into(),
                source: io(),
            }),
            "cannot write component blob /d/components/sha256/ab/x: disk full",
        ),
        (
            Box::new(FileError::Read {
                sha256: "ab".repeat(32),
                path: "/d/x".into(),
                source: io(),
            }),
            "cannot read component blob abababababababababababababababababababababababababababababababab at /d/x: disk full",
        ),
        (
            Box::new(AppStoreError::backend(CorruptSpec {
                app: "shop".into(),
                version: 2,
                function: "hi".into(),
                source: serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
            })),
            "stored spec of function \"hi\" in version 2 of app \"shop\" is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
    }
}

/// A data directory from before tokens (schema 1) opens with its apps and
/// gains the token table.
#[tokio::test]
async fn a_schema_1_database_migrates_keeping_its_apps() {
    use stratus_storage::{Role, TokenRecord, TokenStore};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteAppStore::open(dir.path()).unwrap();
        store
            .create_version("shop", "name = \"shop\"", vec![func("hello", b"c")], true)
            .await
            .unwrap();
    }
    {
        // Back to what schema 1 wrote.
        let conn = rusqlite::Connection::open(dir.path().join("stratus.db")).unwrap();
        conn.execute_batch(
            "DROP TABLE token; DROP TABLE audit; DROP TABLE namespace_quota; ALTER TABLE app DROP COLUMN traffic; PRAGMA user_version = 1;",
        )
            .unwrap();
    }
    let store = SqliteAppStore::open(dir.path()).unwrap();
    assert_eq!(
        store.app("shop").await.unwrap().unwrap().live_version,
        Some(1)
    );
    let token = TokenRecord {
        id: "0123456789abcdef".into(),
        name: "ci".into(),
        namespace: Some("team-a".into()),
        role: Role::Deployer,
        salt: "00".repeat(16),
        hash: "11".repeat(32),
        created_at: 1,
        expires_at: None,
        last_used_at: None,
    };
    let tokens = store.tokens();
    tokens.create(token.clone()).await.unwrap();
    assert_eq!(tokens.get(&token.id).await.unwrap(), Some(token));
}

/// Entries older than the retention go at the next prune; newer ones stay.
#[tokio::test]
async fn the_audit_log_ages_out_entries_past_retention() {
    use stratus_storage::{AuditEntry, AuditLog, AuditQuery, now_ms};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAppStore::open(dir.path()).unwrap();
    let log = store.audit(std::time::Duration::from_secs(3600));
    let entry = |time: i64, action: &str| AuditEntry {
        time,
        namespace: Some("team-a".into()),
        token_id: "node".into(),
        token_name: "node".into(),
        role: "admin".into(),
        source: String::new(),
        action: action.into(),
        target: "shop".into(),
        status: 201,
        outcome: "ok".into(),
        detail: String::new(),
    };
    let now = now_ms();
    // The first append prunes: the old entry goes, the new one stays.
    log.append(entry(now - 2 * 3_600_000, "old")).await.unwrap();
    log.append(entry(now, "new")).await.unwrap();
    let kept = log
        .list(AuditQuery {
            namespace: None,
            since: None,
            limit: 100,
        })
        .await
        .unwrap();
    let actions: Vec<&str> = kept.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["new"]);
}

#[tokio::test]
async fn a_quotas_record_that_cannot_be_read_leaves_the_others_applied() {
    use stratus_storage::{NamespaceStore, Quotas};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAppStore::open(dir.path()).unwrap();
    let namespaces = store.namespaces();
    let quotas = Quotas {
        max_apps: Some(3),
        ..Default::default()
    };
    namespaces
        .set_quotas("team-a", quotas.clone())
        .await
        .unwrap();
    namespaces
        .set_quotas("team-b", Quotas::default())
        .await
        .unwrap();
    rusqlite::Connection::open(dir.path().join("stratus.db"))
        .unwrap()
        .execute(
            "UPDATE namespace_quota SET quotas = '{not json' WHERE namespace = 'team-b'",
            [],
        )
        .unwrap();
    assert_eq!(
        namespaces.all().await.unwrap(),
        vec![("team-a".to_owned(), quotas)]
    );
}
