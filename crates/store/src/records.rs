//! Row helpers shared by the store's reads and writes.

use rusqlite::{Connection, OptionalExtension};
use stratus_storage::{AppRecord, AppStoreError, FunctionRecord, Traffic};

use crate::error::{CorruptSpec, Sql};

pub(crate) const APP_SELECT: &str = "SELECT a.name, a.live_version,
        (SELECT COUNT(*) FROM version v WHERE v.app_id = a.id), a.created_at, a.updated_at,
        a.traffic
     FROM app a";

pub(crate) fn app_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AppRecord> {
    Ok(AppRecord {
        name: r.get(0)?,
        live_version: r.get(1)?,
        versions: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        traffic: traffic_from_text(5, &r.get::<_, String>(5)?)?,
    })
}

/// An app's stored traffic JSON, or the column's conversion error.
pub(crate) fn traffic_from_text(column: usize, text: &str) -> rusqlite::Result<Traffic> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The app's row id and live version, or `AppNotFound`.
pub(crate) fn find_app(conn: &Connection, app: &str) -> Result<(i64, Option<u32>), AppStoreError> {
    conn.query_row(
        "SELECT id, live_version FROM app WHERE name = ?1",
        [app],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .sql(|| format!("looking up app \"{app}\""))?
    .ok_or_else(|| AppStoreError::AppNotFound(app.to_owned()))
}

pub(crate) fn version_not_found(app: &str, number: u32) -> AppStoreError {
    AppStoreError::VersionNotFound {
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
) -> Result<FunctionRecord, AppStoreError> {
    let spec = serde_json::from_str(&spec).map_err(|source| {
        AppStoreError::backend(CorruptSpec {
            app: app.to_owned(),
            version,
            function: name.clone(),
            source,
        })
    })?;
    Ok(FunctionRecord {
        name,
        component_sha256,
        spec,
    })
}
