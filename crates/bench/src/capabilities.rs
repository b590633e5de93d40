//! What granted capabilities cost from inside a function: key-value gets
//! and sets per second on each backend, and the latency a
//! `http://<function>.svc/` call adds over a direct gateway request.

use std::time::Duration;

use anyhow::Context;

use crate::load::{self, LoadResult, LoadSpec};
use crate::targets::{StratusNode, test_component};

/// Key-value throughput on one backend.
#[derive(Debug, Clone)]
pub struct KeyValueResult {
    pub backend: &'static str,
    /// Sequential operations inside one invocation, per second.
    pub set_in_function: f64,
    pub get_in_function: f64,
    /// Requests per second under load, each doing one get or one set.
    pub set_requests: LoadResult,
    pub get_requests: LoadResult,
}

/// The same function reached three ways.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// `GET /calls/target/ok`: the callee straight from the gateway.
    pub direct: LoadResult,
    /// `GET /calls/caller/hello`: the caller, making no call.
    pub caller_alone: LoadResult,
    /// `GET /calls/caller/call?url=http://target.svc/ok`: the caller
    /// calling the callee in process.
    pub through_svc: LoadResult,
}

fn caps_manifest(app: &str) -> anyhow::Result<String> {
    let caps = test_component("capabilities")?;
    let testbed = test_component("testbed")?;
    Ok(format!(
        "[app]\nname = \"{app}\"\n\n\
         [[function]]\nname = \"caller\"\ncomponent = \"{caps}\"\nroutes = [\"/{app}/caller/...\"]\n\
         keyvalue = [\"default\"]\nconfig = {{ role = \"bench\" }}\nallowed_outbound = [\"http://target.svc\"]\n\
         memory = \"16MiB\"\nmax_concurrency = 1000\nmax_outbound_requests = 1000\n\n\
         [[function]]\nname = \"target\"\ncomponent = \"{testbed}\"\nroutes = [\"/{app}/target/...\"]\n\
         memory = \"16MiB\"\nmax_concurrency = 1000\n",
        caps = caps.display(),
        testbed = testbed.display()
    ))
}

/// One GET, its body as text.
fn fetch(url: &str) -> anyhow::Result<String> {
    let response = reqwest::blocking::get(url).with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.text()?;
    anyhow::ensure!(status.is_success(), "GET {url}: {status} {body}");
    Ok(body)
}

/// Operations per second of `n` sequential operations in one invocation,
/// from the guest's own clock (best of three).
fn in_function(base: &str, op: &str, n: u64) -> anyhow::Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let ns: f64 = fetch(&format!("{base}/kvloop?bucket=default&op={op}&n={n}"))?
            .trim()
            .parse()
            .context("kvloop answers nanoseconds")?;
        best = best.min(ns);
    }
    Ok(n as f64 / (best / 1e9))
}

pub fn keyvalue(backend: &'static str, spec: &LoadSpec) -> anyhow::Result<KeyValueResult> {
    let flags: &[&str] = match backend {
        "redis" => &["--keyvalue", "redis"],
        _ => &[],
    };
    let node = StratusNode::start_empty(flags)?;
    node.deploy("kvbench", &caps_manifest("kvbench")?)?;
    let base = format!("{}/kvbench/caller", node.url);
    // Fills the 100 keys the gets read.
    fetch(&format!("{base}/kvloop?bucket=default&op=set&n=100"))?;
    let set_in_function = in_function(&base, "set", 2000)?;
    let get_in_function = in_function(&base, "get", 2000)?;
    let set_requests = load::run(&format!("{base}/kvloop?bucket=default&op=set&n=1"), spec)?;
    let get_requests = load::run(&format!("{base}/kvloop?bucket=default&op=get&n=1"), spec)?;
    Ok(KeyValueResult {
        backend,
        set_in_function,
        get_in_function,
        set_requests,
        get_requests,
    })
}

pub fn svc_calls(spec: &LoadSpec) -> anyhow::Result<CallResult> {
    let node = StratusNode::start_empty(&[])?;
    node.deploy("calls", &caps_manifest("calls")?)?;
    let url = |path: &str| format!("{}/calls/{path}", node.url);
    // The call must work before it is measured.
    let answer = fetch(&url("caller/call?url=http://target.svc/ok"))?;
    anyhow::ensure!(answer == "200 testbed", "the .svc call answered {answer:?}");
    Ok(CallResult {
        direct: load::run(&url("target/ok"), spec)?,
        caller_alone: load::run(&url("caller/hello"), spec)?,
        through_svc: load::run(&url("caller/call?url=http://target.svc/ok"), spec)?,
    })
}

/// The load spec for unloaded latency: one connection.
pub fn one_at_a_time(spec: &LoadSpec) -> LoadSpec {
    LoadSpec {
        connections: 1,
        threads: 1,
        duration: spec.duration.max(Duration::from_secs(2)),
        warmup: spec.warmup,
    }
}
