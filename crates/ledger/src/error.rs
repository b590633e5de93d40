/// Why the ledger could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Database(#[from] stratus_sqlite::SqliteError),
    #[error("ledger database error while {action}: {source}")]
    Db {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot start the ledger writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

pub(crate) trait DbContext<T> {
    fn during(self, action: &'static str) -> Result<T, LedgerError>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn during(self, action: &'static str) -> Result<T, LedgerError> {
        self.map_err(|source| LedgerError::Db { action, source })
    }
}
