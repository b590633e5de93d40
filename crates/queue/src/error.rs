#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Database(#[from] stratus_sqlite::SqliteError),
    #[error("queue database error while {action}: {source}")]
    Db {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the queue could not commit: {0}")]
    Commit(String),
    #[error("the queue's writer has stopped")]
    Stopped,
    #[error("cannot start the queue writer thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("no event {0} is waiting in this queue")]
    NotFound(i64),
}

pub(crate) trait DbContext<T> {
    fn during(self, action: &'static str) -> Result<T, QueueError>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn during(self, action: &'static str) -> Result<T, QueueError> {
        self.map_err(|source| QueueError::Db { action, source })
    }
}
