//! The invocation ledger in SQLite: the default [`LedgerStore`] of a node,
//! keeping one record per invocation (what it used, how it ended), hourly
//! usage roll-ups and the lines each invocation wrote to stdout and stderr.
//! The model, the in-memory policy in front of it (log budget, last
//! errors, live following) and the conformance suite are in
//! `stratus-storage`.
//!
//! It lives in its own SQLite database (`ledger.sqlite` in the data
//! directory) rather than beside the apps, because it is written all the
//! time: a burst of metering must never wait behind a deploy transaction, nor
//! a deploy behind metering. Writes go through a channel to one writer
//! thread that commits whatever has queued up as one transaction (group
//! commit), so the request path only pays for a channel send and the disk
//! sees one fsync per batch instead of one per request.
//!
//! [`LedgerStore`]: stratus_storage::LedgerStore

mod batch;
mod error;
mod keys;
mod logs;
mod schema;
mod store;
mod usage;
mod writer;

pub use store::SqliteLedger;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
