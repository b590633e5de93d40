//! The database behind [`SqliteAppStore`](crate::SqliteAppStore): one
//! connection, opened with the settings durability depends on.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::error::OpenError;
use crate::schema;

/// `stratus.db`, on which the store's blocking work runs.
#[derive(Debug)]
pub(crate) struct Db {
    // One connection behind a mutex: writes are rare (deploys) and short.
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` with the durable
    /// settings and runs pending migrations. Foreign keys are on: the
    /// cascading deletes depend on them.
    pub(crate) fn open(path: &Path) -> Result<Db, OpenError> {
        let mut conn = stratus_sqlite::open(path, true)?;
        stratus_sqlite::migrate(&mut conn, path, schema::MIGRATIONS)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// Locks the connection. A panic while holding the lock cannot leave a
    /// half-done write behind (an unfinished transaction rolls back when
    /// dropped), so a poisoned lock is safe to keep using.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) use stratus_storage::now_ms;
