//! Buckets in the node's `keyvalue.sqlite`.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use stratus_storage::{BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, Pairs, Usage};

use crate::Quota;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE kv (
        id     INTEGER PRIMARY KEY,
        app    TEXT NOT NULL,
        bucket TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  BLOB NOT NULL,
        UNIQUE (app, bucket, key)
    );
    -- list-keys pages through a bucket in id order.
    CREATE INDEX kv_page ON kv (app, bucket, id);",
    // Each app's usage against its quota, counted from the data already
    // stored, then kept by triggers: they run inside the statement that
    // changes `kv`, so the usage commits or rolls back with the write
    // whatever path made it. Bytes are the key's UTF-8 bytes plus the
    // value's.
    "CREATE TABLE kv_usage (
        app   TEXT PRIMARY KEY,
        bytes INTEGER NOT NULL,
        keys  INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO kv_usage (app, bytes, keys)
        SELECT app, sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), count(*)
        FROM kv GROUP BY app;
    CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
        INSERT OR IGNORE INTO kv_usage (app, bytes, keys) VALUES (NEW.app, 0, 0);
        UPDATE kv_usage
            SET bytes = bytes + length(CAST(NEW.key AS BLOB)) + length(CAST(NEW.value AS BLOB)),
                keys = keys + 1
            WHERE app = NEW.app;
    END;
    CREATE TRIGGER kv_usage_update AFTER UPDATE OF value ON kv BEGIN
        UPDATE kv_usage
            SET bytes = bytes + length(CAST(NEW.value AS BLOB)) - length(CAST(OLD.value AS BLOB))
            WHERE app = NEW.app;
    END;
    CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
        UPDATE kv_usage
            SET bytes = bytes - length(CAST(OLD.key AS BLOB)) - length(CAST(OLD.value AS BLOB)),
                keys = keys - 1
            WHERE app = OLD.app;
    END;",
];

/// One writer connection and one reader: SQLite in WAL mode lets reads
/// proceed while a write commits.
pub struct SqliteKeyValue {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    path: std::path::PathBuf,
    quota: Quota,
}

impl std::fmt::Debug for SqliteKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeyValue").finish_non_exhaustive()
    }
}

impl SqliteKeyValue {
    pub fn open(path: &Path, quota: Quota) -> Result<SqliteKeyValue, stratus_sqlite::SqliteError> {
        let mut writer = stratus_sqlite::open(path, false)?;
        stratus_sqlite::migrate(&mut writer, path, MIGRATIONS)?;
        // A key-value write is acknowledged once it is in the WAL, which
        // survives the process being killed; only a power cut may lose the
        // last writes. FULL would fsync every `set`, a hundredfold slower
        // for what functions use as a cache and counter store.
        let relaxed = |conn: &Connection| {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|source| stratus_sqlite::SqliteError::Open {
                    path: path.to_path_buf(),
                    source,
                })
        };
        relaxed(&writer)?;
        let reader = stratus_sqlite::open(path, false)?;
        Ok(SqliteKeyValue {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            path: path.to_path_buf(),
            quota,
        })
    }

    /// Runs `write` in one transaction on the writer and commits it only
    /// if it keeps the app within its quota; otherwise rolls it back, so a
    /// refused write (a whole batch) changes nothing. The writer is one
    /// connection behind a mutex and the transaction is immediate, so no
    /// other write comes between the usage read before and the one after.
    fn write<T: Send + 'static>(
        &self,
        app: String,
        write: impl FnOnce(&Connection) -> rusqlite::Result<Result<T, KeyValueError>> + Send + 'static,
    ) -> KeyValueFuture<T> {
        let quota = self.quota;
        Self::run(&self.writer, move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = usage(&tx, &app)?;
            let done = match write(&tx)? {
                Ok(done) => done,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = quota.check(before, usage(&tx, &app)?) {
                return Ok(Err(e));
            }
            tx.commit()?;
            Ok(Ok(done))
        })
    }

    /// Runs `op` on a connection off the async workers.
    fn run<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        op: impl FnOnce(&mut Connection) -> rusqlite::Result<Result<T, KeyValueError>> + Send + 'static,
    ) -> KeyValueFuture<T> {
        let conn = conn.clone();
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
                let mut guard = lock(&conn);
                op(&mut guard)
            })
            .await;
            match joined {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(KeyValueError::Backend(format!("sqlite: {e}"))),
                Err(e) => Err(KeyValueError::Backend(format!("sqlite task failed: {e}"))),
            }
        })
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic mid-statement leaves no transaction open (rusqlite rolls
    // back on drop), so the connection is still usable.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn get(conn: &Connection, b: &BucketId, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM kv WHERE app = ?1 AND bucket = ?2 AND key = ?3")?
        .query_row(params![b.app, b.bucket, key], |row| row.get(0))
        .optional()
}

fn set(conn: &Connection, b: &BucketId, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv (app, bucket, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (app, bucket, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![b.app, b.bucket, key, value])?;
    Ok(())
}

/// What `app` stores now, as the triggers count it.
fn usage(conn: &Connection, app: &str) -> rusqlite::Result<Usage> {
    let found = conn
        .prepare_cached("SELECT bytes, keys FROM kv_usage WHERE app = ?1")?
        .query_row(params![app], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })
        .optional()?;
    // The triggers keep both non-negative; a clamp rather than a failed
    // write should that ever not hold.
    Ok(found.map_or_else(Usage::default, |(bytes, keys)| Usage {
        bytes: u64::try_from(bytes).unwrap_or(0),
        keys: u64::try_from(keys).unwrap_or(0),
    }))
}

fn delete(conn: &Connection, b: &BucketId, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM kv WHERE app = ?1 AND bucket = ?2 AND key = ?3")?
        .execute(params![b.app, b.bucket, key])?;
    Ok(())
}

/// The number at `key` plus `delta`, as [`KeyValueBackend::increment`]
/// defines it.
fn incremented(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, KeyValueError> {
    let current = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            // Rust would read `+5`; Redis would not, and both backends
            // must agree on what a number is.
            .filter(|text| !text.starts_with('+'))
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| KeyValueError::NotANumber { key: key.into() })?,
    };
    current
        .checked_add(delta)
        .ok_or_else(|| KeyValueError::Overflow { key: key.into() })
}

impl KeyValueBackend for SqliteKeyValue {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn check(&self) -> KeyValueFuture<()> {
        Self::run(&self.reader, |conn| {
            conn.query_row("SELECT count(*) FROM kv WHERE 0", [], |_| Ok(()))
                .map(Ok)
        })
    }

    fn get(&self, bucket: BucketId, key: String) -> KeyValueFuture<Option<Vec<u8>>> {
        Self::run(&self.reader, move |conn| get(conn, &bucket, &key).map(Ok))
    }

    fn set(&self, bucket: BucketId, key: String, value: Vec<u8>) -> KeyValueFuture<()> {
        self.write(bucket.app.clone(), move |conn| {
            set(conn, &bucket, &key, &value).map(Ok)
        })
    }

    fn delete(&self, bucket: BucketId, key: String) -> KeyValueFuture<()> {
        Self::run(&self.writer, move |conn| {
            delete(conn, &bucket, &key).map(Ok)
        })
    }

    fn exists(&self, bucket: BucketId, key: String) -> KeyValueFuture<bool> {
        Self::run(&self.reader, move |conn| {
            conn.prepare_cached("SELECT 1 FROM kv WHERE app = ?1 AND bucket = ?2 AND key = ?3")?
                .exists(params![bucket.app, bucket.bucket, key])
                .map(Ok)
        })
    }

    fn list_keys(
        &self,
        bucket: BucketId,
        cursor: Option<u64>,
        limit: usize,
    ) -> KeyValueFuture<(Vec<String>, Option<u64>)> {
        Self::run(&self.reader, move |conn| {
            let after = i64::try_from(cursor.unwrap_or(0)).unwrap_or(i64::MAX);
            let mut statement = conn.prepare_cached(
                "SELECT id, key FROM kv WHERE app = ?1 AND bucket = ?2 AND id > ?3
                 ORDER BY id LIMIT ?4",
            )?;
            let rows = statement
                .query_map(
                    params![bucket.app, bucket.bucket, after, limit as i64],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // A full page may have more after it; a short one is the last.
            let next = match rows.last() {
                Some((id, _)) if rows.len() == limit => Some(*id as u64),
                _ => None,
            };
            Ok(Ok((rows.into_iter().map(|(_, key)| key).collect(), next)))
        })
    }

    fn increment(&self, bucket: BucketId, key: String, delta: i64) -> KeyValueFuture<i64> {
        self.write(bucket.app.clone(), move |conn| {
            let current = get(conn, &bucket, &key)?;
            let next = match incremented(&key, current.as_deref(), delta) {
                Ok(next) => next,
                Err(e) => return Ok(Err(e)),
            };
            set(conn, &bucket, &key, next.to_string().as_bytes())?;
            Ok(Ok(next))
        })
    }

    fn compare_and_swap(
        &self,
        bucket: BucketId,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> KeyValueFuture<bool> {
        // The writer's immediate transaction holds off every other write
        // between the read and the write.
        self.write(bucket.app.clone(), move |conn| {
            if get(conn, &bucket, &key)? != expected {
                return Ok(Ok(false));
            }
            set(conn, &bucket, &key, &value)?;
            Ok(Ok(true))
        })
    }

    fn get_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<Pairs> {
        Self::run(&self.reader, move |conn| {
            let tx = conn.transaction()?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value = get(&tx, &bucket, &key)?;
                out.push(value.map(|v| (key, v)));
            }
            Ok(Ok(out))
        })
    }

    fn set_many(&self, bucket: BucketId, pairs: Vec<(String, Vec<u8>)>) -> KeyValueFuture<()> {
        self.write(bucket.app.clone(), move |conn| {
            for (key, value) in &pairs {
                set(conn, &bucket, key, value)?;
            }
            Ok(Ok(()))
        })
    }

    fn delete_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<()> {
        Self::run(&self.writer, move |conn| {
            let tx = conn.transaction()?;
            for key in &keys {
                delete(&tx, &bucket, key)?;
            }
            tx.commit().map(Ok)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A database written before quotas existed (schema version 1) has its
    /// usage counted when a node opens it, and the quota holds from there.
    #[tokio::test]
    async fn the_migration_counts_what_was_stored_before_quotas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let mut insert = conn
                .prepare("INSERT INTO kv (app, bucket, key, value) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            // "ké" is 3 bytes in UTF-8: bytes are counted, not characters.
            insert
                .execute(params!["old", "a", "ké", vec![0u8; 10]])
                .unwrap();
            insert
                .execute(params!["old", "b", "k2", vec![0u8; 5]])
                .unwrap();
            insert
                .execute(params!["neighbour", "a", "k", vec![0u8; 100]])
                .unwrap();
        }
        let quota = Quota {
            max_bytes: 30,
            max_keys: 10,
        };
        let kv = SqliteKeyValue::open(&path, quota).unwrap();
        let stored = |app: &str| usage(&lock(&kv.reader), app).unwrap();
        assert_eq!(stored("old"), Usage { bytes: 20, keys: 2 });
        assert_eq!(
            stored("neighbour"),
            Usage {
                bytes: 101,
                keys: 1
            }
        );

        let bucket = BucketId {
            app: "old".into(),
            bucket: "a".into(),
        };
        let err = kv
            .set(bucket.clone(), "x".into(), vec![0; 10])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                KeyValueError::BytesQuota {
                    limit: 30,
                    used: 20,
                    adding: 11
                }
            ),
            "{err}"
        );
        assert_eq!(stored("old"), Usage { bytes: 20, keys: 2 });
        kv.set(bucket.clone(), "x".into(), vec![0; 9])
            .await
            .unwrap();
        assert_eq!(stored("old"), Usage { bytes: 30, keys: 3 });
        kv.delete(bucket, "ké".into()).await.unwrap();
        assert_eq!(stored("old"), Usage { bytes: 17, keys: 2 });
    }
}
