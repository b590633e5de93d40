//! The node's durable event queue.
//!
//! Events wait here between being accepted (an async invocation, a publish
//! to a named queue, a message from a broker) and being handled by a
//! function. An event acknowledged to its sender has been committed to
//! SQLite with `synchronous = FULL`, so it survives `kill -9` and power
//! loss, and it is delivered at least once: a delivery is a lease, and a
//! lease that runs out (the node died mid-delivery) makes the event due
//! again. Failures are retried with exponential backoff and jitter until
//! the event's attempts are used up; then it is dead, kept with its last
//! error until someone redrives it.
//!
//! Every write goes through one writer thread that applies whatever
//! operations have queued up in one transaction and answers them after the
//! commit (group commit): thousands of events a second cost a handful of
//! fsyncs, and no caller is answered before its write is durable.

mod error;
mod model;
mod schema;
mod store;
mod writer;

pub use error::QueueError;
pub use model::{Delivery, EventState, EventStatus, NewEvent, RetryPolicy, Settled};
pub use writer::Queue;

#[cfg(test)]
mod tests;
