#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Database(#[from] stratus_sqlite::SqliteError),
    #[error("the queue could not commit: {0}")]
    Commit(String),
    #[error("the queue's writer has stopped")]
    Stopped,
    #[error("cannot start the queue writer thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("no event {0} is waiting in this queue")]
    NotFound(i64),
}

/// The name of this crate's database in error messages.
pub(crate) const DB: &str = "queue";
