//! The per-instance host state: what one request's `Store` holds.
//!
//! Built fresh for every instance and dropped with it. By default an
//! instance serves one request, so nothing a guest does (environment, open
//! resources, memory) outlives it; a function with `reuse = N` opts into
//! keeping one instance, and this state, for up to N requests in a row.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::{CapabilityStates, CapabilityStats, Grants};
use crate::capture::CapturedOutput;
use crate::meter::Meter;
use crate::services::OutboundHooks;

/// The most one `wasi:http` `fields` (a set of headers a guest builds) may
/// hold, roughly in bytes. Eight times what HTTP servers usually accept for
/// a whole header section, so no real request is refused.
pub const FIELDS_LIMIT: usize = 64 * 1024;

/// The least host memory a function's guest may make the host hold for it,
/// whatever its (possibly small) `memory` cap.
pub const MIN_HOST_BUDGET: u64 = 64 << 20;

/// How many host resources (handles: headers, bodies, streams, requests,
/// pollables, …) one instance may hold at once. Host memory a guest causes
/// is bounded through them: each handle holds at most about
/// [`FIELDS_LIMIT`] bytes (bodies and outbound data are bounded by their own
/// limits), so the handles together stay within the function's host budget —
/// its `memory` cap, or [`MIN_HOST_BUDGET`] if that is larger. A guest past
/// it gets an error naming the limit instead of growing the node.
pub fn max_host_resources(memory_cap: u64) -> usize {
    let budget = memory_cap.max(MIN_HOST_BUDGET);
    usize::try_from(budget / FIELDS_LIMIT as u64).unwrap_or(usize::MAX)
}

/// What a handler that returned left undone (see
/// [`InstanceState::unfinished_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfinished {
    /// It never set its response.
    Response,
    /// It set its response but left a body (the response's, or an
    /// outbound request's) unfinished.
    Body,
}

pub struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: MemoryCap,
    /// Where the guest's stdout and stderr go; taken after each invocation.
    pub(crate) output: CapturedOutput,
    /// When the current invocation must end.
    pub(crate) deadline: Instant,
    /// Where the guest's outbound HTTP requests go.
    hooks: OutboundHooks,
    /// Key-value, config and the other granted capabilities.
    pub(crate) capabilities: CapabilityStates,
}

impl InstanceState {
    pub(crate) fn new(
        env: &[(String, String)],
        memory_cap: u64,
        output_capacity: usize,
        hooks: OutboundHooks,
        grants: &Arc<Grants>,
        stats: &Arc<CapabilityStats>,
    ) -> Self {
        let output = CapturedOutput::new(output_capacity);
        let mut wasi = WasiCtx::builder();
        wasi.envs(env)
            .stdout(output.stdout())
            .stderr(output.stderr())
            // Deny by default: no address is reachable and names do not
            // resolve. Outbound HTTP goes through `wasi:http` instead.
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_ip_name_lookup(false);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELDS_LIMIT);
        let mut table = ResourceTable::new();
        table.set_max_capacity(max_host_resources(memory_cap));
        InstanceState {
            wasi: wasi.build(),
            http,
            table,
            limits: MemoryCap::new(memory_cap),
            output,
            deadline: Instant::now(),
            hooks,
            capabilities: CapabilityStates::new(grants, stats),
        }
    }

    /// Points the instance at a new invocation: its deadline and its meter
    /// (which starts from the memory the instance already has).
    pub(crate) fn begin(&mut self, deadline: Instant, meter: Arc<Meter>) {
        self.deadline = deadline;
        meter.memory_at(self.limits.current);
        self.hooks.set_meter(Some(meter.clone()));
        self.limits.meter = Some(meter);
    }

    /// Reports to the meter the host memory the guest holds right now: the
    /// headers of every `fields` it keeps (other handles hold bounded
    /// buffers of their own limits). Sampled at each epoch tick while the
    /// guest runs and when it ends, so a short burst between two ticks can
    /// be missed, never overstated.
    pub(crate) fn sample_host_memory(&mut self) {
        let Some(meter) = &self.limits.meter else {
            return;
        };
        let mut bytes = 0_u64;
        for entry in self.table.iter_mut() {
            if let Some(fields) = entry.downcast_ref::<wasmtime_wasi_http::FieldMap>() {
                bytes += fields
                    .iter()
                    .map(|(name, value)| (name.as_str().len() + value.len()) as u64)
                    .sum::<u64>();
            }
        }
        meter.host_memory_at(bytes);
    }

    /// What the guest left of its request when its handler returned, if it
    /// left a client waiting. In WASI 0.2 a guest runs only inside
    /// `handle`, so a response outparam or an outgoing body still in the
    /// table then will never be set or finished: the client waits on it
    /// until the instance is dropped. A fresh instance is dropped at once;
    /// a reusable one must be too, not kept idle with the client hanging.
    pub(crate) fn unfinished_request(&mut self) -> Option<Unfinished> {
        use wasmtime_wasi_http::p2::body::HostOutgoingBody;
        use wasmtime_wasi_http::p2::types::HostResponseOutparam;
        let mut unfinished = None;
        for entry in self.table.iter_mut() {
            if entry.is::<HostResponseOutparam>() {
                return Some(Unfinished::Response);
            }
            if entry.is::<HostOutgoingBody>() {
                unfinished = Some(Unfinished::Body);
            }
        }
        unfinished
    }

    /// Detaches the invocation's meter, so a reused instance does not keep
    /// the previous invocation from being reported.
    pub(crate) fn end(&mut self) {
        self.hooks.set_meter(None);
        self.limits.meter = None;
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Caps one instance's linear memory at the function's `memory` setting and
/// remembers whether the cap was hit, so a trap that follows can be reported
/// as "out of memory" rather than as an anonymous `unreachable`. It also
/// reports growth to the invocation's meter: peak memory is what an
/// invocation is billed for.
pub(crate) struct MemoryCap {
    limit: u64,
    pub(crate) exceeded: bool,
    /// Sum of the sizes of the instance's linear memories now.
    current: u64,
    meter: Option<Arc<Meter>>,
}

impl MemoryCap {
    fn new(limit: u64) -> Self {
        MemoryCap {
            limit,
            exceeded: false,
            current: 0,
            meter: None,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The cap is on the sum of the instance's memories: a component
        // with several cannot have the cap for each.
        let (current, desired) = (current as u64, desired as u64);
        let total = (self.current + desired).saturating_sub(current);
        if total > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.current = total;
        if let Some(meter) = &self.meter {
            meter.memory_at(self.current);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond
        // any real program and bounds the host memory they can take.
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_is_on_the_sum_of_the_memories() {
        let mut cap = MemoryCap::new(10 << 20);
        assert!(cap.memory_growing(0, 6 << 20, None).unwrap_or(false));
        // A second memory of 6 MiB would pass a per-memory cap of 10 MiB.
        assert!(!cap.memory_growing(0, 6 << 20, None).unwrap_or(true));
        assert!(cap.exceeded);
        assert!(cap.memory_growing(0, 4 << 20, None).unwrap_or(false));
        // The first memory grows by one more byte's page: over the sum.
        assert!(
            !cap.memory_growing(6 << 20, (6 << 20) + 65536, None)
                .unwrap_or(true)
        );
        assert_eq!(cap.current, 10 << 20);
    }

    #[test]
    fn host_resources_are_bounded_by_the_memory_cap_or_the_minimum_budget() {
        assert_eq!(max_host_resources(16 << 20), (64 << 20) / FIELDS_LIMIT);
        assert_eq!(max_host_resources(256 << 20), (256 << 20) / FIELDS_LIMIT);
        // Every handle at its fullest still fits the budget.
        let cap = 128_u64 << 20;
        assert!(max_host_resources(cap) as u64 * FIELDS_LIMIT as u64 <= cap);
    }
}
