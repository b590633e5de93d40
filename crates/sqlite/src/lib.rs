//! The node's SQLite databases — the store, the ledger, the queue, key-value
//! buckets and secrets — are opened one way: WAL, so readers never wait for the writer;
//! `synchronous = FULL`, so a commit that was acknowledged survives a power
//! cut and `kill -9`; a busy timeout for an operator's `sqlite3` shell
//! holding the lock. Their schemas move forward the same way too:
//! `PRAGMA user_version` counts the migrations applied, each migration runs
//! in its own transaction, and a database newer than the build is refused
//! rather than misread. Every database file is the node owner's alone
//! (mode 0600): they hold apps' key-value data, encrypted secrets, logs and
//! the invocation history. A failed statement is one error type for all of
//! them, [`SqliteError::Statement`], naming the database and what the node
//! was doing ([`During`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

mod writer;
pub use writer::{Batcher, WriterConfig, spawn_writer};

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
    #[error("cannot make database file {} private (mode 0600): {source}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
    /// A statement that failed, with what the node was doing, so the
    /// message is more than a bare SQLite code.
    #[error("{database} database error while {action}: {source}")]
    Statement {
        database: &'static str,
        action: std::borrow::Cow<'static, str>,
        #[source]
        source: rusqlite::Error,
    },
}

/// Names what a failed statement was for: `.during("queue", "leasing
/// events")`, or with a message made only on failure.
pub trait During<T> {
    fn during(self, database: &'static str, action: &'static str) -> Result<T, SqliteError>;
    fn during_with<S: Into<std::borrow::Cow<'static, str>>>(
        self,
        database: &'static str,
        action: impl FnOnce() -> S,
    ) -> Result<T, SqliteError>;
}

impl<T> During<T> for rusqlite::Result<T> {
    fn during(self, database: &'static str, action: &'static str) -> Result<T, SqliteError> {
        self.map_err(|source| SqliteError::Statement {
            database,
            action: action.into(),
            source,
        })
    }

    fn during_with<S: Into<std::borrow::Cow<'static, str>>>(
        self,
        database: &'static str,
        action: impl FnOnce() -> S,
    ) -> Result<T, SqliteError> {
        self.map_err(|source| SqliteError::Statement {
            database,
            action: action().into(),
            source,
        })
    }
}

/// Opens (creating if needed) the database at `path` with the durable
/// settings, foreign keys enforced when asked.
pub fn open(path: &Path, foreign_keys: bool) -> Result<Connection, SqliteError> {
    let open_error = |source| SqliteError::Open {
        path: path.to_path_buf(),
        source,
    };
    make_private(path)?;
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
    // Memory and disk a busy node's databases may hold, set rather than
    // left to the library's build: a page cache of 2 MiB per connection
    // (SQLite's own default, made sure of; the connections are few and
    // fixed), and a write-ahead log cut back to 64 MiB after each
    // checkpoint, so one burst does not leave a large file for good.
    conn.pragma_update(None, "cache_size", -2048)
        .map_err(open_error)?;
    conn.pragma_update(None, "journal_size_limit", 64 << 20)
        .map_err(open_error)?;
    if foreign_keys {
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
    }
    Ok(conn)
}

/// Creates the database file with mode 0600 before SQLite opens it, or
/// narrows an existing one (and its `-wal`/`-shm` files) to 0600. SQLite
/// gives the `-wal` and `-shm` files it creates later the database file's
/// mode, so they are private too. Only the owner's permission bits are
/// kept: a file the node cannot read or write fails in SQLite's open with
/// its own message.
#[cfg(unix)]
fn make_private(path: &Path) -> Result<(), SqliteError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SqliteError::Permissions { path, source }
    };
    // An empty file is a valid empty database; `create_new` leaves a file
    // that appeared meanwhile (another process) to the narrowing below.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(path)(e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        let mode = match std::fs::metadata(file) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed(file)(e)),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(failed(file))?;
            tracing::info!(path = %file.display(), "made database file private (mode 0600)");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path) -> Result<(), SqliteError> {
    Ok(())
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

    #[cfg(unix)]
    #[test]
    fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;

        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.sqlite");
        let conn = open(&new, false).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .unwrap();
        assert_eq!(mode(&new), 0o600);
        let wal = dir.path().join("new.sqlite-wal");
        let shm = dir.path().join("new.sqlite-shm");
        assert_eq!(
            mode(&wal),
            0o600,
            "SQLite gives the WAL the database's mode"
        );
        assert_eq!(mode(&shm), 0o600);
        drop(conn);

        // Files from before (or copied in) that everyone could read.
        let old = dir.path().join("old.sqlite");
        let siblings =
            ["old.sqlite", "old.sqlite-wal", "old.sqlite-shm"].map(|f| dir.path().join(f));
        for file in &siblings {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        make_private(&old).unwrap();
        for file in &siblings {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        drop(open(&old, false).unwrap());
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
