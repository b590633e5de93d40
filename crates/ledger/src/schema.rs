//! The ledger's schema and migrations (`PRAGMA user_version` counts the
//! migrations applied; append, never edit a shipped one).

use std::path::Path;

use rusqlite::Connection;

use stratus_sqlite::SqliteError;

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
    // Version 2: what the ledger remembers of itself. `trimmed_through`:
    // the largest id of the raw records deleted to keep the file within
    // its budget, so usage knows from when raw records are whole.
    "
    CREATE TABLE ledger_meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    ",
    // Version 3: of an hour's requests, those whose raw record was sampled
    // out (counted, not stored one by one).
    "
    ALTER TABLE usage_hourly ADD COLUMN sampled INTEGER NOT NULL DEFAULT 0;
    ",
];

/// Opens (creating or migrating) the ledger database at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, SqliteError> {
    let mut conn = stratus_sqlite::open(path, false)?;
    stratus_sqlite::migrate(&mut conn, path, MIGRATIONS)?;
    Ok(conn)
}
