//! The SQLite queue against the storage crate's event-queue conformance
//! suite, each check in a fresh temporary directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use stratus_storage::{EventQueue, RetryPolicy};

use crate::SqliteQueue;

fn open_sqlite(policy: RetryPolicy) -> (Arc<dyn EventQueue>, Box<dyn Any>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteQueue::FILE);
    let queue = SqliteQueue::open(&path, policy, Duration::from_secs(86_400)).unwrap();
    (Arc::new(queue), Box::new(dir))
}

mod sqlite {
    stratus_storage::queue_conformance!(super::open_sqlite);
}
