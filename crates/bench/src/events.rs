//! Events through the durable queue, end to end: async invocations of the
//! hello function submitted over the admin API, delivered as CloudEvents.
//!
//! Measures how fast events are accepted (durably queued), how fast they
//! are handled end to end (first submit to last success), and for a sample
//! the latency from acceptance to the handler's answer being recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::targets::{StratusNode, Variant};

pub struct EventsResult {
    pub events: usize,
    pub accept_rate: f64,
    pub end_to_end_rate: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
}

pub fn run(events: usize, connections: usize) -> anyhow::Result<EventsResult> {
    let node = StratusNode::start(Variant {
        reuse: 1,
        metering: true,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = format!(
            "{}/v1/functions/hello/invocations?mode=async&path=/hello",
            node.admin
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (client, url, next) = (client.clone(), url.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < events {
                    let response = client
                        .post(&url)
                        .bearer_auth("bench")
                        .body("{}")
                        .send()
                        .await?;
                    if response.status() != 202 {
                        bail!("submit answered {}", response.status());
                    }
                    let accepted: serde_json::Value = response.json().await?;
                    ids.push(accepted["id"].as_str().unwrap_or_default().to_string());
                }
                anyhow::Ok(ids)
            }));
        }
        let mut ids = Vec::with_capacity(events);
        for task in tasks {
            ids.extend(task.await??);
        }
        let accepted = started.elapsed();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let done = succeeded(&client, &node.admin).await?;
            if done >= events as u64 {
                break;
            }
            if Instant::now() > deadline {
                bail!("only {done} of {events} events were handled in time");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let handled = started.elapsed();
        let mut latencies = Vec::new();
        for id in ids.iter().step_by((events / 1000).max(1)) {
            let event: serde_json::Value = client
                .get(format!("{}/v1/events/{id}", node.admin))
                .bearer_auth("bench")
                .send()
                .await?
                .json()
                .await?;
            let time = |key: &str| {
                humantime::parse_rfc3339(event[key].as_str().unwrap_or_default())
                    .with_context(|| format!("event {id} has no {key}"))
            };
            let (created, updated) = (time("created_at")?, time("updated_at")?);
            latencies.push(updated.duration_since(created).unwrap_or_default());
        }
        latencies.sort_unstable();
        let at =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        Ok(EventsResult {
            events,
            accept_rate: events as f64 / accepted.as_secs_f64(),
            end_to_end_rate: events as f64 / handled.as_secs_f64(),
            latency_p50: at(0.5),
            latency_p99: at(0.99),
        })
    })
}

async fn succeeded(client: &reqwest::Client, admin: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{admin}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("stratus_events_succeeded_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no stratus_events_succeeded_total in /metrics")
}
