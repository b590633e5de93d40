//! The node's SQLite databases — the store, the ledger and the queue — are
//! opened one way: WAL, so readers never wait for the writer;
//! `synchronous = FULL`, so a commit that was acknowledged survives a power
//! cut and `kill -9`; a busy timeout for an operator's `sqlite3` shell
//! holding the lock. Their schemas move forward the same way too:
//! `PRAGMA user_version` counts the migrations applied, each migration runs
//! in its own transaction, and a database newer than the build is refused
//! rather than misread.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

/// How long a statement waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {} has schema version {found}, but this build of Stratus only understands up to version {supported}; run a newer Stratus",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("cannot migrate database {} to schema version {to}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        to: u32,
        #[source]
        source: rusqlite::Error,
    },
}

/// Opens (creating if needed) the database at `path` with the durable
/// settings, foreign keys enforced when asked.
pub fn open(path: &Path, foreign_keys: bool) -> Result<Connection, SqliteError> {
    let open_error = |source| SqliteError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // `journal_mode` answers with the mode in effect: check, don't assume.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "database is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    if foreign_keys {
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
    }
    Ok(conn)
}

/// Applies the migrations the database has not seen: migration `i` moves
/// it from `user_version == i` to `i + 1`. Append to the list; never edit
/// an entry that has shipped, because existing data directories ran it.
pub fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), SqliteError> {
    let supported = migrations.len() as u32;
    let failed = |to: u32| {
        move |source| SqliteError::Migrate {
            path: path.to_path_buf(),
            to,
            source,
        }
    };
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed(0))?;
    if found > supported {
        return Err(SqliteError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for (from, sql) in (found..).zip(&migrations[found as usize..]) {
        let to = from + 1;
        let tx = conn.transaction().map_err(failed(to))?;
        tx.execute_batch(sql).map_err(failed(to))?;
        tx.pragma_update(None, "user_version", to)
            .map_err(failed(to))?;
        tx.commit().map_err(failed(to))?;
        tracing::info!(path = %path.display(), version = to, "migrated database schema");
    }
    Ok(())
}

/// A time as stored in an `INTEGER` column: Unix microseconds. A clock
/// before 1970 is a broken host; it is stored as 0 rather than failing.
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time stored by [`unix_micros`].
pub fn from_unix_micros(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let migrations = ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"];
        let mut conn = open(&path, true).unwrap();
        migrate(&mut conn, &path, &migrations[..1]).unwrap();
        migrate(&mut conn, &path, &migrations).unwrap();
        migrate(&mut conn, &path, &migrations).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
        let error = migrate(&mut conn, &path, &migrations[..1]).unwrap_err();
        assert!(
            matches!(
                error,
                SqliteError::SchemaTooNew {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_failing_migration_leaves_the_older_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let mut conn = open(&path, false).unwrap();
        let error = migrate(&mut conn, &path, &["CREATE TABLE a (x)", "NOT SQL"]).unwrap_err();
        assert!(error.to_string().contains("to schema version 2"), "{error}");
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }
}
