//! Who a publish to a named queue reaches, and the refusals the admin API
//! and `queue.svc` share.
//!
//! Queues belong to an app: `orders` of one app and `orders` of another are
//! different queues. A publish reaches the functions of the addressed app
//! whose `{ queue = … }` trigger takes events from the publisher: its own
//! app always, another app only when the trigger's `from` lists it. Every
//! way of not reaching anyone is the same refusal, so a function cannot
//! tell another app that has the queue but grants it nothing from one that
//! has no such queue, or no such app.

use std::sync::Arc;

use http::StatusCode;
use stratus_invoke::{LiveFunction, LiveSet, PlatformError};
use stratus_manifest::{NAME_RULE, split_key, valid_app_key, valid_queue_name};
use stratus_storage::QueueError;

/// The functions a publish goes to, each with its trigger's `max_attempts`.
pub type Consumers = Vec<(Arc<LiveFunction>, u32)>;

/// Why a publish was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefusal {
    /// The app or queue name is malformed (what the publisher wrote).
    #[error("{0}")]
    BadAddress(String),
    /// No function of the app takes events on the queue from this
    /// publisher: the queue does not exist, or exists without a grant.
    #[error("{0}")]
    NoConsumer(String),
    /// The event's data is larger than a consumer's `max_body`.
    #[error("{0}")]
    TooLarge(String),
}

/// Why a publish to a named queue did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Refused(#[from] PublishRefusal),
    /// The queue could not store it (disk full, database locked).
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A refusal as the admin API and `queue.svc` answer it.
impl From<PublishRefusal> for PlatformError {
    fn from(refusal: PublishRefusal) -> Self {
        let (status, code) = match refusal {
            PublishRefusal::BadAddress(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            PublishRefusal::NoConsumer(_) => (StatusCode::NOT_FOUND, "no_consumer"),
            PublishRefusal::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        };
        PlatformError::new(status, code, refusal.to_string())
    }
}

/// A queue that cannot store the event is unavailable, not broken: the
/// publisher may retry.
impl From<PublishError> for PlatformError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Refused(refusal) => refusal.into(),
            PublishError::Queue(e) => PlatformError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                e.to_string(),
            ),
        }
    }
}

/// Checks an app key (the publisher's namespace qualified the name it
/// wrote) and a queue name as the publisher wrote it.
pub fn check_address(app: &str, queue: &str) -> Result<(), PublishRefusal> {
    if !valid_app_key(app) {
        return Err(PublishRefusal::BadAddress(format!(
            "\"{app}\" is not an app name ({NAME_RULE})"
        )));
    }
    if !valid_queue_name(queue) {
        return Err(PublishRefusal::BadAddress(format!(
            "\"{queue}\" is not a queue name; use 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a letter or digit"
        )));
    }
    Ok(())
}

/// The live functions of `app` that take an event of `len` bytes published
/// to its queue `queue` by `publisher` (the publishing function's app, or
/// `app` itself for an operator).
pub fn consumers(
    live: &LiveSet,
    app: &str,
    queue: &str,
    publisher: &str,
    len: usize,
) -> Result<Consumers, PublishRefusal> {
    check_address(app, queue)?;
    let consumers = live.consumers(app, queue, publisher);
    if consumers.is_empty() {
        // Built from the names the publisher gave and nothing else, so it
        // reads the same whatever `app` has deployed.
        return Err(PublishRefusal::NoConsumer(if publisher == app {
            format!(
                "no function of app \"{app}\" consumes queue \"{queue}\"; add triggers = [{{ queue = \"{queue}\" }}] to one of its functions, or the event would be lost"
            )
        } else {
            format!(
                "no function of app \"{app}\" consumes queue \"{queue}\" from app \"{publisher}\"; app \"{app}\" must grant it with triggers = [{{ queue = \"{queue}\", from = [\"{}\"] }}] on one of its functions",
                split_key(publisher).1
            )
        }));
    }
    // Only consumers that take the event are named: a function of another
    // app is named only to a publisher it granted.
    if let Some((f, _)) = consumers.iter().find(|(f, _)| len as u64 > f.max_body) {
        return Err(PublishRefusal::TooLarge(format!(
            "the event's data is {len} bytes; function \"{}\" of app \"{}\" accepts at most {} (its `max_body`)",
            f.name, f.app, f.max_body
        )));
    }
    Ok(consumers)
}
