//! The SQL schema and its migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each entry of
//! `MIGRATIONS` moves the database from version `i` to `i + 1`; to change the
//! schema, append a new entry — never edit one that has shipped, because
//! existing data directories have already run it.

/// Migration `i` upgrades from `user_version == i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // Version 2: scoped API tokens (`SqliteTokens`): never the secret, only
    // its salted hash; a NULL namespace is a node-wide token. And the audit
    // log (`SqliteAudit`), appended to and aged out, never changed.
    "
    CREATE TABLE token (
        id           TEXT    PRIMARY KEY,
        name         TEXT    NOT NULL,
        namespace    TEXT,
        role         TEXT    NOT NULL,
        salt         TEXT    NOT NULL,
        hash         TEXT    NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        last_used_at INTEGER
    );
    CREATE INDEX token_by_namespace ON token(namespace, created_at);
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        time       INTEGER NOT NULL,
        namespace  TEXT,
        token_id   TEXT    NOT NULL,
        token_name TEXT    NOT NULL,
        role       TEXT    NOT NULL,
        source     TEXT    NOT NULL,
        action     TEXT    NOT NULL,
        target     TEXT    NOT NULL,
        status     INTEGER NOT NULL,
        outcome    TEXT    NOT NULL,
        detail     TEXT    NOT NULL
    );
    CREATE INDEX audit_by_time ON audit(time);
    ",
    // Version 3: namespaces' quotas and budgets (`SqliteNamespaces`), as
    // the JSON of `stratus_storage::Quotas`.
    "
    CREATE TABLE namespace_quota (
        namespace  TEXT    PRIMARY KEY,
        quotas     TEXT    NOT NULL,
        updated_at INTEGER NOT NULL
    );
    ",
    // Version 4: each app's traffic (`stratus_storage::Traffic`, JSON): its
    // canary, if one runs, and its rollouts' history.
    "
    ALTER TABLE app ADD COLUMN traffic TEXT NOT NULL DEFAULT '{}';
    ",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;
