//! The node's durable event queue in SQLite: the default backend of
//! `stratus_storage::EventQueue`, whose docs state the contract.
//!
//! An event acknowledged to its sender has been committed to `queue.sqlite`
//! with `synchronous = FULL`, so it survives `kill -9` and power loss, and
//! it is delivered at least once: a delivery is a lease, and a lease that
//! runs out (the node died mid-delivery) makes the event due again; when
//! the queue is opened, every event leased before is due at once. Failures
//! are retried with exponential backoff and jitter until the event's
//! attempts are used up; then it is dead, kept with its last error until
//! someone redrives it. Settled events are pruned after `keep_settled`.
//!
//! Every write goes through one writer thread that applies whatever
//! operations have queued up in one transaction and answers them after the
//! commit (group commit): thousands of events a second cost a handful of
//! fsyncs, and no caller is answered before its write is durable. Reads
//! use a connection of their own on tokio's blocking pool.

mod error;
mod schema;
mod store;
mod writer;

pub use writer::SqliteQueue;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
