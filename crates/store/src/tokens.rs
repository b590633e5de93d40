//! [`SqliteTokens`]: scoped API tokens in `stratus.db`, beside the apps
//! they act on.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use stratus_storage::{Role, TokenFuture, TokenRecord, TokenStore, TokenStoreError};

use crate::db::Db;

/// The token store of a single node, sharing the app store's database
/// ([`SqliteAppStore::tokens`](crate::SqliteAppStore::tokens)).
#[derive(Debug, Clone)]
pub struct SqliteTokens {
    pub(crate) db: Arc<Db>,
}

fn failed(e: rusqlite::Error) -> TokenStoreError {
    TokenStoreError::Backend(format!("stratus.db: {e}"))
}

const COLUMNS: &str = "id, name, namespace, role, salt, hash, created_at, expires_at, last_used_at";

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let role: String = row.get(3)?;
    let role = role.parse::<Role>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        namespace: row.get(2)?,
        role,
        salt: row.get(4)?,
        hash: row.get(5)?,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        last_used_at: row.get(8)?,
    })
}

impl SqliteTokens {
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, TokenStoreError> + Send + 'static,
    ) -> TokenFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&db))
                .await
                .map_err(|e| TokenStoreError::Backend(e.to_string()))?
        })
    }
}

impl TokenStore for SqliteTokens {
    fn create(&self, record: TokenRecord) -> TokenFuture<()> {
        self.run(move |db| {
            let inserted = db
                .conn()
                .execute(
                    &format!("INSERT OR IGNORE INTO token ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                    params![
                        record.id,
                        record.name,
                        record.namespace,
                        record.role.as_str(),
                        record.salt,
                        record.hash,
                        record.created_at,
                        record.expires_at,
                        record.last_used_at
                    ],
                )
                .map_err(failed)?;
            if inserted == 0 {
                return Err(TokenStoreError::Conflict(record.id));
            }
            Ok(())
        })
    }

    fn get(&self, id: &str) -> TokenFuture<Option<TokenRecord>> {
        let id = id.to_owned();
        self.run(move |db| {
            db.conn()
                .query_row(
                    &format!("SELECT {COLUMNS} FROM token WHERE id = ?1"),
                    [&id],
                    read,
                )
                .optional()
                .map_err(failed)
        })
    }

    fn list(&self, namespace: Option<&str>) -> TokenFuture<Vec<TokenRecord>> {
        let namespace = namespace.map(str::to_owned);
        self.run(move |db| {
            let conn = db.conn();
            let mut statement = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM token WHERE namespace IS ?1 ORDER BY created_at, id"
                ))
                .map_err(failed)?;
            let rows = statement.query_map([&namespace], read).map_err(failed)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(failed)
        })
    }

    fn revoke(&self, id: &str) -> TokenFuture<bool> {
        let id = id.to_owned();
        self.run(move |db| {
            let deleted = db
                .conn()
                .execute("DELETE FROM token WHERE id = ?1", [&id])
                .map_err(failed)?;
            Ok(deleted > 0)
        })
    }

    fn touch(&self, id: &str, at: i64) -> TokenFuture<()> {
        let id = id.to_owned();
        self.run(move |db| {
            db.conn()
                .execute(
                    // Two nodes' (or requests') touches may land out of
                    // order: the last use never moves back.
                    "UPDATE token SET last_used_at = ?2
                     WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                    params![id, at],
                )
                .map_err(failed)?;
            Ok(())
        })
    }
}
