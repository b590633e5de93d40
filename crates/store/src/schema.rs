//! The SQL schema and its migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each entry of
//! `MIGRATIONS` moves the database from version `i` to `i + 1`; to change the
//! schema, append a new entry — never edit one that has shipped, because
//! existing data directories have already run it.

use rusqlite::Connection;

use crate::error::{DbContext, StoreError};

/// Migration `i` upgrades from `user_version == i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1: apps, their immutable versions, and the functions of each version.
    "
    CREATE TABLE app (
        id           INTEGER PRIMARY KEY,
        name         TEXT    NOT NULL UNIQUE,
        live_version INTEGER,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    CREATE TABLE version (
        app_id     INTEGER NOT NULL REFERENCES app(id) ON DELETE CASCADE,
        number     INTEGER NOT NULL CHECK (number >= 1),
        created_at INTEGER NOT NULL,
        manifest   TEXT    NOT NULL,
        PRIMARY KEY (app_id, number)
    );
    CREATE TABLE function (
        app_id           INTEGER NOT NULL,
        version          INTEGER NOT NULL,
        name             TEXT    NOT NULL,
        component_sha256 TEXT    NOT NULL,
        spec             TEXT    NOT NULL,
        PRIMARY KEY (app_id, version, name),
        FOREIGN KEY (app_id, version) REFERENCES version(app_id, number) ON DELETE CASCADE
    );
    -- Garbage collection of blobs asks \"is this hash still used anywhere?\".
    CREATE INDEX function_by_component ON function(component_sha256);
    ",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`], one migration per transaction
/// so a crash mid-upgrade leaves a consistent (older) schema behind.
pub(crate) fn migrate(conn: &mut Connection, db_path: &std::path::Path) -> Result<(), StoreError> {
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .during(|| "reading the schema version")?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: db_path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, sql) in (found..).zip(&MIGRATIONS[found as usize..]) {
        let to = from + 1;
        let action = || format!("migrating the schema to version {to}");
        let tx = conn.transaction().during(action)?;
        tx.execute_batch(sql).during(action)?;
        tx.pragma_update(None, "user_version", to).during(action)?;
        tx.commit().during(action)?;
        tracing::info!(version = to, "migrated database schema");
    }
    Ok(())
}
