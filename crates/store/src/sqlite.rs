//! [`SqliteAppStore`]: apps, versions and functions in `stratus.db`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stratus_storage::{
    AppFuture, AppRecord, AppStore, AppStoreError, LiveFunctionRecord, NewFunction, Traffic,
    VersionRecord,
};

use crate::DB_FILE;
use crate::db::Db;
use crate::error::{OpenError, create_dirs};

/// The app store in a data directory's `stratus.db`: SQLite in WAL mode
/// with `synchronous = FULL`, so a version is on disk before its deploy is
/// answered. Its work runs on tokio's blocking pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteAppStore {
    db: Arc<Db>,
    path: Arc<Path>,
}

impl SqliteAppStore {
    /// Opens the store in `data_dir`, creating the directory, database and
    /// schema as needed and migrating an older schema forward.
    pub fn open(data_dir: &Path) -> Result<SqliteAppStore, OpenError> {
        create_dirs(data_dir, data_dir)?;
        let path = data_dir.join(DB_FILE);
        let db = Db::open(&path)?;
        tracing::debug!(path = %path.display(), "opened app store");
        Ok(SqliteAppStore {
            db: Arc::new(db),
            path: path.into(),
        })
    }

    /// The node's tokens, kept in the same database.
    pub fn tokens(&self) -> crate::SqliteTokens {
        crate::SqliteTokens {
            db: self.db.clone(),
        }
    }

    /// The node's namespaces' quotas, kept in the same database.
    pub fn namespaces(&self) -> crate::SqliteNamespaces {
        crate::SqliteNamespaces {
            db: self.db.clone(),
        }
    }

    /// The node's audit log, kept in the same database for `retention`.
    pub fn audit(&self, retention: std::time::Duration) -> crate::SqliteAudit {
        crate::SqliteAudit {
            db: self.db.clone(),
            retention,
            pruned: Default::default(),
        }
    }

    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// Runs blocking database work on the blocking pool.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, AppStoreError> + Send + 'static,
    ) -> AppFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&db))
                .await
                .map_err(AppStoreError::backend)?
        })
    }
}

impl AppStore for SqliteAppStore {
    fn create_version(
        &self,
        app: &str,
        manifest: &str,
        functions: Vec<NewFunction>,
        activate: bool,
    ) -> AppFuture<VersionRecord> {
        let (app, manifest) = (app.to_owned(), manifest.to_owned());
        self.run(move |db| db.create_version(&app, &manifest, functions, activate))
    }

    fn set_live(&self, app: &str, number: u32) -> AppFuture<()> {
        let app = app.to_owned();
        self.run(move |db| db.set_live(&app, number))
    }

    fn set_traffic(&self, app: &str, live: Option<u32>, traffic: Traffic) -> AppFuture<()> {
        let app = app.to_owned();
        self.run(move |db| db.set_traffic(&app, live, &traffic))
    }

    fn delete_app(&self, app: &str) -> AppFuture<Vec<String>> {
        let app = app.to_owned();
        self.run(move |db| db.delete_app(&app))
    }

    fn list_apps(&self) -> AppFuture<Vec<AppRecord>> {
        self.run(|db| db.list_apps())
    }

    fn app(&self, name: &str) -> AppFuture<Option<AppRecord>> {
        let name = name.to_owned();
        self.run(move |db| db.app(&name))
    }

    fn list_versions(&self, app: &str) -> AppFuture<Vec<VersionRecord>> {
        let app = app.to_owned();
        self.run(move |db| db.list_versions(&app))
    }

    fn version(&self, app: &str, number: u32) -> AppFuture<VersionRecord> {
        let app = app.to_owned();
        self.run(move |db| db.version(&app, number))
    }

    fn manifest(&self, app: &str, number: u32) -> AppFuture<String> {
        let app = app.to_owned();
        self.run(move |db| db.manifest(&app, number))
    }

    fn live_functions(&self) -> AppFuture<Vec<LiveFunctionRecord>> {
        self.run(|db| db.live_functions())
    }
}
