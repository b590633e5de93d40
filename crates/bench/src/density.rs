//! Density: how a node copes with many deployed functions.
//!
//! Deploys N apps of one function each through the admin API, timing every
//! deploy; reads the node's RSS once they are deployed and again after they
//! have all scaled to zero; then times requests to functions picked at
//! random (mostly cold starts, as with real long-tail traffic).

use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;

use crate::targets::{StratusNode, hello_component};

pub struct DensityResult {
    pub functions: usize,
    pub deploy_total: Duration,
    pub deploy_p50: Duration,
    pub deploy_p99: Duration,
    pub rss_deployed: u64,
    pub rss_idle: u64,
    pub request_p50: Duration,
    pub request_p99: Duration,
    pub errors: usize,
}

/// How long functions may idle before scaling to zero in this benchmark.
const IDLE_TTL: &str = "3s";

pub fn run(functions: usize, requests: usize) -> anyhow::Result<DensityResult> {
    let node = StratusNode::start_empty(&["--idle-ttl", IDLE_TTL])?;
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    let mut deploys = deploy_hello_apps(&node, &client, functions)?;
    let deploy_total = started.elapsed();
    let rss_deployed = node.rss()?;
    // Let every function go idle and scale to zero.
    std::thread::sleep(Duration::from_secs(8));
    let rss_idle = node.rss()?;

    let mut rng = rand::rng();
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    for _ in 0..requests {
        let k = rng.random_range(0..functions);
        let t = Instant::now();
        match client.get(format!("{}/d{k}", node.url)).send() {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes();
            }
            _ => errors += 1,
        }
        latencies.push(t.elapsed());
    }
    deploys.sort_unstable();
    latencies.sort_unstable();
    let at = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    Ok(DensityResult {
        functions,
        deploy_total,
        deploy_p50: at(&deploys, 0.5),
        deploy_p99: at(&deploys, 0.99),
        rss_deployed,
        rss_idle,
        request_p50: at(&latencies, 0.5),
        request_p99: at(&latencies, 0.99),
        errors,
    })
}

/// Deploys `functions` apps `d0`, `d1`, … of one hello function each, at
/// `/d<i>`, through the admin API: how long each deploy took.
pub fn deploy_hello_apps(
    node: &StratusNode,
    client: &reqwest::blocking::Client,
    functions: usize,
) -> anyhow::Result<Vec<Duration>> {
    let component = std::fs::read(hello_component()?)?;
    let mut deploys = Vec::with_capacity(functions);
    for i in 0..functions {
        let manifest = format!(
            "[app]\nname = \"d{i}\"\n\n[[function]]\nname = \"d{i}\"\ncomponent = \"hello.wasm\"\nroutes = [\"/d{i}\"]\nmemory = \"16MiB\"\n"
        );
        let t = Instant::now();
        node.post_app(client, manifest, "hello.wasm", component.clone())
            .with_context(|| format!("deploy {i}"))?;
        deploys.push(t.elapsed());
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} functions deployed", i + 1);
        }
    }
    Ok(deploys)
}
