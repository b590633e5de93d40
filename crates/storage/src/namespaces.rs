//! Namespaces' quotas and money budgets: what a team may deploy and run,
//! set by the node's operators (never by the team itself).

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// What a namespace may have and use; `None` is no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Apps at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_apps: Option<u32>,
    /// Functions over all its apps' live versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_functions: Option<u32>,
    /// Linear memory of any one function, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<u64>,
    /// Invocations running at once over all its functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Requests per second through the gateway (a token bucket holding one
    /// second's worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// What it may spend in a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// A spending limit per period, in GB-seconds or in the price sheet's
/// currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub amount: f64,
    pub unit: BudgetUnit,
    pub period: BudgetPeriod,
    /// At 100 %: refuse its functions' invocations (429 `budget_exhausted`)
    /// or keep serving and only warn.
    pub on_exhausted: OnExhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    GbSeconds,
    /// The price sheet's currency.
    Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    Reject,
    Alert,
}

/// Why the namespace store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceStoreError {
    /// The backend is out of reach for now (a cluster's NATS); try again.
    #[error("the namespace store is unavailable: {0}")]
    Unavailable(String),
    #[error("the namespace store failed: {0}")]
    Backend(String),
}

pub type NamespaceFuture<T> = Pin<Box<dyn Future<Output = Result<T, NamespaceStoreError>> + Send>>;

/// Where a node keeps namespaces' quotas: `stratus.db`, or a bucket in a
/// cluster, so every node enforces the same ones.
pub trait NamespaceStore: Send + Sync + std::fmt::Debug + 'static {
    /// The namespace's quotas (all `None` when none were set).
    fn quotas(&self, namespace: &str) -> NamespaceFuture<Quotas>;

    /// Replaces the namespace's quotas whole.
    fn set_quotas(&self, namespace: &str, quotas: Quotas) -> NamespaceFuture<()>;

    /// Every namespace that has quotas, by name.
    fn all(&self) -> NamespaceFuture<Vec<(String, Quotas)>>;
}
