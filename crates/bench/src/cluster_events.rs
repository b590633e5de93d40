//! Async events through a cluster's JetStream queue (issue 13), against a
//! node on its own (SQLite) in the same run.
//!
//! First a node without `--cluster` serving the hello function takes the
//! events of `stratus-bench events`; it is stopped, then three NATS servers
//! and three nodes (`--cluster-replicas 3`) start, hello is deployed
//! through node 1, and the same count of async invocations is submitted
//! round-robin over the three admin APIs, with the same clients and code
//! (`events::measure`). Handled means the nodes' `stratus_events_succeeded_total`
//! add up to the count.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::cluster::Cluster;
use crate::events::{self, EventsResult};
use crate::fmt_us;
use crate::targets::{StratusNode, Variant, hello_component};

pub struct Settings {
    pub nats_server: Option<PathBuf>,
    pub events: usize,
    pub connections: usize,
}

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // No request of the benchmark may hang it for good.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let (events, connections) = (settings.events, settings.connections);

    eprintln!("cluster-events: {events} events to a node on its own (SQLite)…");
    let alone = {
        let node = StratusNode::start(Variant {
            reuse: 1,
            metering: true,
            quotas: false,
            traced: false,
        })?;
        runtime.block_on(events::measure(
            &client,
            std::slice::from_ref(&node.admin),
            events,
            connections,
        ))?
    };

    let cluster = Cluster::start(settings.nats_server.as_deref(), &runtime)?;
    cluster.nodes[0].deploy("hello", &hello_manifest()?)?;
    runtime.block_on(every_node_serves(&client, &cluster.nodes))?;
    eprintln!("cluster-events: {events} events round-robin over the 3 nodes (JetStream)…");
    let admins: Vec<String> = cluster.nodes.iter().map(|n| n.admin.clone()).collect();
    let clustered = runtime.block_on(events::measure(&client, &admins, events, connections))?;

    println!(
        "`{}` ({} cores); {}; hello (fresh instance per event); {connections} concurrent clients submitting `POST /v1/functions/hello/invocations?mode=async` (202 once stored), event n through node n mod 3 in the cluster; then up to 300 events one at a time (at most 120 s).\n",
        cluster.bin.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        cluster.version,
    );
    println!(
        "| queue | events | accepted | handled end to end | burst: accept → handled p50 / p99 | one at a time: events, p50 / p99 | 503/429 retried | handled by each node |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, r) in [
        (
            "3 nodes, JetStream R3 (3 NATS servers), round-robin",
            &clustered,
        ),
        ("1 node on its own, SQLite (no `--cluster`)", &alone),
    ] {
        println!("{}", row(name, r));
    }
    println!(
        "\nThe cluster: {:.2}× the single node's accepted/s, {:.2}× its handled/s.",
        clustered.accept_rate / alone.accept_rate.max(f64::MIN_POSITIVE),
        clustered.end_to_end_rate / alone.end_to_end_rate.max(f64::MIN_POSITIVE),
    );
    Ok(())
}

fn row(name: &str, r: &EventsResult) -> String {
    let ms = |d: Duration| fmt_us(d.as_secs_f64() * 1e6);
    let per_node: Vec<String> = r.succeeded.iter().map(u64::to_string).collect();
    format!(
        "| {name} | {} | {:.0}/s | {:.0}/s | {} / {} | {}: {} / {} | {} | {} |",
        r.events,
        r.accept_rate,
        r.end_to_end_rate,
        ms(r.latency_p50),
        ms(r.latency_p99),
        r.idle_events,
        ms(r.idle_p50),
        ms(r.idle_p99),
        r.refused,
        per_node.join(" / "),
    )
}

/// The hello app as `stratus-bench events` deploys it (a fresh instance
/// per event, metering on).
fn hello_manifest() -> anyhow::Result<String> {
    Ok(format!(
        "[app]\nname = \"hello\"\n\n[[function]]\nname = \"hello\"\ncomponent = \"{}\"\nroutes = [\"/hello\"]\nmemory = \"16MiB\"\nreuse = 1\n",
        hello_component()?.display()
    ))
}

/// Waits (up to 30 s) until every node's gateway answers `/hello` with 200,
/// so every node has the function live and takes its events.
async fn every_node_serves(client: &reqwest::Client, nodes: &[StratusNode]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in nodes {
        let url = format!("{}/hello", node.url);
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == 200
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} did not serve hello within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}
