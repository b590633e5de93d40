//! The durable event queue: what a backend must do, whoever runs it.
//!
//! Events wait in the queue between being accepted (an async invocation, a
//! publish to a named queue, a cron tick, a broker's message) and being
//! handled by a function. The node's default backend is `queue.sqlite`
//! (`stratus-queue`); a JetStream one keeps the same contract, stated on
//! [`EventQueue`] and checked by [`conformance::queue`](crate::conformance::queue).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// An event to enqueue. `id` is the CloudEvents `ce-id`: it stays the same
/// across retries so handlers can be idempotent, and enqueueing the same
/// `(queue, origin, id)` twice stores it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The queue: a named queue, or a function's own async queue.
    pub queue: String,
    /// The app that published the event when it is not the queue's own
    /// (a publish another app's trigger granted with `from`); `None` for
    /// the queue's own events. Ids are unique per origin, so another app's
    /// ce-id never shadows one of the queue's own.
    pub origin: Option<String>,
    pub id: String,
    /// `ce-source`.
    pub source: String,
    /// `ce-type`.
    pub kind: String,
    /// `ce-subject`.
    pub subject: Option<String>,
    /// The request path the handler sees (`/` for events from triggers).
    pub path: String,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
    /// The W3C trace context of whatever published the event: the
    /// CloudEvents distributed-tracing extension's `traceparent`, kept so
    /// the invocation that handles the event continues the publisher's
    /// trace rather than starting one of its own; `None` when the
    /// publisher had none.
    pub traceparent: Option<String>,
    /// The `tracestate` that came with `traceparent` (vendors' entries,
    /// passed on as they were); `None` when there was none.
    pub tracestate: Option<String>,
    /// Deliveries before the event is dead (at least 1).
    pub max_attempts: u32,
}

/// An event handed out for delivery. Settle it with `succeed` or `fail`
/// before its lease runs out, or it will be delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub seq: i64,
    pub queue: String,
    pub id: String,
    pub source: String,
    pub kind: String,
    pub subject: Option<String>,
    pub path: String,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
    /// The publisher's trace context, as [`NewEvent::traceparent`] and
    /// [`NewEvent::tracestate`] stored it: every delivery, retries and
    /// redriven dead letters included, carries it.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    /// When the event was accepted: `ce-time`.
    pub time: SystemTime,
    /// This delivery's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
}

impl Delivery {
    /// An event delivered without having been stored here (a JetStream
    /// message, which its stream keeps): it has no sequence number.
    pub fn unqueued(event: NewEvent, attempt: u32, time: SystemTime) -> Delivery {
        Delivery {
            seq: 0,
            queue: event.queue,
            id: event.id,
            source: event.source,
            kind: event.kind,
            subject: event.subject,
            path: event.path,
            content_type: event.content_type,
            data: event.data,
            traceparent: event.traceparent,
            tracestate: event.tracestate,
            time,
            attempt,
            max_attempts: event.max_attempts,
        }
    }
}

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Waiting for its first delivery or for a retry.
    Queued,
    /// Leased to a deliverer.
    Running,
    Succeeded,
    /// Attempts used up; kept in the dead-letter queue.
    Dead,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Queued => "queued",
            EventState::Running => "running",
            EventState::Succeeded => "succeeded",
            EventState::Dead => "dead",
        }
    }

    /// The state [`as_str`](Self::as_str) wrote; anything else is queued.
    pub fn parse(text: &str) -> EventState {
        match text {
            "running" => EventState::Running,
            "succeeded" => EventState::Succeeded,
            "dead" => EventState::Dead,
            _ => EventState::Queued,
        }
    }
}

/// What `GET` on an event shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStatus {
    pub seq: i64,
    pub queue: String,
    /// The app that published it into another app's queue (see `NewEvent`).
    pub origin: Option<String>,
    pub id: String,
    pub state: EventState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    /// When a queued event is next due.
    pub next_at: SystemTime,
    pub last_error: Option<String>,
    /// The handler's answer on success: status and (bounded) body.
    pub result_status: Option<u16>,
    pub result_body: Option<Vec<u8>>,
}

/// How a failed delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Queued again, due at this time.
    Retry(SystemTime),
    /// Attempts used up: moved to the dead letters.
    Dead,
}

/// Backoff between attempts: `base × 2^(attempt-1)`, at most `max`, of
/// which a random part (`jitter`, 0–1) is taken off so that events that
/// failed together do not all come back together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// The wait before the retry that follows failed attempt `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0) * rand::random::<f64>();
        full.mul_f64(1.0 - jitter)
    }
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The batch holding the operation was not committed: nothing of it
    /// happened.
    #[error("the queue could not commit: {0}")]
    Commit(String),
    #[error("the queue's writer has stopped")]
    Stopped,
    /// Settling an event that is not leased: unknown, or settled already.
    #[error("no event {0} is waiting in this queue")]
    NotFound(i64),
    /// The backend's own error (SQLite's names the database and what the
    /// node was doing), shown as it is.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl QueueError {
    /// Wraps a backend's own error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
        QueueError::Backend(Box::new(e))
    }
}

/// What a queue operation resolves to. It borrows nothing: arguments are
/// taken (or copied) when the operation is called.
pub type QueueFuture<T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send>>;

/// A durable event queue: the node's `queue.sqlite`, or a broker's streams.
///
/// The contract every backend keeps (and the conformance suite checks):
///
/// - **Acknowledged means durable.** An operation's future resolves `Ok`
///   only once what it changed survives the process being killed (SQLite:
///   committed with `synchronous = FULL`), because its caller answers on
///   it: a 202 to the sender, an ack to a broker, a tick marked as fired.
///   An `Err` means nothing of the operation happened.
/// - **At least once.** [`lease`](Self::lease) hands an event out for a
///   while and counts the attempt; a lease that runs out without a settle
///   (the deliverer died) makes the event due again, with the next attempt
///   number. So a handler may see an event twice; its `ce-id` (`id`) stays
///   the same so it can tell.
/// - **Retries, then dead.** [`fail`](Self::fail) queues the event again
///   after the backoff of the backend's [`RetryPolicy`] for that attempt,
///   or, once `max_attempts` deliveries were made, moves it to the dead
///   letters with the last error. [`redrive`](Self::redrive) puts dead
///   events back, due at once, with fresh attempts.
/// - **Shed is not failure.** [`release`](Self::release) (the function was
///   too busy) and [`reject`](Self::reject) (the event can never be
///   delivered as it is) take back the attempt the lease counted.
/// - **De-duplication** is by `(queue, origin, id)`: enqueueing an event
///   already stored (in any state) changes nothing and answers the stored
///   event's `seq`. A function's queue belongs to one app, so ids are
///   de-duplicated per app, and another app's publishes (`origin`) apart
///   from the app's own; the same id in another queue is another event.
/// - **Order.** `seq` is positive, unique, and grows in the order events
///   were stored. `lease` hands out the due events that have been due
///   longest first, in `seq` order among those due at the same moment (so
///   events enqueued one after another are leased in that order); their
///   deliveries then run concurrently, so handling has no order.
///   [`recent`](Self::recent) lists newest first, [`dead_letters`](Self::dead_letters)
///   oldest first, both by `seq`.
/// - Settling (`succeed`, `fail`, `release`, `reject`) applies only to a
///   leased event: any other `seq` is [`QueueError::NotFound`].
pub trait EventQueue: Send + Sync + 'static {
    /// Stores an event, due at once; answers its `seq` once it is durable.
    fn enqueue(&self, event: NewEvent) -> QueueFuture<i64>;

    /// Stores the event of a cron tick and records `tick` as the trigger's
    /// last, atomically: after a crash either both happened or neither, so
    /// a tick is neither lost nor fired twice. Without an event it only
    /// records the tick. A tick older than the one recorded never moves the
    /// mark back. Answers the event's `seq`, if any.
    fn fire(
        &self,
        event: Option<NewEvent>,
        trigger: &str,
        tick: SystemTime,
    ) -> QueueFuture<Option<i64>>;

    /// The last tick the cron trigger `trigger` fired, if it ever did.
    fn last_tick(&self, trigger: &str) -> QueueFuture<Option<SystemTime>>;

    /// Stores an event as dead after `attempts` deliveries made elsewhere
    /// (or none, for one that could not be read), with the reason; it can
    /// be redriven like any dead letter. An event already stored with the
    /// same `(queue, origin, id)` is left as it is (a duplicate never ends
    /// the event it duplicates). Answers the `seq` once durable.
    fn bury(&self, event: NewEvent, attempts: u32, error: String) -> QueueFuture<i64>;

    /// Leases up to `max` due events of `queue` (of every queue when
    /// `None`) for `lease`: queued events whose time has come and leased
    /// ones whose lease ran out. Each lease counts an attempt.
    fn lease(&self, queue: Option<&str>, max: usize, lease: Duration)
    -> QueueFuture<Vec<Delivery>>;

    /// Settles a leased event as handled, with the handler's answer.
    fn succeed(&self, seq: i64, result: Option<(u16, Vec<u8>)>) -> QueueFuture<()>;

    /// Settles a leased event as failed with `error`: queued again after
    /// the policy's backoff, or dead once its attempts are used up.
    fn fail(&self, seq: i64, error: String) -> QueueFuture<Settled>;

    /// Hands a leased event back uncounted, due again after `delay`: the
    /// function was too busy to take it, which is no failure of the event.
    fn release(&self, seq: i64, delay: Duration) -> QueueFuture<()>;

    /// Settles a leased event as dead at once, whatever attempts it has
    /// left, and without counting this one: it was never delivered, because
    /// it cannot be as it is (larger than its function's `max_body`, an
    /// attribute no header can carry), so a retry would only fail the same
    /// way. Redrive puts it back, say once `max_body` was raised.
    fn reject(&self, seq: i64, error: String) -> QueueFuture<()>;

    /// Extends a leased event's lease to `lease` from now. A deliverer
    /// renews its lease while a delivery runs, so leases can be short: an
    /// event whose deliverer died (a killed node of a cluster) is due again
    /// after one short lease, not after the longest a function may run.
    /// [`QueueError::NotFound`] when the event is not leased here (settled,
    /// or its lease ran out and was taken over).
    fn extend(&self, seq: i64, lease: Duration) -> QueueFuture<()>;

    /// Puts a queue's dead events (or the one with `id`) back in line, due
    /// at once with fresh attempts; answers how many.
    fn redrive(&self, queue: &str, id: Option<&str>) -> QueueFuture<usize>;

    /// The newest event with this id, in any queue and state.
    fn status(&self, id: &str) -> QueueFuture<Option<EventStatus>>;

    /// The newest event `id` of `queue` as it was published, for a replay
    /// (published again under a new id): `None` when the queue does not
    /// hold its body — never stored, pruned, or (JetStream, which keeps
    /// the bodies of waiting and dead events only) handled.
    fn published(&self, queue: &str, id: &str) -> QueueFuture<Option<NewEvent>>;

    /// A queue's newest `limit` events in any state, newest first.
    fn recent(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>>;

    /// A queue's dead letters, oldest first, at most `limit`.
    fn dead_letters(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>>;

    /// Every queue holding events not yet handled or dead, by name: what
    /// waits (queued or being delivered), since when, and its dead
    /// letters. For `/metrics`: a queue that grows, or whose oldest event
    /// ages, has consumers that do not keep up.
    fn backlog(&self) -> QueueFuture<Vec<Backlog>>;
}

/// What one queue holds that is not done: see [`EventQueue::backlog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub queue: String,
    /// Events queued, waiting for a retry or being delivered.
    pub waiting: u64,
    /// When the oldest of them was accepted (`ce-time`).
    pub oldest: Option<SystemTime>,
    /// Dead letters, until redriven or pruned.
    pub dead: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_minus_jitter() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: 0.5,
        };
        for _ in 0..100 {
            let d3 = policy.delay(3);
            assert!(
                d3 <= Duration::from_secs(4) && d3 >= Duration::from_secs(2),
                "{d3:?}"
            );
            let d9 = policy.delay(9);
            assert!(
                d9 <= Duration::from_secs(10) && d9 >= Duration::from_secs(5),
                "{d9:?}"
            );
        }
    }

    #[test]
    fn states_read_back_as_written() {
        for state in [
            EventState::Queued,
            EventState::Running,
            EventState::Succeeded,
            EventState::Dead,
        ] {
            assert_eq!(EventState::parse(state.as_str()), state);
        }
    }
}
