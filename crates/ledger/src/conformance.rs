//! The SQLite ledger against the storage crate's ledger conformance suite,
//! each check in a temporary directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::{LedgerStore, PriceSheet, Retention};

use crate::SqliteLedger;

fn open_sqlite(prices: PriceSheet) -> (Arc<dyn LedgerStore>, Box<dyn Any>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteLedger::FILE);
    let ledger = SqliteLedger::open(&path, Retention::default(), prices).unwrap();
    (Arc::new(ledger), Box::new(dir))
}

stratus_storage::ledger_conformance!(open_sqlite);
