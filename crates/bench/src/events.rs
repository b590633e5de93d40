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
    /// Publish-to-handled latency with one event in flight at a time.
    pub idle_p50: Duration,
    pub idle_p99: Duration,
}

/// Events sent one at a time for the unloaded latency.
const IDLE_EVENTS: usize = 300;

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
        all_handled(&client, &node.admin, events).await?;
        let handled = started.elapsed();
        let sample: Vec<String> = ids
            .iter()
            .step_by((events / 1000).max(1))
            .cloned()
            .collect();
        let (latency_p50, latency_p99) =
            percentiles(latencies(&client, &node.admin, &sample).await?);

        // Unloaded: one event at a time, each waited for before the next.
        let mut idle = Vec::with_capacity(IDLE_EVENTS);
        for _ in 0..IDLE_EVENTS {
            let response = client
                .post(&url)
                .bearer_auth("bench")
                .body("{}")
                .send()
                .await?;
            let accepted: serde_json::Value = response.json().await?;
            let id = accepted["id"].as_str().unwrap_or_default().to_string();
            loop {
                let event = status(&client, &node.admin, &id).await?;
                if event["state"] == "succeeded" {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            idle.push(id);
        }
        let (idle_p50, idle_p99) = percentiles(latencies(&client, &node.admin, &idle).await?);
        Ok(EventsResult {
            events,
            accept_rate: events as f64 / accepted.as_secs_f64(),
            end_to_end_rate: events as f64 / handled.as_secs_f64(),
            latency_p50,
            latency_p99,
            idle_p50,
            idle_p99,
        })
    })
}

/// Waits (up to 5 minutes) until the node has handled `events` events.
async fn all_handled(client: &reqwest::Client, admin: &str, events: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = succeeded(client, admin).await?;
        if done >= events as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {done} of {events} events were handled in time");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

async fn status(
    client: &reqwest::Client,
    admin: &str,
    id: &str,
) -> anyhow::Result<serde_json::Value> {
    Ok(client
        .get(format!("{admin}/v1/events/{id}"))
        .bearer_auth("bench")
        .send()
        .await?
        .json()
        .await?)
}

/// From the moment each event was durably accepted to the moment its
/// handler's 2xx was recorded.
async fn latencies(
    client: &reqwest::Client,
    admin: &str,
    ids: &[String],
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(ids.len());
    for id in ids {
        let event = status(client, admin, id).await?;
        let time = |key: &str| {
            humantime::parse_rfc3339(event[key].as_str().unwrap_or_default())
                .with_context(|| format!("event {id} has no {key}"))
        };
        let (created, updated) = (time("created_at")?, time("updated_at")?);
        latencies.push(updated.duration_since(created).unwrap_or_default());
    }
    Ok(latencies)
}

fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (at(0.5), at(0.99))
}

/// Events published on a NATS subject that the hello function consumes with
/// a `{ nats = … }` trigger: broker → durable queue → handler, without the
/// admin API's HTTP in the way.
pub fn run_nats(events: usize) -> anyhow::Result<EventsResult> {
    let subject = "stratus.bench.events";
    let node = StratusNode::start_with(
        Variant {
            reuse: 1,
            metering: true,
        },
        &format!("triggers = [{{ nats = \"{subject}\" }}]"),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready: serde_json::Value = client
                .get(format!("{}/readyz", node.admin))
                .send()
                .await?
                .json()
                .await?;
            if ready["triggers"][0]["state"] == "running" {
                break;
            }
            if Instant::now() > deadline {
                bail!("the NATS trigger never ran: {ready}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
        let started = Instant::now();
        for i in 0..events {
            nats.publish(subject, format!("{{\"n\":{i}}}").into())
                .await?;
            // Stay under the subscription's buffer: core NATS drops what a
            // slow consumer cannot take, and this measures delivery, not loss.
            if i % 5000 == 4999 {
                while succeeded(&client, &node.admin).await? + 40_000 < i as u64 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        nats.flush().await?;
        let published = started.elapsed();
        all_handled(&client, &node.admin, events).await?;
        let handled = started.elapsed();
        let listed: serde_json::Value = client
            .get(format!(
                "{}/v1/functions/hello/events?limit=1000",
                node.admin
            ))
            .bearer_auth("bench")
            .send()
            .await?
            .json()
            .await?;
        let sample: Vec<String> = listed["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let (latency_p50, latency_p99) =
            percentiles(latencies(&client, &node.admin, &sample).await?);
        Ok(EventsResult {
            events,
            accept_rate: events as f64 / published.as_secs_f64(),
            end_to_end_rate: events as f64 / handled.as_secs_f64(),
            latency_p50,
            latency_p99,
            idle_p50: Duration::ZERO,
            idle_p99: Duration::ZERO,
        })
    })
}
