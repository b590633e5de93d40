//! The invocation ledger: one record per invocation (what it used, how it
//! ended), hourly usage roll-ups priced by a price sheet, and the lines each
//! invocation wrote to stdout and stderr.
//!
//! It lives in its own SQLite database (`ledger.sqlite` in the data
//! directory) rather than beside the apps, because it is written all the
//! time: a burst of metering must never wait behind a deploy transaction, nor
//! a deploy behind metering. Writes go through a channel to one writer
//! thread that commits whatever has queued up as one transaction (group
//! commit), so the request path only pays for a channel send and the disk
//! sees one fsync per batch instead of one per request.

mod batch;
mod error;
mod last_errors;
mod log_budget;
mod logs;
pub mod record;
mod schema;
mod usage;
mod writer;

pub use error::LedgerError;
pub use last_errors::LastError;
pub use log_budget::DEFAULT_LOG_BYTES_PER_APP_DAY;
pub use logs::LogQuery;
pub use record::{InvocationRecord, LogLine, LogStream, Outbound, Trigger};
pub use usage::{PriceSheet, UsageQuery, UsageReport, UsageRow};
pub use writer::{Ledger, LedgerStats, Recorder, Retention};

#[cfg(test)]
mod tests;
