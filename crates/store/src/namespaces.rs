//! [`SqliteNamespaces`]: namespaces' quotas in `stratus.db`.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use stratus_storage::{NamespaceFuture, NamespaceStore, NamespaceStoreError, Quotas, now_ms};

use crate::db::Db;

/// The quotas of a single node's namespaces, in the app store's database
/// ([`SqliteAppStore::namespaces`](crate::SqliteAppStore::namespaces)).
#[derive(Debug, Clone)]
pub struct SqliteNamespaces {
    pub(crate) db: Arc<Db>,
}

fn failed(e: impl std::fmt::Display) -> NamespaceStoreError {
    NamespaceStoreError::Backend(format!("stratus.db: {e}"))
}

impl SqliteNamespaces {
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, NamespaceStoreError> + Send + 'static,
    ) -> NamespaceFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&db))
                .await
                .map_err(failed)?
        })
    }
}

impl NamespaceStore for SqliteNamespaces {
    fn quotas(&self, namespace: &str) -> NamespaceFuture<Quotas> {
        let namespace = namespace.to_owned();
        self.run(move |db| {
            let text: Option<String> = db
                .conn()
                .query_row(
                    "SELECT quotas FROM namespace_quota WHERE namespace = ?1",
                    [&namespace],
                    |row| row.get(0),
                )
                .optional()
                .map_err(failed)?;
            match text {
                Some(text) => serde_json::from_str(&text).map_err(failed),
                None => Ok(Quotas::default()),
            }
        })
    }

    fn set_quotas(&self, namespace: &str, quotas: Quotas) -> NamespaceFuture<()> {
        let namespace = namespace.to_owned();
        self.run(move |db| {
            let text = serde_json::to_string(&quotas).map_err(failed)?;
            db.conn()
                .execute(
                    "INSERT INTO namespace_quota (namespace, quotas, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (namespace) DO UPDATE SET quotas = ?2, updated_at = ?3",
                    params![namespace, text, now_ms()],
                )
                .map_err(failed)?;
            Ok(())
        })
    }

    fn all(&self) -> NamespaceFuture<Vec<(String, Quotas)>> {
        self.run(|db| {
            let conn = db.conn();
            let mut statement = conn
                .prepare("SELECT namespace, quotas FROM namespace_quota ORDER BY namespace")
                .map_err(failed)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(failed)?;
            let mut all = Vec::new();
            for row in rows {
                let (namespace, text) = row.map_err(failed)?;
                // One record this release cannot read (written by a newer
                // one) must not stop the node applying the others.
                match serde_json::from_str(&text) {
                    Ok(quotas) => all.push((namespace, quotas)),
                    Err(e) => tracing::warn!(
                        namespace = %namespace,
                        "namespace quotas left out: the record cannot be read: {e}"
                    ),
                }
            }
            Ok(all)
        })
    }
}
