//! Opening the SQLite database with the settings durability depends on.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::StoreError;
use crate::schema;

/// Opens (creating if needed) the database at `path` with the durable
/// settings and runs pending migrations. Foreign keys are on: the cascading
/// deletes depend on them.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = stratus_sqlite::open(path, true)?;
    stratus_sqlite::migrate(&mut conn, path, schema::MIGRATIONS)?;
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
