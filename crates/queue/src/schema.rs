//! The queue's schema (`PRAGMA user_version` counts migrations applied;
//! append, never edit a shipped one).

use std::path::Path;

use rusqlite::Connection;

use crate::error::QueueError;

const MIGRATIONS: &[&str] = &[
    "
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
    ",
    "
    -- The last tick each cron trigger fired, so a tick missed while the
    -- node was down is fired once when it starts.
    CREATE TABLE cron_tick (
        trigger TEXT    PRIMARY KEY,
        tick_us INTEGER NOT NULL
    );
    ",
];

/// Opens (creating or migrating) the queue database at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, QueueError> {
    let mut conn = stratus_sqlite::open(path, false)?;
    stratus_sqlite::migrate(&mut conn, path, MIGRATIONS)?;
    Ok(conn)
}
