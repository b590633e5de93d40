//! The data directory as `/readyz` and `stratus status` show it: what it
//! holds, what the ledger takes of its budget, and what the disk has left.
//! An operator who leaves a node running for months looks here first.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::DiskHealth;

/// Measurements are reused this long: a readiness probe every second must
/// not walk the directory every second.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// Below this much free space the disk is a problem `/readyz` names: the
/// ledger, the queue and deploys are about to be refused writes.
pub const LOW_DISK_BYTES: u64 = 64 << 20;

/// The ledger's files in the data directory, when it keeps them there.
#[derive(Debug, Clone)]
pub struct LedgerFiles {
    /// The database's file name (`SqliteLedger::FILE`); its journal files
    /// share it as a prefix.
    pub file: &'static str,
    /// `--ledger-max-size`.
    pub max_bytes: u64,
}

/// Where the node keeps its state, and the ledger's budget within it.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// `None` with metering off, or when the ledger is a cluster's stream.
    ledger: Option<LedgerFiles>,
    measured: Mutex<Option<(Instant, DiskHealth)>>,
}

impl DataDir {
    pub fn new(path: &Path, ledger: Option<LedgerFiles>) -> DataDir {
        DataDir {
            path: path.to_path_buf(),
            ledger,
            measured: Mutex::new(None),
        }
    }

    /// The directory's size, the ledger's files against their budget, and
    /// the disk's free and total space, measured at most [`FRESH_FOR`] ago.
    pub async fn health(&self) -> DiskHealth {
        if let Ok(measured) = self.measured.lock()
            && let Some((at, health)) = measured.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return health.clone();
        }
        let (path, ledger) = (self.path.clone(), self.ledger.clone());
        let health = tokio::task::spawn_blocking(move || measure(&path, ledger.as_ref()))
            .await
            .unwrap_or_else(|e| DiskHealth {
                data_dir: self.path.display().to_string(),
                error: Some(format!("measuring the data directory failed: {e}")),
                ..DiskHealth::default()
            });
        if let Ok(mut measured) = self.measured.lock() {
            *measured = Some((Instant::now(), health.clone()));
        }
        health
    }
}

fn measure(path: &Path, ledger: Option<&LedgerFiles>) -> DiskHealth {
    let mut health = DiskHealth {
        data_dir: path.display().to_string(),
        ledger_max_bytes: ledger.map(|l| l.max_bytes),
        ..DiskHealth::default()
    };
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        // A file removed while the walk runs is simply not counted.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                health.data_dir_bytes += meta.len();
                // The database and its -wal and -shm files.
                if dir == path
                    && let Some(ledger) = ledger
                    && entry.file_name().to_string_lossy().starts_with(ledger.file)
                {
                    health.ledger_bytes += meta.len();
                }
            }
        }
    }
    match rustix::fs::statvfs(path) {
        Ok(stats) => {
            health.disk_free_bytes = stats.f_bavail.saturating_mul(stats.f_frsize);
            health.disk_total_bytes = stats.f_blocks.saturating_mul(stats.f_frsize);
        }
        Err(e) => health.error = Some(format!("cannot read the disk's free space: {e}")),
    }
    health
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn counts_the_files_and_the_ledgers_and_reads_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ledger.sqlite"), vec![0u8; 3000]).unwrap();
        std::fs::write(dir.path().join("ledger.sqlite-wal"), vec![0u8; 500]).unwrap();
        std::fs::create_dir(dir.path().join("artifacts")).unwrap();
        std::fs::write(dir.path().join("artifacts/a"), vec![0u8; 1000]).unwrap();
        let ledger = LedgerFiles {
            file: "ledger.sqlite",
            max_bytes: 1 << 30,
        };
        let data_dir = DataDir::new(dir.path(), Some(ledger));
        let health = data_dir.health().await;
        assert_eq!(health.data_dir_bytes, 4500);
        assert_eq!(health.ledger_bytes, 3500);
        assert_eq!(health.ledger_max_bytes, Some(1 << 30));
        assert!(health.disk_total_bytes > 0 && health.disk_free_bytes <= health.disk_total_bytes);
        assert!(health.error.is_none());
        // Measured again only once stale.
        std::fs::write(dir.path().join("more"), vec![0u8; 100]).unwrap();
        assert_eq!(data_dir.health().await.data_dir_bytes, 4500);
    }
}
