//! The queue's schema (`PRAGMA user_version` counts migrations applied;
//! append, never edit a shipped one).

use std::path::Path;

use rusqlite::Connection;

use crate::error::{DbContext, QueueError};

const MIGRATIONS: &[&str] = &["
    CREATE TABLE event (
        seq            INTEGER PRIMARY KEY,
        queue          TEXT    NOT NULL,
        id             TEXT    NOT NULL,
        source         TEXT    NOT NULL,
        kind           TEXT    NOT NULL,
        subject        TEXT,
        path           TEXT    NOT NULL,
        content_type   TEXT,
        data           BLOB    NOT NULL,
        state          TEXT    NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        max_attempts   INTEGER NOT NULL,
        created_us     INTEGER NOT NULL,
        updated_us     INTEGER NOT NULL,
        next_us        INTEGER NOT NULL,
        lease_until_us INTEGER,
        last_error     TEXT,
        result_status  INTEGER,
        result_body    BLOB,
        UNIQUE (queue, id)
    );
    -- Due events of a queue, oldest first; expired leases likewise.
    CREATE INDEX event_due ON event(queue, state, next_us);
    CREATE INDEX event_due_any ON event(state, next_us);
    CREATE INDEX event_by_id ON event(id);
    "];

const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn open(path: &Path) -> Result<Connection, QueueError> {
    let open_error = |source| QueueError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    // FULL: an event acknowledged to its sender must survive power loss.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    Ok(conn)
}

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), QueueError> {
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .during("reading the schema version")?;
    if found > SCHEMA_VERSION {
        return Err(QueueError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, sql) in (found..).zip(&MIGRATIONS[found as usize..]) {
        let tx = conn.transaction().during("migrating the schema")?;
        tx.execute_batch(sql).during("migrating the schema")?;
        tx.pragma_update(None, "user_version", from + 1)
            .during("migrating the schema")?;
        tx.commit().during("migrating the schema")?;
    }
    Ok(())
}
