//! The ledger's schema and migrations (`PRAGMA user_version` counts the
//! migrations applied; append, never edit a shipped one).

use std::path::Path;

use rusqlite::Connection;

use crate::error::{DbContext, LedgerError};

const MIGRATIONS: &[&str] = &[
    // Version 1: raw invocation records, hourly roll-ups, log lines.
    "
    -- Raw records are the ledger's bulk, so they are packed: one row per
    -- committed batch (see batch.rs), functions by number. Invocation ids
    -- are UUIDv7, which start with their millisecond timestamp, so the
    -- smallest and largest id of a batch also bound its time range.
    CREATE TABLE function_key (
        id       INTEGER PRIMARY KEY,
        app      TEXT    NOT NULL,
        function TEXT    NOT NULL,
        UNIQUE (app, function)
    );
    CREATE TABLE invocation_batch (
        seq     INTEGER PRIMARY KEY,
        min_id  BLOB    NOT NULL,
        max_id  BLOB    NOT NULL,
        count   INTEGER NOT NULL,
        records BLOB    NOT NULL
    );
    CREATE INDEX batch_by_min_id ON invocation_batch(min_id);
    CREATE INDEX batch_by_max_id ON invocation_batch(max_id);
    -- Usage is read from here: one row per function and hour, kept far
    -- longer than raw records. mib_ms is the billed memory (MiB, rounded
    -- up) times the billed duration (ms, rounded up), summed.
    CREATE TABLE usage_hourly (
        hour        INTEGER NOT NULL,
        app         TEXT    NOT NULL,
        function    TEXT    NOT NULL,
        requests    INTEGER NOT NULL,
        errors      INTEGER NOT NULL,
        cold_starts INTEGER NOT NULL,
        mib_ms      INTEGER NOT NULL,
        cpu_us      INTEGER NOT NULL,
        wall_us     INTEGER NOT NULL,
        bytes_in    INTEGER NOT NULL,
        bytes_out   INTEGER NOT NULL,
        PRIMARY KEY (hour, app, function)
    ) WITHOUT ROWID;
    CREATE TABLE log_line (
        seq           INTEGER PRIMARY KEY,
        at_us         INTEGER NOT NULL,
        invocation_id TEXT    NOT NULL,
        app           TEXT    NOT NULL,
        function      TEXT    NOT NULL,
        stream        TEXT    NOT NULL,
        text          TEXT    NOT NULL
    );
    CREATE INDEX log_by_function ON log_line(app, function, at_us);
    CREATE INDEX log_by_invocation ON log_line(invocation_id);
    CREATE INDEX log_by_time ON log_line(at_us);
    ",
];

const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn open(path: &Path) -> Result<Connection, LedgerError> {
    let open_error = |source| LedgerError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    // WAL so readers (usage, logs) never block the writer; FULL so a batch
    // acknowledged as written survives power loss, not only a crash. Group
    // commit keeps the fsync count low.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    Ok(conn)
}

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), LedgerError> {
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .during("reading the schema version")?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
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
