//! Events through the durable queue, end to end: async invocations of the
//! hello function submitted over the admin API, delivered as CloudEvents.
//!
//! Measures how fast events are accepted (durably queued), how fast they
//! are handled end to end (first submit to last success, every event
//! checked), and for a sample the latency from acceptance to the handler's
//! answer being recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use crate::targets::{StratusNode, Variant};

pub struct EventsResult {
    pub events: usize,
    pub accept_rate: f64,
    pub end_to_end_rate: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    /// Publish-to-handled latency with one event in flight at a time, over
    /// `idle_events` events.
    pub idle_events: usize,
    pub idle_p50: Duration,
    pub idle_p99: Duration,
    /// Submissions answered 503 or 429 and sent again.
    pub refused: usize,
    /// `stratus_events_succeeded_total` of each node once all were handled
    /// (their sum exceeds `events` if an event was handled twice).
    pub succeeded: Vec<u64>,
}

/// Events sent one at a time for the unloaded latency, unless
/// `IDLE_BUDGET` runs out first.
const IDLE_EVENTS: usize = 300;
const IDLE_BUDGET: Duration = Duration::from_secs(120);

/// How long the benchmark waits for one event to succeed: longer than
/// the cluster queue's ack wait (30 s), after which JetStream offers again
/// a message that a node pulled but neither leased nor put off.
const EVENT_WAIT: Duration = Duration::from_secs(60);

/// The admin token of every node the benchmark starts.
const TOKEN: &str = "bench";

/// How often a submission answered 503 or 429 is sent again (50 ms apart)
/// before the benchmark gives up.
const RETRIES: usize = 200;

pub fn run(events: usize, connections: usize) -> anyhow::Result<EventsResult> {
    let node = StratusNode::start(Variant {
        reuse: 1,
        metering: true,
        quotas: false,
        traced: false,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(
        &reqwest::Client::new(),
        std::slice::from_ref(&node.admin),
        events,
        connections,
    ))
}

/// The whole measurement against nodes already serving the hello function
/// (one node, or the nodes of a cluster): `events` async invocations from
/// `connections` clients, event `n` through `admins[n % len]`, timed until
/// accepted and until handled (the nodes' succeeded counters add up to the
/// count, and the API has every event succeeded: the last success recorded
/// ends the time if it came later); the latency of 1,000 of them; then
/// `IDLE_EVENTS` one at a time (within `IDLE_BUDGET`), also taking turns.
pub async fn measure(
    client: &reqwest::Client,
    admins: &[String],
    events: usize,
    connections: usize,
) -> anyhow::Result<EventsResult> {
    let (started, wall) = (Instant::now(), SystemTime::now());
    let (ids, refused) = submit_all(client, admins, events, connections).await?;
    let accepted = started.elapsed();
    let succeeded = all_handled(client, admins, events).await?;
    let counted = started.elapsed();
    let times = settled(client, admins, &ids, connections).await?;
    let last = times.iter().map(|&(_, done)| done).max().unwrap_or(wall);
    let handled = counted.max(last.duration_since(wall).unwrap_or_default());
    let sample: Vec<_> = times
        .iter()
        .step_by((events / 1000).max(1))
        .copied()
        .collect();
    let (latency_p50, latency_p99) = percentiles(latencies(&sample));
    let idle = one_at_a_time(client, admins, IDLE_EVENTS, IDLE_BUDGET).await?;
    let idle_times = settled(client, admins, &idle, 1).await?;
    let (idle_p50, idle_p99) = percentiles(latencies(&idle_times));
    Ok(EventsResult {
        events,
        accept_rate: events as f64 / accepted.as_secs_f64(),
        end_to_end_rate: events as f64 / handled.as_secs_f64(),
        latency_p50,
        latency_p99,
        idle_events: idle.len(),
        idle_p50,
        idle_p99,
        refused,
        succeeded,
    })
}

/// `POST …/invocations?mode=async` of the hello function on `admin`.
fn submit_url(admin: &str) -> String {
    format!("{admin}/v1/functions/hello/invocations?mode=async&path=/hello")
}

/// Submits `events` async invocations from `connections` concurrent
/// clients, event `n` through `admins[n % admins.len()]`; answers their ids
/// and how many answers were 503 or 429 (sent again after 50 ms).
async fn submit_all(
    client: &reqwest::Client,
    admins: &[String],
    events: usize,
    connections: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let urls: Arc<Vec<String>> = Arc::new(admins.iter().map(|a| submit_url(a)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, urls, next) = (client.clone(), urls.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ids, mut refused) = (Vec::new(), 0);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    break;
                }
                let (id, retried) = submit(&client, &urls[n % urls.len()]).await?;
                ids.push(id);
                refused += retried;
            }
            anyhow::Ok((ids, refused))
        }));
    }
    let (mut ids, mut refused) = (Vec::with_capacity(events), 0);
    for task in tasks {
        let (some, retried) = task.await??;
        ids.extend(some);
        refused += retried;
    }
    Ok((ids, refused))
}

/// Submits one async invocation to `url`, sending it again while the node
/// answers 503 (its queue out of reach) or 429: its id and those retries.
async fn submit(client: &reqwest::Client, url: &str) -> anyhow::Result<(String, usize)> {
    for retried in 0..=RETRIES {
        let response = client
            .post(url)
            .bearer_auth(TOKEN)
            .body("{}")
            .send()
            .await?;
        match response.status().as_u16() {
            202 => {
                let accepted: serde_json::Value = response.json().await?;
                let id = accepted["id"].as_str().context("202 without an id")?;
                return Ok((id.to_string(), retried));
            }
            503 | 429 => tokio::time::sleep(Duration::from_millis(50)).await,
            status => bail!("submit answered {status}: {}", response.text().await?),
        }
    }
    bail!("submit answered 503 or 429 {} times in a row", RETRIES + 1)
}

/// `n` events one at a time, event `i` through `admins[i % len]`, each
/// waited for (through the node that took it) before the next; no new one
/// once `budget` has passed. Their ids.
async fn one_at_a_time(
    client: &reqwest::Client,
    admins: &[String],
    n: usize,
    budget: Duration,
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        if started.elapsed() > budget {
            break;
        }
        let admin = &admins[i % admins.len()];
        let (id, _) = submit(client, &submit_url(admin)).await?;
        succeeded_event(client, admin, &id).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Waits (up to 5 minutes) until the nodes have handled `events` events
/// between them; answers each node's count.
async fn all_handled(
    client: &reqwest::Client,
    admins: &[String],
    events: usize,
) -> anyhow::Result<Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut counts = Vec::with_capacity(admins.len());
        for admin in admins {
            counts.push(succeeded(client, admin).await?);
        }
        let done: u64 = counts.iter().sum();
        if done >= events as u64 {
            return Ok(counts);
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
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?)
}

/// Asks `admin` about event `id` until it has succeeded (up to
/// `EVENT_WAIT`): its status then.
async fn succeeded_event(
    client: &reqwest::Client,
    admin: &str,
    id: &str,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + EVENT_WAIT;
    loop {
        let event = status(client, admin, id).await?;
        if event["state"] == "succeeded" {
            return Ok(event);
        }
        if Instant::now() > deadline {
            bail!("event {id} has not succeeded within {EVENT_WAIT:?}: {event}");
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// When each event was durably accepted and when its handler's 2xx was
/// recorded (millisecond resolution), asked from `connections` clients,
/// event `i` through `admins[i % len]`, waiting for any not settled yet
/// (the succeeded counters of a cluster count an event handled twice).
async fn settled(
    client: &reqwest::Client,
    admins: &[String],
    ids: &[String],
    connections: usize,
) -> anyhow::Result<Vec<(SystemTime, SystemTime)>> {
    let ids: Arc<Vec<(String, String)>> = Arc::new(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (admins[i % admins.len()].clone(), id.clone()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (client, ids, next) = (client.clone(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while let Some((admin, id)) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                let event = succeeded_event(&client, admin, id).await?;
                let time = |key: &str| {
                    humantime::parse_rfc3339(event[key].as_str().unwrap_or_default())
                        .with_context(|| format!("event {id} has no {key}"))
                };
                times.push((time("created_at")?, time("updated_at")?));
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::with_capacity(ids.len());
    for task in tasks {
        times.extend(task.await??);
    }
    Ok(times)
}

fn latencies(times: &[(SystemTime, SystemTime)]) -> Vec<Duration> {
    times
        .iter()
        .map(|(created, done)| done.duration_since(*created).unwrap_or_default())
        .collect()
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
            quotas: false,
            traced: false,
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
        let succeeded = all_handled(&client, std::slice::from_ref(&node.admin), events).await?;
        let handled = started.elapsed();
        let listed: serde_json::Value = client
            .get(format!(
                "{}/v1/functions/hello/events?limit=1000",
                node.admin
            ))
            .bearer_auth(TOKEN)
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
        let times = settled(&client, std::slice::from_ref(&node.admin), &sample, 32).await?;
        let (latency_p50, latency_p99) = percentiles(latencies(&times));
        Ok(EventsResult {
            events,
            accept_rate: events as f64 / published.as_secs_f64(),
            end_to_end_rate: events as f64 / handled.as_secs_f64(),
            latency_p50,
            latency_p99,
            idle_events: 0,
            idle_p50: Duration::ZERO,
            idle_p99: Duration::ZERO,
            refused: 0,
            succeeded,
        })
    })
}
