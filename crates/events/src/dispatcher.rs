//! The delivery loop: lease due events, deliver each in its own task,
//! settle it by the function's answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use stratus_invoke::{EventOutcome, Invoker, LiveFunction, new_invocation_id};
use stratus_runtime::ResponseBody;
use stratus_storage::{Backlog, Delivery, EventQueue, NewEvent, QueueError, Settled, Trigger};
use tokio::sync::{Notify, Semaphore};

use crate::cloudevent::{check_size, request_for};
use crate::publish::{Consumers, PublishError, consumers};

/// The queue of a function's async invocations.
pub fn async_queue(app: &str, function: &str) -> String {
    format!("fn:{app}/{function}")
}

/// The app (its key, which may hold a `/`) and function whose queue
/// `queue` is, when it is a function's.
pub fn queue_function(queue: &str) -> Option<(&str, &str)> {
    queue.strip_prefix("fn:")?.rsplit_once('/')
}

/// An event published to a named queue; what is not given is filled in
/// (`ce-id` generated, `ce-source` `/apps/<app>/queues/<name>`, `ce-type`
/// `dev.stratus.queue.message`, `ce-subject` the queue's name).
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The app that published it when it is not the queue's own (a
    /// publish the consumers' `from` granted). Its ids are de-duplicated
    /// apart from the app's own, so they never shadow the app's events.
    pub from: Option<String>,
    pub id: Option<String>,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub subject: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
    /// The publisher's W3C trace context (see `crate::trace_context`),
    /// stored with every copy so each consumer continues its trace.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// How long a delivery shed by a busy function waits before the next try.
const BUSY_DELAY: Duration = Duration::from_millis(200);

/// How much of a handler's answer is kept as the event's result.
const RESULT_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct DispatchConfig {
    /// Deliveries running at once across all functions (each function's
    /// own `max_concurrency` applies on top, through the gateway).
    pub max_in_flight: usize,
    /// How often due retries are looked for when nothing wakes the loop.
    pub poll: Duration,
    /// How long a lease lasts without renewal: the delivery renews it
    /// while it runs, so this bounds how long an event waits after its
    /// deliverer died. (After a restart a node's own leased events are due
    /// at once anyway.)
    pub lease: Duration,
    /// Deliveries before an async invocation is dead.
    pub max_attempts: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_in_flight: 256,
            poll: Duration::from_millis(100),
            lease: Duration::from_secs(20 * 60),
            max_attempts: 3,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DispatchStats {
    pub succeeded: AtomicU64,
    /// Failed deliveries queued again for a retry.
    pub retried: AtomicU64,
    pub dead: AtomicU64,
    /// Deliveries shed by a busy function, put back without using an attempt.
    pub busy: AtomicU64,
}

/// Delivers queued events to live functions.
pub struct Dispatcher {
    stats: DispatchStats,
    pub(crate) queue: Arc<dyn EventQueue>,
    invoker: Arc<Invoker>,
    config: DispatchConfig,
    wake: Notify,
    in_flight: Arc<Semaphore>,
    /// The last backlog read and when: see [`Dispatcher::backlog`].
    backlog: std::sync::Mutex<Option<(Instant, Vec<Backlog>)>>,
}

/// How long a backlog read is answered again. Every scrape of `/metrics`
/// and every console tab's poll of `/v1/queues` asks for it, and with
/// JetStream it costs a request per queue: readers close together share
/// one read.
const BACKLOG_FRESH: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(
        queue: Arc<dyn EventQueue>,
        invoker: Arc<Invoker>,
        config: DispatchConfig,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            queue,
            invoker,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            wake: Notify::new(),
            stats: DispatchStats::default(),
            backlog: std::sync::Mutex::new(None),
        })
    }

    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }

    /// Each function's queue that holds events waiting or dead (see
    /// [`EventQueue::backlog`]), at most [`BACKLOG_FRESH`] old, or `None`
    /// when the queue does not answer within `within`: a scrape of
    /// `/metrics` must not hang on a broker that went away.
    pub async fn backlog(&self, within: Duration) -> Option<Vec<Backlog>> {
        let cached = |slot: &Option<(Instant, Vec<Backlog>)>| {
            slot.as_ref()
                .filter(|(read, _)| read.elapsed() < BACKLOG_FRESH)
                .map(|(_, backlog)| backlog.clone())
        };
        if let Some(backlog) = self.backlog.lock().ok().and_then(|slot| cached(&slot)) {
            return Some(backlog);
        }
        match tokio::time::timeout(within, self.queue.backlog()).await {
            Ok(Ok(backlog)) => {
                if let Ok(mut slot) = self.backlog.lock() {
                    *slot = Some((Instant::now(), backlog.clone()));
                }
                Some(backlog)
            }
            Ok(Err(e)) => {
                tracing::warn!("cannot read the queues' backlog: {e}");
                None
            }
            Err(_) => {
                tracing::warn!("the queues' backlog took longer than {within:?}: left out");
                None
            }
        }
    }

    pub fn queue(&self) -> &Arc<dyn EventQueue> {
        &self.queue
    }

    /// Queues an async invocation of `function` and returns its id (the
    /// event's `ce-id`) once it is durable. `trace` is the caller's
    /// `traceparent` and `tracestate` (`crate::trace_context`), so the
    /// invocation, whenever it runs, continues the caller's trace.
    pub async fn submit(
        &self,
        function: &LiveFunction,
        path: String,
        content_type: Option<String>,
        body: Bytes,
        trace: (Option<String>, Option<String>),
    ) -> Result<String, QueueError> {
        let id = new_invocation_id();
        let (traceparent, tracestate) = trace;
        self.queue
            .enqueue(NewEvent {
                queue: async_queue(&function.app, &function.name),
                origin: None,
                id: id.clone(),
                source: format!("/v1/functions/{}/{}", function.app, function.name),
                kind: "dev.stratus.invocation".into(),
                subject: None,
                path,
                content_type,
                data: body.to_vec(),
                traceparent,
                tracestate,
                max_attempts: self.config.max_attempts,
            })
            .await?;
        self.wake();
        Ok(id)
    }

    /// Publishes `event` to the named queue `queue` of `app`, from the app
    /// in `event.from` (or from `app` itself, as its functions and the
    /// operator publish): finds its consumers in the live set or refuses
    /// (see `crate::consumers`), then stores one durable copy per consumer
    /// in that function's queue (so each consumer retries, and
    /// dead-letters, on its own). The copies share `ce-id`, and publishing
    /// the same id again from the same app stores nothing new. Returns the
    /// id and the consumers.
    pub async fn publish(
        &self,
        app: &str,
        queue: &str,
        event: Published,
    ) -> Result<(String, Consumers), PublishError> {
        let publisher = event.from.as_deref().unwrap_or(app);
        let consumers = consumers(
            &self.invoker.live(),
            app,
            queue,
            publisher,
            event.data.len(),
        )?;
        let id = self.enqueue_copies(app, queue, &consumers, event).await?;
        Ok((id, consumers))
    }

    async fn enqueue_copies(
        &self,
        app: &str,
        queue: &str,
        consumers: &[(Arc<LiveFunction>, u32)],
        event: Published,
    ) -> Result<String, QueueError> {
        let id = event.id.unwrap_or_else(new_invocation_id);
        for (function, max_attempts) in consumers {
            self.queue
                .enqueue(NewEvent {
                    queue: async_queue(&function.app, &function.name),
                    origin: event.from.clone(),
                    id: id.clone(),
                    source: event
                        .source
                        .clone()
                        .unwrap_or_else(|| format!("/apps/{app}/queues/{queue}")),
                    kind: event
                        .kind
                        .clone()
                        .unwrap_or_else(|| "dev.stratus.queue.message".into()),
                    subject: event.subject.clone().or_else(|| Some(queue.to_owned())),
                    path: "/".into(),
                    content_type: event.content_type.clone(),
                    data: event.data.to_vec(),
                    traceparent: event.traceparent.clone(),
                    tracestate: event.tracestate.clone(),
                    max_attempts: *max_attempts,
                })
                .await?;
        }
        self.wake();
        Ok(id)
    }

    /// Looks for due events now (after an enqueue or a redrive).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits, at most `limit`, for the deliveries under way to finish and
    /// settle; whether they all did. A stopping node calls it after
    /// stopping the delivery loop: what it leased is settled rather than
    /// left to run out its lease (in a cluster another node would deliver
    /// it again; on its own the node would at its next start).
    pub async fn drain(&self, limit: Duration) -> bool {
        let all = u32::try_from(self.config.max_in_flight.max(1)).unwrap_or(u32::MAX);
        matches!(
            tokio::time::timeout(limit, self.in_flight.acquire_many(all)).await,
            Ok(Ok(_))
        )
    }

    /// Starts the delivery loop.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.run().await })
    }

    async fn run(self: Arc<Self>) {
        // A queue out of reach (a cluster's NATS down) fails every poll.
        let mut unreachable = stratus_runtime::WarnLimit::per_second();
        loop {
            let free = self.in_flight.available_permits();
            let leased = if free == 0 {
                Vec::new()
            } else {
                match self
                    .queue
                    .lease(None, free.min(64), self.config.lease)
                    .await
                {
                    Ok(leased) => leased,
                    Err(e) => {
                        if let Some(times) = unreachable.hit() {
                            tracing::warn!(times, "cannot lease events: {e}");
                        }
                        Vec::new()
                    }
                }
            };
            if leased.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => {},
                    () = tokio::time::sleep(self.config.poll) => {},
                }
                continue;
            }
            for delivery in leased {
                let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    this.deliver(delivery).await;
                    drop(permit);
                });
            }
        }
    }

    async fn deliver(&self, d: Delivery) {
        // The lease is renewed while the delivery runs, every third of it,
        // so it can be short: a deliverer that dies holds the event one
        // lease at most.
        let outcome = {
            let attempt = self.attempt(&d);
            tokio::pin!(attempt);
            let every = self.config.lease / 3;
            let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    outcome = &mut attempt => break outcome,
                    _ = renew.tick() => {
                        if let Err(e) = self.queue.extend(d.seq, self.config.lease).await {
                            tracing::warn!(event = %d.id, "cannot renew the event's lease: {e}");
                        }
                    }
                }
            }
        };
        let count = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
        // Settled as the attempt went; the node's counters and the
        // function's follow what the queue did with it.
        let settled = match outcome {
            Attempt::Handled(result) => self.queue.succeed(d.seq, Some(result)).await.map(|()| {
                count(&self.stats.succeeded);
                EventOutcome::Handled
            }),
            Attempt::Failed(error) => {
                self.queue
                    .fail(d.seq, error)
                    .await
                    .map(|settled| match settled {
                        Settled::Dead => {
                            count(&self.stats.dead);
                            tracing::warn!(
                                event = %d.id, queue = %d.queue, attempts = d.attempt,
                                "event is dead after its last attempt failed"
                            );
                            EventOutcome::Dead
                        }
                        Settled::Retry(_) => {
                            count(&self.stats.retried);
                            EventOutcome::Retried
                        }
                    })
            }
            Attempt::Busy => {
                count(&self.stats.busy);
                self.queue
                    .release(d.seq, BUSY_DELAY)
                    .await
                    .map(|()| EventOutcome::Busy)
            }
            Attempt::Rejected(error) => self.queue.reject(d.seq, error.clone()).await.map(|()| {
                count(&self.stats.dead);
                tracing::warn!(event = %d.id, queue = %d.queue, "event is dead at once: {error}");
                EventOutcome::Dead
            }),
        };
        match settled {
            Ok(outcome) => self.count_settled(&d.queue, outcome),
            Err(e) => tracing::error!(event = %d.id, "cannot settle the event: {e}"),
        }
    }

    /// Counts a settled delivery in the series of the function that
    /// consumes `queue`, if it is still live: by [`Dispatcher::deliver`]
    /// for the node's queue, and by a trigger whose broker settles what it
    /// delivered with [`Dispatcher::attempt`].
    pub fn count_settled(&self, queue: &str, outcome: EventOutcome) {
        if let Some((app, name)) = queue_function(queue)
            && let Some(function) = self.invoker.live().function(app, name)
        {
            function.series.count_event(outcome);
        }
    }

    /// Delivers `d` once to the function its queue names and says how it
    /// went; settling it is the caller's business (the queue's, or a
    /// broker's for an event that a JetStream consumer acknowledges).
    pub async fn attempt(&self, d: &Delivery) -> Attempt {
        let Some((app, name)) = queue_function(&d.queue) else {
            return Attempt::Failed(format!("no function consumes queue \"{}\"", d.queue));
        };
        let live = self.invoker.live();
        let Some(function) = live.function(app, name).cloned() else {
            return Attempt::Failed(format!("function {app}/{name} is not deployed"));
        };
        // Neither can change by trying again: the event is dead at once.
        if let Err(why) = check_size(d.data.len(), &function) {
            return Attempt::Rejected(why);
        }
        let request = match request_for(d) {
            Ok(request) => request,
            Err(e) => return Attempt::Rejected(e.to_string()),
        };
        let id = new_invocation_id();
        let response = self
            .invoker
            .invoke_buffered(&function, request, &id, Trigger::Event)
            .await;
        let status = response.status();
        // Shed by admission (429) or a draining node (503): the function
        // never ran, so it is no attempt.
        let busy = response.headers().contains_key(http::header::RETRY_AFTER)
            && matches!(status.as_u16(), 429 | 503);
        let body = match read_bounded(response.into_body()).await {
            Ok(body) => body,
            // The function failed after its answer began (a trap or its
            // timeout mid-body): whatever the status said, it failed.
            Err(e) => {
                return Attempt::Failed(format!("invocation {id} answered {status}, then {e}"));
            }
        };
        if status.is_success() {
            Attempt::Handled((status.as_u16(), body))
        } else if busy {
            Attempt::Busy
        } else {
            let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            Attempt::Failed(format!("invocation {id} answered {status}: {snippet}"))
        }
    }
}

/// How one delivery went.
#[derive(Debug)]
pub enum Attempt {
    /// A 2xx: the status and the first bytes of the answer.
    Handled((u16, Vec<u8>)),
    Failed(String),
    /// The function was at capacity and shed the request.
    Busy,
    /// Never delivered, and never deliverable as it is: larger than the
    /// function's `max_body`, or an attribute no header can carry. Dead at
    /// once with the reason, using no attempt.
    Rejected(String),
}

/// The first `RESULT_LIMIT` bytes of a body; the rest is drained unread.
/// A body that fails instead of ending is an error.
async fn read_bounded(mut body: ResponseBody) -> Result<Vec<u8>, stratus_runtime::BodyError> {
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = RESULT_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use stratus_invoke::Admission;
    use stratus_queue::SqliteQueue;
    use stratus_storage::RetryPolicy;

    use super::*;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            queue: async_queue("app", "f"),
            origin: None,
            id: id.into(),
            source: "/tests".into(),
            kind: "test".into(),
            subject: None,
            path: "/".into(),
            content_type: None,
            data: Vec::new(),
            traceparent: None,
            tracestate: None,
            max_attempts: 1,
        }
    }

    #[tokio::test]
    async fn backlog_reads_close_together_share_one_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(SqliteQueue::FILE);
        let queue = SqliteQueue::open(&path, RetryPolicy::default(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let queue: Arc<dyn EventQueue> = Arc::new(queue);
        let invoker = Invoker::new(
            Admission::new(4, 64 << 20, Duration::from_secs(1)),
            None,
            None,
        );
        let dispatcher = Dispatcher::new(queue.clone(), invoker, DispatchConfig::default());
        let waiting = |backlog: Option<Vec<Backlog>>| backlog.map(|b| b[0].waiting);

        queue
            .enqueue(event("one"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            waiting(dispatcher.backlog(Duration::from_secs(2)).await),
            Some(1)
        );
        queue
            .enqueue(event("two"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            waiting(dispatcher.backlog(Duration::from_secs(2)).await),
            Some(1),
            "a read within the second is the same read"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiting(dispatcher.backlog(Duration::from_secs(2)).await) != Some(2) {
            assert!(Instant::now() < deadline, "the second event never showed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
