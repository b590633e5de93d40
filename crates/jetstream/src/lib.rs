//! A node's shared state on a NATS JetStream cluster, so that many nodes
//! serve as one platform: apps and their versions in a key-value bucket
//! (every write a compare-and-set on the app's revision, every node
//! watching), component bytes in an object store named by SHA-256. Each
//! backend implements a seam of `stratus-storage` and passes its
//! conformance suite, exactly as the embedded SQLite backends do.
//!
//! NATS stays off the request path: nodes read this state when it changes
//! and serve from memory.

mod api;
mod apps;
mod artifacts;
mod audit;
mod kv;
mod ledger;
mod namespaces;
mod nodes;
mod queue;
mod secrets;
mod singleton;
#[cfg(test)]
mod testing;
mod ticks;
mod tokens;
mod watch;

pub use api::{JetStream, JetStreamError, PubAck, StoredMessage};
pub use apps::JetStreamApps;
pub use artifacts::{JetStreamArtifacts, OpenArtifactsError};
pub use audit::JetStreamAudit;
pub use kv::{Entry, Kv, KvSettings};
pub use ledger::JetStreamLedger;
pub use namespaces::JetStreamNamespaces;
pub use nodes::{EXPIRY as NODE_EXPIRY, HEARTBEAT, JetStreamNodes};
pub use queue::JetStreamQueue;
pub use secrets::JetStreamSecrets;
pub use singleton::{LEASE_TERM, Singleton};
pub use ticks::SharedTicks;
pub use tokens::JetStreamTokens;
pub use watch::{Change, Watch};
