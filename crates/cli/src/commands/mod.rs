//! Client commands: each one call (or a few) to the admin API.

pub mod apps;
pub mod audit;
pub mod deploy;
mod deploy_progress;
pub mod dlq;
pub mod invocations;
pub mod invoke;
pub mod logs;
pub mod new;
pub mod nodes;
pub mod quotas;
pub mod secrets;
pub mod status;
pub mod tokens;
pub mod traffic;
pub mod usage;
