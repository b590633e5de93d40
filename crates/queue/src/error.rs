//! What the SQLite queue adds to the seam's [`QueueError`]: its own errors
//! travel as `QueueError::Backend`, their messages unchanged.

use stratus_sqlite::SqliteError;
use stratus_storage::QueueError;

/// The name of this crate's database in error messages.
pub(crate) const DB: &str = "queue";

/// The writer thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the queue writer thread: {0}")]
pub(crate) struct NoThread(#[source] pub(crate) std::io::Error);

/// A failed statement as the seam's error.
pub(crate) fn backend(e: SqliteError) -> QueueError {
    QueueError::backend(e)
}
