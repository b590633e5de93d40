//! Conformance suites: one per seam, run by every backend's tests. They
//! are compiled into the library (not behind a feature) so that the tests
//! and the `stratus` binary build this crate, and everything above it,
//! once.

pub mod apps;
pub mod artifacts;
pub mod keyvalue;
pub mod ledger;
pub mod queue;
