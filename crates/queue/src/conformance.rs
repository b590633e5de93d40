//! The SQLite queue against the storage crate's event-queue conformance
//! suite, each check in a fresh temporary directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use stratus_storage::conformance::Opened;
use stratus_storage::{EventQueue, RetryPolicy};

use crate::SqliteQueue;

fn open_sqlite(policy: RetryPolicy) -> Opened<Arc<dyn EventQueue>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SqliteQueue::FILE);
        let queue = SqliteQueue::open(&path, policy, Duration::from_secs(86_400)).unwrap();
        (
            Arc::new(queue) as Arc<dyn EventQueue>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

mod sqlite {
    stratus_storage::queue_conformance!(super::open_sqlite);
}
