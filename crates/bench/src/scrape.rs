//! Scrape: what `/metrics` costs with many functions, each with series of
//! its own (issue 15: under 50 ms and 2 MB with 1,000 functions).
//!
//! Deploys N hello apps, invokes every function `calls` times through the
//! gateway so each has its series (a duration histogram among them), then
//! times scrapes of `/metrics` in both formats as Prometheus would make
//! them, one after another.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::density::deploy_hello_apps;
use crate::targets::StratusNode;

pub struct ScrapeResult {
    pub functions: usize,
    pub format: &'static str,
    pub bytes: usize,
    pub lines: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// What Prometheus sends when it scrapes, and what curl sends.
const FORMATS: [(&str, &str); 2] = [
    (
        "OpenMetrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    ),
    ("classic", "text/plain;version=0.0.4"),
];

pub fn run(functions: usize, scrapes: usize) -> anyhow::Result<Vec<ScrapeResult>> {
    let node = StratusNode::start_empty(&[])?;
    let client = reqwest::blocking::Client::new();
    deploy_hello_apps(&node, &client, functions)?;
    for i in 0..functions {
        let response = client.get(format!("{}/d{i}", node.url)).send()?;
        if !response.status().is_success() {
            bail!("/d{i} answered {}", response.status());
        }
    }
    let mut results = Vec::new();
    for (format, accept) in FORMATS {
        let mut times = Vec::with_capacity(scrapes);
        let mut body = String::new();
        for _ in 0..scrapes {
            let t = Instant::now();
            body = client
                .get(format!("{}/metrics", node.admin))
                .header("accept", accept)
                .send()?
                .text()?;
            times.push(t.elapsed());
        }
        let histograms = body
            .lines()
            .filter(|l| l.starts_with("stratus_function_duration_seconds_count{"))
            .count();
        if histograms < functions {
            bail!("only {histograms} of {functions} functions have a duration histogram");
        }
        times.sort_unstable();
        let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        results.push(ScrapeResult {
            functions,
            format,
            bytes: body.len(),
            lines: body.lines().count(),
            p50: at(0.5),
            p99: at(0.99),
            max: times[times.len() - 1],
        });
    }
    Ok(results)
}
