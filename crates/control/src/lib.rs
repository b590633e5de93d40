//! The control plane of one node: deploy, activate, roll back and delete
//! apps, keeping three things in step — the durable store (what was
//! deployed), the runtime (compiled, pre-instantiated components) and the
//! invoker's live set (what serves traffic).
//!
//! Every change follows the same order: do all the work that can fail
//! (parse, validate, compile, check routes) first, then commit to the store
//! in one transaction, then swap the live set in one atomic store. A change
//! that fails therefore leaves no trace and the previous version serving.
//!
//! The app store and the artifact store (`stratus-storage`'s traits) know
//! nothing of each other; `stored.rs` keeps them in step.

pub mod canary;
mod deploy;
mod error;
mod follow;
pub mod gains;
mod node;
mod progress;
mod quotas;
mod serving;
mod stored;

pub use canary::{CanaryPlan, SplitRequest, TrafficReport, Verdict};
pub use deploy::{DeployPolicy, DeployReport, DeployTimings, DeployedFunction, Upload};
pub use error::ControlError;
pub use follow::Followed;
pub use node::{CapabilityBackends, Node, NodeStats};
pub use progress::{CompileState, DeployInProgress, FunctionProgress};
pub use serving::LiveCounts;
