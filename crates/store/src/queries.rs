//! Read-only queries: what apps exist, their versions, and what is live.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use stratus_storage::{
    AppRecord, AppStoreError, FunctionRecord, LiveFunctionRecord, VersionRecord,
};

use crate::db::Db;
use crate::error::Sql;
use crate::records::{APP_SELECT, app_from_row, find_app, function_record, version_not_found};

impl Db {
    /// All apps, ordered by name.
    pub(crate) fn list_apps(&self) -> Result<Vec<AppRecord>, AppStoreError> {
        let conn = self.conn();
        let action = || "listing apps";
        let mut stmt = conn
            .prepare(&format!("{APP_SELECT} ORDER BY a.name"))
            .sql(action)?;
        let rows = stmt.query_map([], app_from_row).sql(action)?;
        rows.collect::<rusqlite::Result<_>>().sql(action)
    }

    /// One app, or `None` if there is no app with that name.
    pub(crate) fn app(&self, name: &str) -> Result<Option<AppRecord>, AppStoreError> {
        self.conn()
            .query_row(
                &format!("{APP_SELECT} WHERE a.name = ?1"),
                [name],
                app_from_row,
            )
            .optional()
            .sql(|| format!("looking up app \"{name}\""))
    }

    /// All versions of `app`, newest first, each with its functions.
    pub(crate) fn list_versions(&self, app: &str) -> Result<Vec<VersionRecord>, AppStoreError> {
        let conn = self.conn();
        let (app_id, live) = find_app(&conn, app)?;
        let action = || format!("listing versions of app \"{app}\"");
        let mut by_version: BTreeMap<u32, Vec<FunctionRecord>> = BTreeMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT version, name, component_sha256, spec FROM function
                 WHERE app_id = ?1 ORDER BY version, name",
            )
            .sql(action)?;
        let rows = stmt
            .query_map([app_id], |r| {
                Ok((r.get::<_, u32>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .sql(action)?;
        for row in rows {
            let (version, name, sha, spec) = row.sql(action)?;
            let function = function_record(app, version, name, sha, spec)?;
            by_version.entry(version).or_default().push(function);
        }

        let mut stmt = conn
            .prepare(
                "SELECT number, created_at FROM version WHERE app_id = ?1 ORDER BY number DESC",
            )
            .sql(action)?;
        let rows = stmt
            .query_map([app_id], |r| Ok((r.get::<_, u32>(0)?, r.get(1)?)))
            .sql(action)?;
        let mut versions = Vec::new();
        for row in rows {
            let (number, created_at) = row.sql(action)?;
            versions.push(VersionRecord {
                app: app.to_owned(),
                number,
                created_at,
                live: live == Some(number),
                functions: by_version.remove(&number).unwrap_or_default(),
            });
        }
        Ok(versions)
    }

    /// One version of `app` with its functions.
    pub(crate) fn version(&self, app: &str, number: u32) -> Result<VersionRecord, AppStoreError> {
        let conn = self.conn();
        let (app_id, live) = find_app(&conn, app)?;
        let action = || format!("reading version {number} of app \"{app}\"");
        let created_at: i64 = conn
            .query_row(
                "SELECT created_at FROM version WHERE app_id = ?1 AND number = ?2",
                params![app_id, number],
                |r| r.get(0),
            )
            .optional()
            .sql(action)?
            .ok_or_else(|| version_not_found(app, number))?;
        let mut stmt = conn
            .prepare(
                "SELECT name, component_sha256, spec FROM function
                 WHERE app_id = ?1 AND version = ?2 ORDER BY name",
            )
            .sql(action)?;
        let rows = stmt
            .query_map(params![app_id, number], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .sql(action)?;
        let mut functions = Vec::new();
        for row in rows {
            let (name, sha, spec) = row.sql(action)?;
            functions.push(function_record(app, number, name, sha, spec)?);
        }
        Ok(VersionRecord {
            app: app.to_owned(),
            number,
            created_at,
            live: live == Some(number),
            functions,
        })
    }

    /// The `stratus.toml` text uploaded with a version.
    pub(crate) fn manifest(&self, app: &str, number: u32) -> Result<String, AppStoreError> {
        let conn = self.conn();
        let (app_id, _) = find_app(&conn, app)?;
        conn.query_row(
            "SELECT manifest FROM version WHERE app_id = ?1 AND number = ?2",
            params![app_id, number],
            |r| r.get(0),
        )
        .optional()
        .sql(|| format!("reading the manifest of version {number} of app \"{app}\""))?
        .ok_or_else(|| version_not_found(app, number))
    }

    /// Every function of every app's live version, ordered by app then
    /// function name; what a node loads when it starts.
    pub(crate) fn live_functions(&self) -> Result<Vec<LiveFunctionRecord>, AppStoreError> {
        let conn = self.conn();
        let action = || "loading live functions";
        let mut stmt = conn
            .prepare(
                "SELECT a.name, f.version, f.name, f.component_sha256, f.spec
                 FROM app a JOIN function f ON f.app_id = a.id AND f.version = a.live_version
                 ORDER BY a.name, f.name",
            )
            .sql(action)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            })
            .sql(action)?;
        let mut out = Vec::new();
        for row in rows {
            let (app, version, name, sha, spec) = row.sql(action)?;
            let function = function_record(&app, version, name, sha, spec)?;
            out.push(LiveFunctionRecord {
                app,
                version,
                function,
            });
        }
        Ok(out)
    }
}
