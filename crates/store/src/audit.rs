//! [`SqliteAudit`]: the audit log in `stratus.db`, aged out after the
//! node's retention.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::params;
use stratus_storage::{AuditEntry, AuditError, AuditFuture, AuditLog, AuditQuery, now_ms};

use crate::db::Db;

/// How often, at most, an append also removes the entries past retention.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The audit log of a single node, in the app store's database
/// ([`SqliteAppStore::audit`](crate::SqliteAppStore::audit)).
#[derive(Debug, Clone)]
pub struct SqliteAudit {
    pub(crate) db: Arc<Db>,
    pub(crate) retention: Duration,
    /// When entries past retention were last removed.
    pub(crate) pruned: Arc<Mutex<i64>>,
}

fn failed(e: rusqlite::Error) -> AuditError {
    AuditError::Backend(format!("stratus.db: {e}"))
}

impl SqliteAudit {
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, AuditError> + Send + 'static,
    ) -> AuditFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&db))
                .await
                .map_err(|e| AuditError::Backend(e.to_string()))?
        })
    }

    /// The time before which entries go, when it is time to remove them.
    fn prune_before(&self, now: i64) -> Option<i64> {
        let mut pruned = self.pruned.lock().ok()?;
        if now.saturating_sub(*pruned) < PRUNE_EVERY_MS {
            return None;
        }
        *pruned = now;
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        Some(now.saturating_sub(retention))
    }
}

impl AuditLog for SqliteAudit {
    fn append(&self, entry: AuditEntry) -> AuditFuture<()> {
        let prune = self.prune_before(now_ms());
        self.run(move |db| {
            let conn = db.conn();
            conn.execute(
                "INSERT INTO audit (time, namespace, token_id, token_name, role, source, action, target, status, outcome, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    entry.time,
                    entry.namespace,
                    entry.token_id,
                    entry.token_name,
                    entry.role,
                    entry.source,
                    entry.action,
                    entry.target,
                    entry.status,
                    entry.outcome,
                    entry.detail
                ],
            )
            .map_err(failed)?;
            if let Some(before) = prune {
                conn.execute("DELETE FROM audit WHERE time < ?1", [before])
                    .map_err(failed)?;
            }
            Ok(())
        })
    }

    fn list(&self, query: AuditQuery) -> AuditFuture<Vec<AuditEntry>> {
        self.run(move |db| {
            let conn = db.conn();
            // The namespace filter: any, node-wide only, or one namespace.
            let (any, namespace) = match &query.namespace {
                None => (true, None),
                Some(namespace) => (false, namespace.clone()),
            };
            let mut statement = conn
                .prepare(
                    "SELECT time, namespace, token_id, token_name, role, source, action, target, status, outcome, detail
                     FROM audit
                     WHERE time >= ?1 AND (?2 OR namespace IS ?3)
                     ORDER BY time DESC, seq DESC LIMIT ?4",
                )
                .map_err(failed)?;
            let rows = statement
                .query_map(
                    params![
                        query.since.unwrap_or(i64::MIN),
                        any,
                        namespace,
                        i64::try_from(query.limit).unwrap_or(i64::MAX)
                    ],
                    |row| {
                        Ok(AuditEntry {
                            time: row.get(0)?,
                            namespace: row.get(1)?,
                            token_id: row.get(2)?,
                            token_name: row.get(3)?,
                            role: row.get(4)?,
                            source: row.get(5)?,
                            action: row.get(6)?,
                            target: row.get(7)?,
                            status: row.get(8)?,
                            outcome: row.get(9)?,
                            detail: row.get(10)?,
                        })
                    },
                )
                .map_err(failed)?;
            let mut entries = rows.collect::<Result<Vec<_>, _>>().map_err(failed)?;
            entries.reverse();
            Ok(entries)
        })
    }
}
