//! The SQLite ledger against the storage crate's ledger conformance suite,
//! each check in a temporary directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::conformance::Opened;
use stratus_storage::{LedgerStore, PriceSheet, Retention};

use crate::SqliteLedger;

fn open_sqlite(prices: PriceSheet) -> Opened<Arc<dyn LedgerStore>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SqliteLedger::FILE);
        let ledger = SqliteLedger::open(&path, Retention::default(), prices).unwrap();
        (
            Arc::new(ledger) as Arc<dyn LedgerStore>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

stratus_storage::ledger_conformance!(open_sqlite);
