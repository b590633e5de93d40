//! The records the store hands out, and the row helpers shared by reads and writes.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{DB, StoreError};
use stratus_sqlite::During;

/// A function to record in a new version; its component must already be
/// stored with [`Store::put_blob`](crate::Store::put_blob).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFunction {
    pub name: String,
    pub component_sha256: String,
    /// Opaque to the store: written and returned as-is.
    pub spec: serde_json::Value,
}

/// A function of a stored version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionRecord {
    pub name: String,
    pub component_sha256: String,
    pub spec: serde_json::Value,
}

/// Summary of an app. Timestamps are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppRecord {
    pub name: String,
    pub live_version: Option<u32>,
    /// How many versions the app has.
    pub versions: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of an app with its functions (ordered by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    pub app: String,
    pub number: u32,
    pub created_at: i64,
    /// Whether this is the app's live version.
    pub live: bool,
    pub functions: Vec<FunctionRecord>,
}

/// A function of some app's live version, as loaded at node start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveFunction {
    pub app: String,
    pub version: u32,
    pub function: FunctionRecord,
}

pub(crate) const APP_SELECT: &str = "SELECT a.name, a.live_version,
        (SELECT COUNT(*) FROM version v WHERE v.app_id = a.id), a.created_at, a.updated_at
     FROM app a";

pub(crate) fn app_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AppRecord> {
    Ok(AppRecord {
        name: r.get(0)?,
        live_version: r.get(1)?,
        versions: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

/// The app's row id and live version, or `AppNotFound`.
pub(crate) fn find_app(conn: &Connection, app: &str) -> Result<(i64, Option<u32>), StoreError> {
    conn.query_row(
        "SELECT id, live_version FROM app WHERE name = ?1",
        [app],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .during_with(DB, || format!("looking up app \"{app}\""))?
    .ok_or_else(|| StoreError::AppNotFound(app.to_owned()))
}

pub(crate) fn version_not_found(app: &str, number: u32) -> StoreError {
    StoreError::VersionNotFound {
        app: app.to_owned(),
        number,
    }
}

pub(crate) fn function_record(
    app: &str,
    version: u32,
    name: String,
    component_sha256: String,
    spec: String,
) -> Result<FunctionRecord, StoreError> {
    let spec = serde_json::from_str(&spec).map_err(|source| StoreError::CorruptSpec {
        app: app.to_owned(),
        version,
        function: name.clone(),
        source,
    })?;
    Ok(FunctionRecord {
        name,
        component_sha256,
        spec,
    })
}
