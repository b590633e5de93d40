//! What goes in and comes out of the queue.

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
    /// Deliveries before the event is dead (at least 1).
    pub max_attempts: u32,
}

/// An event handed out for delivery. Settle it with `succeed` or `fail`
/// before `lease_until`, or it will be delivered again.
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

    pub(crate) fn parse(text: &str) -> EventState {
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
