//! Event sources besides HTTP and the admin API: cron schedules, NATS
//! subjects, JetStream consumers and MQTT topics.
//!
//! Each trigger of each live function runs as its own task, started and
//! stopped as deploys change the live set. Every source ends in the same
//! place — the function's durable queue, from which the dispatcher delivers
//! a CloudEvent — except JetStream, whose own stream is durable: its
//! messages are delivered directly and acknowledged only after a 2xx, so
//! the stream redelivers what failed. A broker that is down or goes away is
//! retried with backoff and reported through [`Health`]; HTTP serving never
//! waits for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use stratus_events::Dispatcher;
use stratus_invoke::Invoker;
use stratus_manifest::TriggerSpec;
use stratus_storage::RetryPolicy;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

mod cron;
mod health;
mod inbound;
mod jetstream;
mod mqtt;
mod nats;

pub use health::{BrokerStatus, Health, TriggerState, TriggerStatus};

/// Where the brokers are and how to behave towards them.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// e.g. `mqtt://127.0.0.1:1883`.
    pub mqtt_url: String,
    /// Makes MQTT client ids unique to this node (and stable across its
    /// restarts, so a persistent session finds its queued messages).
    pub node_identity: String,
    /// Ask MQTT brokers to keep subscriptions and QoS 1 messages while the
    /// node is away (a server with a lasting data directory); `stratus up`
    /// uses clean sessions.
    pub persistent_sessions: bool,
    /// Backoff between a failed JetStream delivery and its redelivery.
    pub retry: RetryPolicy,
}

/// Checks broker addresses (`--nats-url`, `--mqtt-url`), so a typo stops
/// the node at start with the flag's name rather than leaving its triggers
/// waiting forever.
pub fn check_addresses(nats_url: &str, mqtt_url: &str) -> Result<(), String> {
    nats_url
        .parse::<async_nats::ServerAddr>()
        .map_err(|e| format!("--nats-url {nats_url:?}: {e}"))?;
    mqtt::MqttAddress::parse(mqtt_url).map_err(|e| format!("--mqtt-url: {e}"))?;
    Ok(())
}

/// A broker URL as it may be shown (health, logs, an event's `source`):
/// a password in it is replaced by `***`.
fn without_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

/// The triggers of a node.
pub struct Triggers {
    ctx: Arc<Ctx>,
}

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers")
            .field("config", &self.ctx.config)
            .finish_non_exhaustive()
    }
}

/// What every trigger task shares.
struct Ctx {
    dispatcher: Arc<Dispatcher>,
    invoker: Arc<Invoker>,
    config: TriggerConfig,
    health: Arc<Health>,
    /// One NATS connection for every NATS and JetStream trigger, made when
    /// the first of them starts.
    nats: OnceCell<async_nats::Client>,
    /// `--nats-url` without its password, as `/readyz` and events show it.
    nats_shown: String,
}

/// A running trigger: `app`, `function` and the trigger as deployed.
type Key = (String, String, TriggerSpec);

/// Aborts its task when dropped, so removing a trigger stops it.
struct Running(JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Triggers {
    pub fn new(dispatcher: Arc<Dispatcher>, invoker: Arc<Invoker>, config: TriggerConfig) -> Self {
        Triggers {
            ctx: Arc::new(Ctx {
                dispatcher,
                invoker,
                health: Arc::new(Health::default()),
                nats: OnceCell::new(),
                nats_shown: without_password(&config.nats_url),
                config,
            }),
        }
    }

    pub fn health(&self) -> Arc<Health> {
        self.ctx.health.clone()
    }

    /// Follows the live set: starts the triggers of functions that arrive,
    /// stops those of functions that leave. Aborting the task stops all.
    pub fn spawn(&self) -> JoinHandle<()> {
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let mut changes = ctx.invoker.live_changes();
            let mut running: HashMap<Key, Running> = HashMap::new();
            loop {
                reconcile(&ctx, &mut running);
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

fn reconcile(ctx: &Arc<Ctx>, running: &mut HashMap<Key, Running>) {
    let live = ctx.invoker.live();
    let mut wanted: HashSet<Key> = HashSet::new();
    for function in live.functions() {
        for trigger in &function.triggers {
            // Named queues need no task: the dispatcher delivers them.
            if !matches!(trigger, TriggerSpec::Queue { .. }) {
                wanted.insert((function.app.clone(), function.name.clone(), trigger.clone()));
            }
        }
    }
    running.retain(|key, _| {
        let keep = wanted.contains(key);
        if !keep {
            ctx.health.remove(&label(key));
            tracing::info!(function = %format!("{}/{}", key.0, key.1), trigger = %key.2, "trigger stopped");
        }
        keep
    });
    for key in wanted {
        if running.contains_key(&key) {
            continue;
        }
        let task = Task {
            ctx: ctx.clone(),
            app: key.0.clone(),
            function: key.1.clone(),
            label: label(&key),
            trigger: key.2.to_string(),
        };
        let handle = match key.2.clone() {
            TriggerSpec::Cron {
                schedule,
                timezone,
                max_attempts,
            } => tokio::spawn(cron::run(task, schedule, timezone, max_attempts)),
            TriggerSpec::Nats {
                subject,
                queue_group,
                max_attempts,
            } => tokio::spawn(nats::run_core(task, subject, queue_group, max_attempts)),
            TriggerSpec::JetStream {
                stream,
                consumer,
                max_attempts,
            } => tokio::spawn(nats::run_jetstream(task, stream, consumer, max_attempts)),
            TriggerSpec::Mqtt {
                topic,
                max_attempts,
            } => tokio::spawn(mqtt::run(task, topic, max_attempts)),
            TriggerSpec::Queue { .. } => continue,
        };
        running.insert(key, Running(handle));
    }
}

fn label(key: &Key) -> String {
    format!("{}/{} {}", key.0, key.1, key.2)
}

/// One trigger task's identity and what it shares.
struct Task {
    ctx: Arc<Ctx>,
    app: String,
    function: String,
    /// Unique among running triggers.
    label: String,
    /// As written, for status and logs.
    trigger: String,
}

impl Task {
    fn set(&self, state: TriggerState, error: Option<String>) {
        self.ctx.health.set(
            &self.label,
            &format!("{}/{}", self.app, self.function),
            &self.trigger,
            state,
            error,
        );
    }

    /// Why the function cannot take an event of `len` bytes, if it cannot
    /// (`stratus_events::check_size`): such a message is kept as a dead
    /// letter where it comes in rather than queued for a delivery that
    /// would refuse it. A function no longer live has its events queued
    /// as before; the dispatcher settles them.
    fn check_size(&self, len: usize) -> Result<(), String> {
        match self.ctx.invoker.live().function(&self.app, &self.function) {
            Some(function) => stratus_events::check_size(len, function),
            None => Ok(()),
        }
    }

    fn queue_name(&self) -> String {
        stratus_events::async_queue(&self.app, &self.function)
    }

    /// A broker's message as an event of this function's queue.
    fn new_event(&self, e: inbound::Incoming, max_attempts: u32) -> stratus_storage::NewEvent {
        stratus_storage::NewEvent {
            queue: self.queue_name(),
            origin: None,
            id: e.id,
            source: e.source,
            kind: e.kind,
            subject: e.subject,
            path: "/".into(),
            content_type: e.content_type,
            data: e.data,
            traceparent: None,
            tracestate: None,
            max_attempts,
        }
    }
}

/// Doubling waits between reconnects, from 100 ms up to 30 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
    }

    fn reset(&mut self) {
        *self = Backoff::new();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn broker_passwords_are_not_shown() {
        assert_eq!(
            super::without_password("nats://app:s3cret@127.0.0.1:4222"),
            "nats://app:***@127.0.0.1:4222"
        );
        assert_eq!(
            super::without_password("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(super::without_password("127.0.0.1:4222"), "127.0.0.1:4222");
    }
}
