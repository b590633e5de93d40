//! The store's writes: new versions, the live pointer, deleting an app.
//!
//! Versions are immutable once written: a deploy adds version `max + 1` and
//! optionally points the app's `live_version` at it; rollback is just moving
//! that pointer back. Versions are never deleted one by one, so `max + 1`
//! never hands out a number that was used before while the app exists.

use std::collections::HashSet;

use rusqlite::params;
use stratus_storage::{AppStoreError, FunctionRecord, NewFunction, Traffic, VersionRecord};

use crate::db::{Db, now_ms};
use crate::error::Sql;
use crate::records::{find_app, traffic_from_text, version_not_found};

/// Whether the app (by row id) has version `number`.
fn version_exists(
    tx: &rusqlite::Transaction<'_>,
    app_id: i64,
    number: u32,
) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM version WHERE app_id = ?1 AND number = ?2)",
        params![app_id, number],
        |r| r.get(0),
    )
}

/// Ends the app's canary, keeping its history: the live version it was
/// judged against has changed.
fn end_canary(tx: &rusqlite::Transaction<'_>, app_id: i64) -> rusqlite::Result<()> {
    let text: String = tx.query_row("SELECT traffic FROM app WHERE id = ?1", [app_id], |r| {
        r.get(0)
    })?;
    let mut traffic = traffic_from_text(0, &text)?;
    if traffic.canary.take().is_some() {
        let text = serde_json::to_string(&traffic)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        tx.execute(
            "UPDATE app SET traffic = ?2 WHERE id = ?1",
            params![app_id, text],
        )?;
    }
    Ok(())
}

impl Db {
    /// Records a new version of `app` (creating the app if needed) in one
    /// transaction, and makes it live when `activate` is set. Fails without
    /// writing anything if a function name repeats.
    pub(crate) fn create_version(
        &self,
        app: &str,
        manifest_text: &str,
        functions: Vec<NewFunction>,
        activate: bool,
    ) -> Result<VersionRecord, AppStoreError> {
        let mut seen = HashSet::new();
        for f in &functions {
            if !seen.insert(f.name.as_str()) {
                return Err(AppStoreError::DuplicateFunction {
                    app: app.to_owned(),
                    function: f.name.clone(),
                });
            }
        }
        let mut conn = self.conn();
        let action = || format!("creating a version of app \"{app}\"");
        let now = now_ms();
        let tx = conn.transaction().sql(action)?;
        tx.execute(
            "INSERT INTO app (name, live_version, created_at, updated_at) VALUES (?1, NULL, ?2, ?2)
             ON CONFLICT (name) DO NOTHING",
            params![app, now],
        )
        .sql(action)?;
        let app_id: i64 = tx
            .query_row("SELECT id FROM app WHERE name = ?1", [app], |r| r.get(0))
            .sql(action)?;
        let last: Option<u32> = tx
            .query_row(
                "SELECT MAX(number) FROM version WHERE app_id = ?1",
                [app_id],
                |r| r.get(0),
            )
            .sql(action)?;
        let last = last.unwrap_or(0);
        let number = last
            .checked_add(1)
            .ok_or_else(|| AppStoreError::VersionNumbersExhausted {
                app: app.to_owned(),
                last,
            })?;
        tx.execute(
            "INSERT INTO version (app_id, number, created_at, manifest) VALUES (?1, ?2, ?3, ?4)",
            params![app_id, number, now, manifest_text],
        )
        .sql(action)?;
        for f in &functions {
            tx.execute(
                "INSERT INTO function (app_id, version, name, component_sha256, spec)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    app_id,
                    number,
                    f.name,
                    f.component_sha256,
                    f.spec.to_string()
                ],
            )
            .sql(action)?;
        }
        tx.execute(
            "UPDATE app SET updated_at = ?2,
                 live_version = CASE WHEN ?3 THEN ?4 ELSE live_version END
             WHERE id = ?1",
            params![app_id, now, activate, number],
        )
        .sql(action)?;
        if activate {
            end_canary(&tx, app_id).sql(action)?;
        }
        tx.commit().sql(action)?;
        tracing::info!(app, version = number, activate, "created app version");

        let mut functions: Vec<FunctionRecord> = functions
            .into_iter()
            .map(|f| FunctionRecord {
                name: f.name,
                component_sha256: f.component_sha256,
                spec: f.spec,
            })
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(VersionRecord {
            app: app.to_owned(),
            number,
            created_at: now,
            live: activate,
            functions,
        })
    }

    /// Makes an existing version the live one (deploy or rollback).
    pub(crate) fn set_live(&self, app: &str, number: u32) -> Result<(), AppStoreError> {
        let mut conn = self.conn();
        let action = || format!("making version {number} of app \"{app}\" live");
        let tx = conn.transaction().sql(action)?;
        let (app_id, _) = find_app(&tx, app)?;
        if !version_exists(&tx, app_id, number).sql(action)? {
            return Err(version_not_found(app, number));
        }
        tx.execute(
            "UPDATE app SET live_version = ?2, updated_at = ?3 WHERE id = ?1",
            params![app_id, number, now_ms()],
        )
        .sql(action)?;
        end_canary(&tx, app_id).sql(action)?;
        tx.commit().sql(action)?;
        tracing::info!(app, version = number, "set live version");
        Ok(())
    }

    /// Replaces the app's traffic and, with `live`, its live version.
    pub(crate) fn set_traffic(
        &self,
        app: &str,
        live: Option<u32>,
        traffic: &Traffic,
    ) -> Result<(), AppStoreError> {
        let mut conn = self.conn();
        let action = || format!("setting the traffic of app \"{app}\"");
        let tx = conn.transaction().sql(action)?;
        let (app_id, current) = find_app(&tx, app)?;
        for number in live
            .iter()
            .chain(traffic.canary.as_ref().map(|c| &c.version))
        {
            if !version_exists(&tx, app_id, *number).sql(action)? {
                return Err(version_not_found(app, *number));
            }
        }
        let text = serde_json::to_string(traffic).map_err(AppStoreError::backend)?;
        tx.execute(
            "UPDATE app SET live_version = ?2, traffic = ?3, updated_at = ?4 WHERE id = ?1",
            params![app_id, live.or(current), text, now_ms()],
        )
        .sql(action)?;
        tx.commit().sql(action)?;
        tracing::info!(app, live, canary = ?traffic.canary.as_ref().map(|c| (c.version, c.percent)), "set traffic");
        Ok(())
    }

    /// Deletes an app with all its versions in one transaction, and returns
    /// the component hashes it used that no other app's versions use.
    pub(crate) fn delete_app(&self, app: &str) -> Result<Vec<String>, AppStoreError> {
        let mut conn = self.conn();
        let action = || format!("deleting app \"{app}\"");
        let tx = conn.transaction().sql(action)?;
        let (app_id, _) = find_app(&tx, app)?;
        let hashes: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT DISTINCT component_sha256 FROM function WHERE app_id = ?1
                     ORDER BY component_sha256",
                )
                .sql(action)?;
            let rows = stmt.query_map([app_id], |r| r.get(0)).sql(action)?;
            rows.collect::<rusqlite::Result<_>>().sql(action)?
        };
        tx.execute("DELETE FROM app WHERE id = ?1", [app_id])
            .sql(action)?;
        let mut unreferenced = Vec::new();
        for sha in hashes {
            let used: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM function WHERE component_sha256 = ?1)",
                    [&sha],
                    |r| r.get(0),
                )
                .sql(action)?;
            if !used {
                unreferenced.push(sha);
            }
        }
        tx.commit().sql(action)?;
        tracing::info!(app, "deleted app");
        Ok(unreferenced)
    }
}
