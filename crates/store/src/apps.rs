//! Apps, their numbered versions and each version's functions.
//!
//! Versions are immutable once written: a deploy adds version `max + 1` and
//! optionally points the app's `live_version` at it; rollback is just moving
//! that pointer back. Versions are never deleted one by one, so `max + 1`
//! never hands out a number that was used before while the app exists.

//!
//! This module holds the writes; reads live in `queries`.

use std::collections::HashSet;

use rusqlite::params;

use crate::Store;
use crate::blobs::check_hash;
use crate::db::now_ms;
use crate::error::{DB, StoreError};
use crate::records::{FunctionRecord, NewFunction, VersionRecord, find_app, version_not_found};
use stratus_sqlite::During;

impl Store {
    /// Records a new version of `app` (creating the app if needed) in one
    /// transaction, and makes it live when `activate` is set.
    ///
    /// Fails without writing anything if a function name repeats or a
    /// component has not been uploaded.
    pub fn create_version(
        &self,
        app: &str,
        manifest_text: &str,
        functions: &[NewFunction],
        activate: bool,
    ) -> Result<VersionRecord, StoreError> {
        let mut seen = HashSet::new();
        for f in functions {
            if !seen.insert(f.name.as_str()) {
                return Err(StoreError::DuplicateFunction {
                    app: app.to_owned(),
                    function: f.name.clone(),
                });
            }
            check_hash(&f.component_sha256)?;
        }
        let mut conn = self.conn();
        // Checked while holding the lock, so `delete_app` cannot collect a
        // blob between this check and the insert below.
        if let Some(f) = functions
            .iter()
            .find(|f| !self.has_blob(&f.component_sha256))
        {
            return Err(StoreError::ComponentNotUploaded {
                app: app.to_owned(),
                function: f.name.clone(),
                sha256: f.component_sha256.clone(),
            });
        }

        let action = || format!("creating a version of app \"{app}\"");
        let now = now_ms();
        let tx = conn.transaction().during_with(DB, action)?;
        tx.execute(
            "INSERT INTO app (name, live_version, created_at, updated_at) VALUES (?1, NULL, ?2, ?2)
             ON CONFLICT (name) DO NOTHING",
            params![app, now],
        )
        .during_with(DB, action)?;
        let app_id: i64 = tx
            .query_row("SELECT id FROM app WHERE name = ?1", [app], |r| r.get(0))
            .during_with(DB, action)?;
        let last: Option<u32> = tx
            .query_row(
                "SELECT MAX(number) FROM version WHERE app_id = ?1",
                [app_id],
                |r| r.get(0),
            )
            .during_with(DB, action)?;
        let last = last.unwrap_or(0);
        let number = last
            .checked_add(1)
            .ok_or_else(|| StoreError::VersionNumbersExhausted {
                app: app.to_owned(),
                last,
            })?;
        tx.execute(
            "INSERT INTO version (app_id, number, created_at, manifest) VALUES (?1, ?2, ?3, ?4)",
            params![app_id, number, now, manifest_text],
        )
        .during_with(DB, action)?;
        for f in functions {
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
            .during_with(DB, action)?;
        }
        tx.execute(
            "UPDATE app SET updated_at = ?2,
                 live_version = CASE WHEN ?3 THEN ?4 ELSE live_version END
             WHERE id = ?1",
            params![app_id, now, activate, number],
        )
        .during_with(DB, action)?;
        tx.commit().during_with(DB, action)?;
        tracing::info!(app, version = number, activate, "created app version");

        let mut functions: Vec<FunctionRecord> = functions
            .iter()
            .map(|f| FunctionRecord {
                name: f.name.clone(),
                component_sha256: f.component_sha256.clone(),
                spec: f.spec.clone(),
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
    pub fn set_live(&self, app: &str, number: u32) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let action = || format!("making version {number} of app \"{app}\" live");
        let tx = conn.transaction().during_with(DB, action)?;
        let (app_id, _) = find_app(&tx, app)?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM version WHERE app_id = ?1 AND number = ?2)",
                params![app_id, number],
                |r| r.get(0),
            )
            .during_with(DB, action)?;
        if !exists {
            return Err(version_not_found(app, number));
        }
        tx.execute(
            "UPDATE app SET live_version = ?2, updated_at = ?3 WHERE id = ?1",
            params![app_id, number, now_ms()],
        )
        .during_with(DB, action)?;
        tx.commit().during_with(DB, action)?;
        tracing::info!(app, version = number, "set live version");
        Ok(())
    }

    /// Deletes an app with all its versions, then removes the component blobs
    /// no other app uses. Blob removal is best effort: a leftover file only
    /// costs disk space, so failures are logged rather than returned.
    pub fn delete_app(&self, app: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let action = || format!("deleting app \"{app}\"");
        let tx = conn.transaction().during_with(DB, action)?;
        let (app_id, _) = find_app(&tx, app)?;
        let hashes: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT component_sha256 FROM function WHERE app_id = ?1")
                .during_with(DB, action)?;
            let rows = stmt
                .query_map([app_id], |r| r.get(0))
                .during_with(DB, action)?;
            rows.collect::<rusqlite::Result<_>>()
                .during_with(DB, action)?
        };
        tx.execute("DELETE FROM app WHERE id = ?1", [app_id])
            .during_with(DB, action)?;
        let mut unreferenced = Vec::new();
        for sha in hashes {
            let used: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM function WHERE component_sha256 = ?1)",
                    [&sha],
                    |r| r.get(0),
                )
                .during_with(DB, action)?;
            if !used {
                unreferenced.push(sha);
            }
        }
        tx.commit().during_with(DB, action)?;
        tracing::info!(app, "deleted app");
        // Still holding the lock: a concurrent create_version re-checks blob
        // presence under it, so it never records a hash removed here.
        for sha in unreferenced {
            if let Err(error) = self.remove_blob(&sha) {
                tracing::warn!(
                    app,
                    sha256 = %sha,
                    path = %self.blob_path(&sha).display(),
                    %error,
                    "could not remove unreferenced component blob"
                );
            }
        }
        Ok(())
    }
}
