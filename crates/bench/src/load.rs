//! A closed-loop HTTP/1.1 load generator in the manner of `wrk`: a fixed
//! number of keep-alive connections, each sending its next request as soon
//! as the previous answer has been read in full.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub threads: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
}

pub fn run(url: &str, spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    let uri: hyper::Uri = url.parse().context("target URL")?;
    let authority = uri.authority().context("URL without host")?.to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(spec.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let start = Instant::now();
        let measure_from = start + spec.warmup;
        let end = measure_from + spec.duration;
        let mut tasks = Vec::new();
        for _ in 0..spec.connections {
            let (uri, authority) = (uri.clone(), authority.clone());
            tasks.push(tokio::spawn(connection(uri, authority, measure_from, end)));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut l, e) = task.await??;
            latencies.append(&mut l);
            errors += e;
        }
        latencies.sort_unstable();
        let pct = |p: f64| {
            if latencies.is_empty() {
                0.0
            } else {
                let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
                f64::from(latencies[i]) / 1000.0
            }
        };
        Ok(LoadResult {
            rps: latencies.len() as f64 / spec.duration.as_secs_f64(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            errors,
        })
    })
}

/// One connection's loop; returns latencies (ns, as u32) measured after
/// the warm-up, and how many answers were not 200.
async fn connection(
    uri: hyper::Uri,
    authority: String,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<u32>, u64)> {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    let addr = authority.clone();
    let stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = hyper::Request::get(&path)
            .header(hyper::header::HOST, &authority)
            .body(Empty::<Bytes>::new())?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let ok = response.status() == 200;
        response.into_body().collect().await?;
        let took = sent.elapsed();
        if sent >= measure_from {
            latencies.push(u32::try_from(took.as_nanos()).unwrap_or(u32::MAX));
            if !ok {
                errors += 1;
            }
        }
    }
    Ok((latencies, errors))
}
