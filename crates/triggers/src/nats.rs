//! NATS triggers: core subjects (queued durably on arrival) and JetStream
//! consumers (delivered directly, acknowledged after a 2xx; the protocol
//! is in `jetstream.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use stratus_events::Attempt;
use stratus_invoke::EventOutcome;
use stratus_storage::{Delivery, EventQueue, NewEvent};
use tokio::sync::Semaphore;

use crate::inbound::{Defaults, from_headers};
use crate::jetstream;
use crate::{Backoff, Ctx, Task, TriggerState};

/// Messages of one trigger being stored or delivered at once.
const IN_FLIGHT: usize = 256;
/// How long a busy function's JetStream message waits before redelivery.
const BUSY_DELAY: Duration = Duration::from_millis(200);

impl Ctx {
    /// The node's NATS connection, made on first use. It connects (and
    /// reconnects) in the background, so a broker that is down delays
    /// events, never the node.
    async fn nats(self: &Arc<Self>) -> async_nats::Client {
        let ctx = self.clone();
        self.nats
            .get_or_init(|| async move {
                let address = ctx.config.nats_url.clone();
                let url = ctx.nats_shown.clone();
                ctx.health
                    .broker("nats", &url, false, Some("connecting".into()));
                let health = ctx.health.clone();
                let events_url = url.clone();
                let options = async_nats::ConnectOptions::new()
                    .name("stratus")
                    .retry_on_initial_connect()
                    .max_reconnects(None)
                    .connection_timeout(Duration::from_secs(2))
                    .reconnect_delay_callback(|attempts| {
                        Duration::from_millis((100u64 << attempts.min(8)).min(30_000))
                    })
                    .event_callback(move |event| {
                        let health = health.clone();
                        let url = events_url.clone();
                        async move {
                            match event {
                                async_nats::Event::Connected => {
                                    health.broker("nats", &url, true, None)
                                }
                                async_nats::Event::Disconnected => {
                                    health.broker("nats", &url, false, Some("disconnected".into()))
                                }
                                async_nats::Event::ClientError(e) => {
                                    health.broker("nats", &url, false, Some(e.to_string()))
                                }
                                other => tracing::info!(broker = "nats", "{other}"),
                            }
                        }
                    });
                match options.connect(address.as_str()).await {
                    Ok(client) => client,
                    // Only a malformed address fails here (retrying covers
                    // the rest); the node was started with it, so say so
                    // and keep the triggers waiting on an address that
                    // will never answer.
                    Err(e) => {
                        ctx.health.broker(
                            "nats",
                            &url,
                            false,
                            Some(format!("cannot use the address: {e}")),
                        );
                        std::future::pending::<async_nats::Client>().await
                    }
                }
            })
            .await
            .clone()
    }
}

fn header_reader(message: &async_nats::Message) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        let headers = message.headers.as_ref()?;
        headers.iter().find_map(|(key, values)| {
            let key: &str = key.as_ref();
            if key.eq_ignore_ascii_case(name) {
                values.first().map(|v| v.as_str().to_owned())
            } else {
                None
            }
        })
    }
}

/// `{ nats = "subject" }`.
pub(crate) async fn run_core(
    task: Task,
    subject: String,
    queue_group: Option<String>,
    max_attempts: u32,
) {
    let task = Arc::new(task);
    task.set(TriggerState::Starting, None);
    let client = task.ctx.nats().await;
    // Nodes sharing a broker share the subscription: each message is
    // queued by one of them.
    let group = queue_group.unwrap_or_else(|| format!("stratus.{}.{}", task.app, task.function));
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut backoff = Backoff::new();
    loop {
        match client.queue_subscribe(subject.clone(), group.clone()).await {
            Ok(mut messages) => {
                // Running means the server has the subscription: a flush
                // returns once the server has answered everything sent
                // before it. (Until then messages go by unseen; core NATS
                // keeps none.)
                while let Err(e) = client.flush().await {
                    task.set(
                        TriggerState::Retrying,
                        Some(format!("waiting for the server: {e}")),
                    );
                    backoff.wait().await;
                }
                task.set(TriggerState::Running, None);
                backoff.reset();
                while let Some(message) = messages.next().await {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        return;
                    };
                    let (task, client) = (task.clone(), client.clone());
                    tokio::spawn(async move {
                        store_core(&task, &client, message, max_attempts).await;
                        drop(permit);
                    });
                }
                task.set(
                    TriggerState::Retrying,
                    Some("the subscription ended".into()),
                );
            }
            Err(e) => task.set(
                TriggerState::Retrying,
                Some(format!("cannot subscribe: {e}")),
            ),
        }
        backoff.wait().await;
    }
}

async fn store_core(
    task: &Task,
    client: &async_nats::Client,
    message: async_nats::Message,
    max_attempts: u32,
) {
    let defaults = Defaults {
        id: stratus_invoke::new_invocation_id(),
        source: format!("{}/{}", task.ctx.nats_shown, message.subject),
        kind: "dev.stratus.nats.message",
        subject: message.subject.to_string(),
    };
    let header = header_reader(&message);
    let (event, dead) = match from_headers(&header, &message.payload, &defaults) {
        Ok(event) => match task.check_size(event.data.len()) {
            Ok(()) => (event, None),
            Err(why) => (
                event,
                Some(format!(
                    "message from NATS subject {}: {why}",
                    message.subject
                )),
            ),
        },
        Err(why) => (
            defaults.wrap(header("content-type"), &message.payload),
            Some(format!(
                "malformed CloudEvent from NATS subject {}: {why}",
                message.subject
            )),
        ),
    };
    let id = event.id.clone();
    let queue = task.ctx.dispatcher.queue();
    let stored = match dead {
        None => queue.enqueue(task.new_event(event, max_attempts)).await,
        Some(reason) => {
            tracing::warn!(subject = %message.subject, "kept as a dead letter: {reason}");
            queue
                .bury(task.new_event(event, max_attempts), 0, reason)
                .await
        }
    }
    .map(|_| id);
    match stored {
        Ok(id) => {
            task.ctx.dispatcher.wake();
            // A request (not a plain publish) learns its event's id once the
            // event is durable.
            if let Some(reply) = message.reply.clone() {
                let _ = client.publish(reply, id.into()).await;
            }
        }
        Err(e) => tracing::error!(subject = %message.subject, "cannot queue a NATS message: {e}"),
    }
}

/// `{ jetstream = { stream, consumer } }`.
pub(crate) async fn run_jetstream(task: Task, stream: String, consumer: String, max_attempts: u32) {
    let task = Arc::new(task);
    task.set(TriggerState::Starting, None);
    let client = task.ctx.nats().await;
    let ack_wait = task
        .ctx
        .invoker
        .live()
        .function(&task.app, &task.function)
        .map_or(Duration::from_secs(60), |f| {
            f.function.limits().timeout + Duration::from_secs(30)
        });
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let shed = Arc::new(Shed::default());
    let mut backoff = Backoff::new();
    loop {
        let pull = match jetstream::bind(&client, &stream, &consumer, ack_wait).await {
            Ok(()) => jetstream::Pull::new(&client, &stream, &consumer).await,
            Err(e) => Err(e),
        };
        match pull {
            Ok(mut pull) => {
                task.set(TriggerState::Running, None);
                backoff.reset();
                loop {
                    let message = match pull.next().await {
                        Ok(message) => message,
                        Err(e) => {
                            task.set(TriggerState::Retrying, Some(format!("receiving: {e}")));
                            break;
                        }
                    };
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        return;
                    };
                    let (task, stream, client, shed) =
                        (task.clone(), stream.clone(), client.clone(), shed.clone());
                    tokio::spawn(async move {
                        deliver_jetstream(&task, &client, &stream, &shed, message, max_attempts)
                            .await;
                        drop(permit);
                    });
                }
            }
            Err(e) => task.set(TriggerState::Retrying, Some(e)),
        }
        backoff.wait().await;
    }
}

/// How often each message in flight was shed by a busy function. The
/// stream counts those as deliveries; they are no attempt, as in the
/// durable queue, so they are taken off again.
#[derive(Debug, Default)]
struct Shed(std::sync::Mutex<std::collections::HashMap<u64, u32>>);

impl Shed {
    fn times(&self, sequence: u64) -> u32 {
        self.lock().get(&sequence).copied().unwrap_or(0)
    }

    fn add(&self, sequence: u64) {
        *self.lock().entry(sequence).or_default() += 1;
    }

    fn forget(&self, sequence: u64) {
        self.lock().remove(&sequence);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, u32>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn deliver_jetstream(
    task: &Task,
    client: &async_nats::Client,
    stream: &str,
    shed: &Shed,
    js: jetstream::Delivered,
    max_attempts: u32,
) {
    let sequence = js.sequence;
    let delivered = js.delivered.saturating_sub(shed.times(sequence)).max(1);
    let message = &js.message;
    let defaults = Defaults {
        // Stable across redeliveries, so a handler can be idempotent.
        id: format!("{stream}-{sequence}"),
        source: format!("{}/{stream}", task.ctx.nats_shown),
        kind: "dev.stratus.jetstream.message",
        subject: message.subject.to_string(),
    };
    let header = header_reader(message);
    let queue = task.ctx.dispatcher.queue();
    let event = match from_headers(&header, &message.payload, &defaults) {
        Ok(event) => event,
        Err(why) => {
            let raw = defaults.wrap(header("content-type"), &message.payload);
            let error = format!("malformed CloudEvent from JetStream stream {stream}: {why}");
            tracing::warn!(stream, sequence, "{error}");
            if queue
                .bury(task.new_event(raw, max_attempts), 0, error)
                .await
                .is_ok()
            {
                let _ = js.ack(client).await;
            }
            return;
        }
    };
    let event = task.new_event(event, max_attempts);
    let delivery = Delivery::unqueued(event.clone(), delivered, SystemTime::now());
    let attempt = task.ctx.dispatcher.attempt(&delivery).await;
    // The stream settles it, as the node's queue would have: the function's
    // event series count it the same way.
    let outcome = match &attempt {
        Attempt::Handled(_) => EventOutcome::Handled,
        Attempt::Busy => EventOutcome::Busy,
        Attempt::Failed(_) if delivered < max_attempts => EventOutcome::Retried,
        Attempt::Failed(_) | Attempt::Rejected(_) => EventOutcome::Dead,
    };
    task.ctx.dispatcher.count_settled(&delivery.queue, outcome);
    let settled = match attempt {
        Attempt::Handled(_) => js.ack(client).await,
        Attempt::Busy => {
            shed.add(sequence);
            return settle_log(js.nak(client, BUSY_DELAY).await, stream, sequence);
        }
        Attempt::Failed(error) if delivered >= max_attempts => {
            // Out of attempts: keep it as a dead letter (redrive delivers it
            // through the durable queue), then let the stream forget it.
            bury_then_ack(queue, client, &js, stream, event, delivered, error).await
        }
        // Too large for the function or not expressible as a request: this
        // delivery never happened, and another would fare no better.
        Attempt::Rejected(error) => {
            tracing::warn!(
                stream,
                sequence,
                "JetStream message is dead at once: {error}"
            );
            bury_then_ack(
                queue,
                client,
                &js,
                stream,
                event,
                delivered.saturating_sub(1),
                error,
            )
            .await
        }
        Attempt::Failed(_) => {
            // Delivered again later: its shed count still applies then.
            let delay = task.ctx.config.retry.delay(delivered);
            return settle_log(js.nak(client, delay).await, stream, sequence);
        }
    };
    shed.forget(sequence);
    settle_log(settled, stream, sequence);
}

/// Keeps `event` as a dead letter, then lets the stream forget it; a dead
/// letter that cannot be stored leaves the message with the stream.
async fn bury_then_ack(
    queue: &Arc<dyn EventQueue>,
    client: &async_nats::Client,
    js: &jetstream::Delivered,
    stream: &str,
    event: NewEvent,
    attempts: u32,
    error: String,
) -> Result<(), String> {
    match queue.bury(event, attempts, error).await {
        Ok(_) => js.ack(client).await,
        Err(e) => {
            tracing::error!(
                stream,
                sequence = js.sequence,
                "cannot store a dead letter: {e}"
            );
            js.nak(client, BUSY_DELAY).await
        }
    }
}

fn settle_log(settled: Result<(), String>, stream: &str, sequence: u64) {
    if let Err(e) = settled {
        tracing::warn!(
            stream,
            sequence,
            "cannot acknowledge a JetStream message: {e}"
        );
    }
}
