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
        InstanceState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
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
        let (current, desired) = (current as u64, desired as u64);
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.current = self.current + desired - current.min(desired);
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
