//! `SqliteSecrets`: sealed secrets in `secrets.sqlite`, the embedded
//! default [`SecretBackend`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use stratus_sqlite::{During, SqliteError};
use stratus_storage::{SealedSecret, SecretBackend, SecretBackendError, SecretInfo};

const DB: &str = "secrets";

const MIGRATIONS: &[&str] = &["CREATE TABLE secret (
        app        TEXT NOT NULL,
        name       TEXT NOT NULL,
        nonce      BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_us INTEGER NOT NULL,
        PRIMARY KEY (app, name)
    );"];

/// One connection behind a lock: secrets are few and small, and written by
/// an operator, so one writer at a time is plenty.
pub struct SqliteSecrets {
    conn: Mutex<Connection>,
}

impl SqliteSecrets {
    /// The database's file within a data directory.
    pub const FILE: &'static str = "secrets.sqlite";

    /// Opens (creating or migrating) the database at `path`, private to
    /// this user.
    pub fn open(path: &Path) -> Result<SqliteSecrets, SqliteError> {
        let mut conn = stratus_sqlite::open(path, false)?;
        stratus_sqlite::migrate(&mut conn, path, MIGRATIONS)?;
        Ok(SqliteSecrets {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn failed(e: SqliteError) -> SecretBackendError {
    SecretBackendError::new(e)
}

impl SecretBackend for SqliteSecrets {
    fn put(&self, app: &str, name: &str, sealed: &SealedSecret) -> Result<(), SecretBackendError> {
        self.lock()
            .execute(
                "INSERT INTO secret (app, name, nonce, ciphertext, updated_us)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (app, name) DO UPDATE SET nonce = excluded.nonce,
                    ciphertext = excluded.ciphertext, updated_us = excluded.updated_us",
                params![
                    app,
                    name,
                    sealed.nonce,
                    sealed.ciphertext,
                    stratus_sqlite::unix_micros(sealed.updated)
                ],
            )
            .during(DB, "storing a secret")
            .map_err(failed)?;
        Ok(())
    }

    fn get(&self, app: &str, name: &str) -> Result<Option<SealedSecret>, SecretBackendError> {
        const ACTION: &str = "reading a secret";
        self.lock()
            .prepare_cached(
                "SELECT nonce, ciphertext, updated_us FROM secret WHERE app = ?1 AND name = ?2",
            )
            .during(DB, ACTION)
            .map_err(failed)?
            .query_row(params![app, name], |row| {
                Ok(SealedSecret {
                    nonce: row.get(0)?,
                    ciphertext: row.get(1)?,
                    updated: stratus_sqlite::from_unix_micros(row.get(2)?),
                })
            })
            .optional()
            .during(DB, ACTION)
            .map_err(failed)
    }

    fn list(&self, app: &str) -> Result<Vec<SecretInfo>, SecretBackendError> {
        const ACTION: &str = "listing secrets";
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached("SELECT name, updated_us FROM secret WHERE app = ?1 ORDER BY name")
            .during(DB, ACTION)
            .map_err(failed)?;
        statement
            .query_map(params![app], |row| {
                Ok(SecretInfo {
                    name: row.get(0)?,
                    updated: stratus_sqlite::from_unix_micros(row.get(1)?),
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .during(DB, ACTION)
            .map_err(failed)
    }

    fn delete(&self, app: &str, name: &str) -> Result<bool, SecretBackendError> {
        let removed = self
            .lock()
            .execute(
                "DELETE FROM secret WHERE app = ?1 AND name = ?2",
                params![app, name],
            )
            .during(DB, "removing a secret")
            .map_err(failed)?;
        Ok(removed > 0)
    }
}
