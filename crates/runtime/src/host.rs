//! The per-instance host state: what one request's `Store` holds.
//!
//! Built fresh for every invocation and dropped with it, so nothing a guest
//! does (environment, open resources, memory) outlives its request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::capture::CapturedOutput;

pub struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: MemoryCap,
    hooks: DenyOutbound,
}

impl InstanceState {
    pub(crate) fn new(
        env: &[(String, String)],
        memory_cap: u64,
        peak_memory: Arc<AtomicU64>,
        output: &CapturedOutput,
    ) -> Self {
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
            limits: MemoryCap::new(memory_cap, peak_memory),
            hooks: DenyOutbound,
        }
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
/// records the peak, which is what an invocation is billed for; the peak is
/// shared because the store lives in the invocation's task.
pub(crate) struct MemoryCap {
    limit: u64,
    pub(crate) exceeded: bool,
    /// Sum of the sizes of the instance's linear memories at their largest.
    peak: Arc<AtomicU64>,
    current: u64,
}

impl MemoryCap {
    fn new(limit: u64, peak: Arc<AtomicU64>) -> Self {
        MemoryCap {
            limit,
            exceeded: false,
            peak,
            current: 0,
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
        self.peak.fetch_max(self.current, Ordering::Relaxed);
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

/// Outbound HTTP is denied until a function is granted `allowed_outbound`;
/// the guest sees the standard `HTTP-request-denied` error code.
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        tracing::info!("outbound HTTP request denied: the function has no `allowed_outbound`");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
