//! The seams between a node and where it keeps things, as small traits that
//! know nothing of wasmtime, HTTP or SQLite: the runtime and the control
//! plane call them, the backend crates implement them (`stratus-keyvalue`:
//! SQLite and Redis; `stratus-secrets`: the encrypted SQLite store;
//! `stratus-store`: apps in SQLite, components as files).
//!
//! Each seam comes with a conformance suite ([`conformance`]) that states
//! its behaviour once; every backend runs it, so adding a backend means
//! implementing the trait and passing the suite.

mod apps;
mod artifacts;
pub mod conformance;
mod keyvalue;
mod secrets;

pub use apps::{
    AppFuture, AppRecord, AppStore, AppStoreError, FunctionRecord, LiveFunctionRecord, NewFunction,
    VersionRecord,
};
pub use artifacts::{
    ArtifactError, ArtifactFuture, ArtifactStore, BlobRef, is_sha256_hex, sha256_hex,
};
pub use keyvalue::{BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, Pairs, Quota, Usage};
pub use secrets::SecretSource;
