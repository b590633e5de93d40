//! What the node is serving right now, as the admin API asks for it: the
//! live functions, an invocation from the API, log lines as they are
//! written, the counters for `/metrics`.
//!
//! Thin on purpose: the invoker and the runtime own all of this. The node
//! answers for them so the admin API depends on one control plane rather
//! than on where each thing lives today.

use std::sync::Arc;

use bytes::Bytes;
use stratus_invoke::LiveFunction;
use stratus_runtime::{CapabilityStats, ResidencyStats, ResponseBody, Tier, TierStats};
use stratus_storage::{LedgerStats, Trigger};

use crate::node::Node;

/// How many functions are live, and how many of those are in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCounts {
    pub functions: usize,
    /// Functions whose compiled code is loaded (not scaled to zero).
    pub resident: usize,
    /// Resident functions serving baseline code until their optimized
    /// code is compiled.
    pub baseline: usize,
}

impl Node {
    /// Apps whose live version is serving.
    pub fn live_app_count(&self) -> usize {
        let live = self.invoker.live();
        let mut apps: Vec<&str> = live.functions().map(|f| f.app.as_str()).collect();
        apps.sort_unstable();
        apps.dedup();
        apps.len()
    }

    /// The live functions, of `app` only when one is given, by app and name.
    pub fn live_functions(&self, app: Option<&str>) -> Vec<Arc<LiveFunction>> {
        let live = self.invoker.live();
        let mut functions: Vec<_> = live
            .functions()
            .filter(|f| app.is_none_or(|app| f.app == app))
            .cloned()
            .collect();
        functions.sort_by(|a, b| (&a.app, &a.name).cmp(&(&b.app, &b.name)));
        functions
    }

    /// Each running canary: its app, version and share of requests.
    pub fn canaries(&self) -> Vec<(String, u32, u8)> {
        let live = self.invoker.live();
        let mut canaries: Vec<_> = live
            .canaries()
            .map(|(app, c)| (app.clone(), c.version, c.plan.percent))
            .collect();
        canaries.sort();
        canaries
    }

    pub fn live_counts(&self) -> LiveCounts {
        let live = self.invoker.live();
        LiveCounts {
            functions: live.functions().count(),
            resident: live
                .functions()
                .filter(|f| f.function.is_resident())
                .count(),
            baseline: live
                .functions()
                .filter(|f| f.function.tier() == Some(Tier::Baseline))
                .count(),
        }
    }

    /// Invokes `function` on the admin API's behalf (trigger `api`) with an
    /// in-memory body; the answer carries the invocation id `id`.
    pub async fn invoke(
        &self,
        function: &LiveFunction,
        request: http::Request<Bytes>,
        id: &str,
    ) -> http::Response<ResponseBody> {
        self.invoker
            .invoke_buffered(function, request, id, Trigger::Api)
            .await
    }

    /// The ledger writer's counters, when metering is on.
    pub fn ledger_stats(&self) -> Option<&LedgerStats> {
        self.invoker.recorder().map(|r| r.stats())
    }

    /// Calls between functions refused so far.
    pub fn calls_refused(&self) -> u64 {
        self.invoker.calls_refused()
    }

    /// Cold and warm starts, evictions, reused instances.
    pub fn residency(&self) -> &ResidencyStats {
        self.runtime.residency()
    }

    /// Baseline compiles and tier-ups, node-wide.
    pub fn tier_stats(&self) -> &TierStats {
        self.runtime.tier_stats()
    }

    /// Optimized compiles queued or running in the background.
    pub fn tier_up_waiting(&self) -> usize {
        self.runtime.tier_up_waiting()
    }

    /// What functions did with their capabilities, node-wide.
    pub fn capability_stats(&self) -> &CapabilityStats {
        self.runtime.capability_stats()
    }
}
