//! Conformance suites: one per seam, run by every backend's tests. They
//! are compiled into the library (not behind a feature) so that the tests
//! and the `stratus` binary build this crate, and everything above it,
//! once.

pub mod apps;
pub mod artifacts;
pub mod audit;
pub mod keyvalue;
pub mod ledger;
pub mod namespaces;
pub mod queue;
pub mod secrets;
pub mod tokens;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a suite's opener resolves to: a fresh backend, with whatever must
/// live as long as it (the directory of a SQLite file, a connection's
/// task). Openers are async because a backend on a server connects first.
pub type Opened<T> = Pin<Box<dyn Future<Output = (T, Box<dyn Any>)>>>;

/// `what` made unique to this run and call (process id, time, a counter),
/// so a check against a backend that outlives the test (a Redis or NATS
/// server) never meets a name an earlier run left behind.
pub(crate) fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{what}-{}-{now}-{n}", std::process::id())
}
