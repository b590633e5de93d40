//! Opening the SQLite database with the settings durability depends on.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::StoreError;
use crate::schema;

/// How long a statement waits for another process holding the write lock
/// (e.g. an operator's `sqlite3` shell) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the database at `path`, configures it and runs
/// pending migrations.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::OpenDatabase {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // WAL lets readers proceed during a write; `journal_mode` answers with
    // the mode actually in effect, so check it rather than assume.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "database is not in WAL mode");
    }
    // FULL syncs the WAL on every commit: nothing acknowledged is lost on a
    // power cut or `kill -9`, at the price of an fsync per deploy.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    // Off by default in SQLite; the cascading deletes depend on it.
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_err)?;
    schema::migrate(&mut conn, path)?;
    Ok(conn)
}

/// Current time in unix milliseconds, the unit of every timestamp column.
pub(crate) fn now_ms() -> i64 {
    // A clock before 1970 is a broken host; recording 0 beats failing a deploy.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
