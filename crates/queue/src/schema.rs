//! The queue's schema (`PRAGMA user_version` counts migrations applied;
//! append, never edit a shipped one).

use std::path::Path;

use rusqlite::Connection;
use stratus_sqlite::SqliteError;

pub(crate) const MIGRATIONS: &[&str] = &[
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
    // Another app may publish into a function's queue only when the
    // function's trigger grants it (`from = [...]`), and its ce-ids must not
    // shadow the app's own: uniqueness becomes (queue, origin, id), where
    // `origin` is the publishing app for such events and '' for the queue's
    // own app (everything stored before, which keeps its de-duplication).
    // SQLite cannot change a table's UNIQUE constraint in place, so the
    // table is rebuilt, keeping every row and its sequence number.
    "
    CREATE TABLE event_v3 (
        seq            INTEGER PRIMARY KEY,
        queue          TEXT    NOT NULL,
        origin         TEXT    NOT NULL DEFAULT '',
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
        UNIQUE (queue, origin, id)
    );
    INSERT INTO event_v3 (seq, queue, origin, id, source, kind, subject, path, content_type,
                          data, state, attempts, max_attempts, created_us, updated_us, next_us,
                          lease_until_us, last_error, result_status, result_body)
        SELECT seq, queue, '', id, source, kind, subject, path, content_type,
               data, state, attempts, max_attempts, created_us, updated_us, next_us,
               lease_until_us, last_error, result_status, result_body
        FROM event;
    DROP TABLE event;
    ALTER TABLE event_v3 RENAME TO event;
    CREATE INDEX event_due ON event(queue, state, next_us);
    CREATE INDEX event_due_any ON event(state, next_us);
    CREATE INDEX event_by_id ON event(id);
    ",
    // The publisher's W3C trace context (CloudEvents' distributed-tracing
    // extension), so the invocation that handles an event continues the
    // publisher's trace. Events stored before have none: NULL.
    "
    ALTER TABLE event ADD COLUMN traceparent TEXT;
    ALTER TABLE event ADD COLUMN tracestate TEXT;
    ",
];

/// Opens (creating or migrating) the queue database at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, SqliteError> {
    let mut conn = stratus_sqlite::open(path, false)?;
    stratus_sqlite::migrate(&mut conn, path, MIGRATIONS)?;
    Ok(conn)
}
