//! Cron triggers: a schedule with a seconds field, in UTC or a named zone.
//!
//! Each tick becomes an event in the function's durable queue, so it fires
//! whether or not the function has a warm instance (delivery loads it). The
//! last tick fired is stored with the tick's event in one transaction; when
//! the node starts after missing ticks it fires the latest missed one once —
//! not once per missed tick, which after a long outage would be a storm.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use stratus_manifest::Schedule;
use stratus_storage::{EventQueue, NewEvent};

use crate::{Backoff, Task, TriggerState};

pub(crate) async fn run(task: Task, schedule: Schedule, zone: Option<Tz>, max_attempts: u32) {
    let zone = zone.unwrap_or(chrono_tz::UTC);
    let cron = schedule.cron();
    // Written as the manifest has it: stored last ticks are found by it.
    let tick_key = format!("{}/{} cron {} {}", task.app, task.function, schedule, zone);
    let tick_id = short_hash(&tick_key);
    let fire = |at: DateTime<Tz>, catch_up: bool| {
        let data = serde_json::json!({
            "schedule": schedule,
            "timezone": zone.name(),
            "scheduled_time": at.to_rfc3339(),
            "catch_up": catch_up,
        });
        NewEvent {
            queue: task.queue_name(),
            origin: None,
            // The same tick is the same event, even if fired twice.
            id: format!("cron-{tick_id}-{}", at.timestamp()),
            source: format!("/apps/{}/functions/{}/cron", task.app, task.function),
            kind: "dev.stratus.cron.tick".into(),
            subject: Some(schedule.to_string()),
            path: "/".into(),
            content_type: Some("application/json".into()),
            data: data.to_string().into_bytes(),
            // A tick is the start of its own trace.
            traceparent: None,
            tracestate: None,
            max_attempts,
        }
    };
    let queue = task.ctx.dispatcher.queue().clone();

    let mut backoff = Backoff::new();
    let last = loop {
        match queue.last_tick(&tick_key).await {
            Ok(last) => break last,
            Err(e) => task.set(
                TriggerState::Retrying,
                Some(format!("cannot read the last tick: {e}")),
            ),
        }
        backoff.wait().await;
    };
    let now = Utc::now().with_timezone(&zone);
    match last {
        // First start of this schedule: only mark where it begins, so a
        // tick missed before the next one fires is still caught up.
        None => store(&task, &queue, None, &tick_key, to_system(&now)).await,
        Some(last) => {
            let missed = cron
                .find_previous_occurrence(&now, true)
                .ok()
                .filter(|prev| to_system(prev) > last);
            if let Some(prev) = missed {
                tracing::info!(
                    function = %format!("{}/{}", task.app, task.function), schedule = %schedule,
                    tick = %prev.to_rfc3339(), "firing a tick missed while the node was down"
                );
                store(
                    &task,
                    &queue,
                    Some(fire(prev, true)),
                    &tick_key,
                    to_system(&prev),
                )
                .await;
            }
        }
    }
    task.set(TriggerState::Running, None);

    let mut after = now;
    loop {
        let next = match cron.find_next_occurrence(&after, false) {
            Ok(next) => next,
            Err(e) => {
                task.set(
                    TriggerState::Retrying,
                    Some(format!("the schedule has no next tick: {e}")),
                );
                return;
            }
        };
        let wait = (next.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        store(
            &task,
            &queue,
            Some(fire(next, false)),
            &tick_key,
            to_system(&next),
        )
        .await;
        after = next;
    }
}

/// Stores a tick, retrying until it is durable (a full disk clears; the
/// tick is not skipped).
async fn store(
    task: &Task,
    queue: &Arc<dyn EventQueue>,
    event: Option<NewEvent>,
    key: &str,
    tick: SystemTime,
) {
    let mut backoff = Backoff::new();
    loop {
        match queue.fire(event.clone(), key, tick).await {
            Ok(_) => {
                if event.is_some() {
                    task.ctx.dispatcher.wake();
                }
                task.set(TriggerState::Running, None);
                return;
            }
            Err(e) => task.set(
                TriggerState::Retrying,
                Some(format!("cannot store the tick: {e}")),
            ),
        }
        backoff.wait().await;
    }
}

fn to_system(at: &DateTime<Tz>) -> SystemTime {
    SystemTime::from(at.with_timezone(&Utc))
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}
