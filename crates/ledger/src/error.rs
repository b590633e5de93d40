/// Why the ledger could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Database(#[from] stratus_sqlite::SqliteError),
    #[error("cannot start the ledger writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The name of this crate's database in error messages.
pub(crate) const DB: &str = "ledger";
