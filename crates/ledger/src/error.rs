/// The writer thread could not be started (the process is out of threads
/// or memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the ledger writer thread: {0}")]
pub(crate) struct WriterThread(#[source] pub std::io::Error);

/// The name of this crate's database in error messages.
pub(crate) const DB: &str = "ledger";
