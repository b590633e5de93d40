//! What each trigger and broker connection is doing, for `/readyz` and the
//! logs. A broker that is down never stops the node: its triggers keep
//! retrying, and this is where an operator sees why nothing arrives.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// One trigger of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerStatus {
    /// `app/function`.
    pub function: String,
    /// The trigger as written, e.g. `mqtt "sensors/+/temperature"`.
    pub trigger: String,
    pub state: TriggerState,
    /// Why it is not running, when it is not.
    pub error: Option<String>,
    pub since: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerState {
    /// Connecting or subscribing for the first time.
    Starting,
    /// Receiving (or, for cron, scheduled).
    Running,
    /// Lost its broker or was refused; retrying with backoff.
    Retrying,
}

impl TriggerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerState::Starting => "starting",
            TriggerState::Running => "running",
            TriggerState::Retrying => "retrying",
        }
    }
}

/// A broker connection shared by several triggers (NATS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStatus {
    pub broker: &'static str,
    pub url: String,
    pub connected: bool,
    pub error: Option<String>,
    pub since: SystemTime,
}

/// The shared status board.
#[derive(Debug, Default)]
pub struct Health {
    triggers: Mutex<BTreeMap<String, TriggerStatus>>,
    brokers: Mutex<BTreeMap<&'static str, BrokerStatus>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Health {
    /// Records a trigger's state; a change is logged once.
    pub(crate) fn set(
        &self,
        key: &str,
        function: &str,
        trigger: &str,
        state: TriggerState,
        error: Option<String>,
    ) {
        let mut triggers = lock(&self.triggers);
        let changed = triggers
            .get(key)
            .is_none_or(|old| old.state != state || old.error != error);
        if !changed {
            return;
        }
        match (&state, &error) {
            (TriggerState::Retrying, Some(e)) => {
                tracing::warn!(function, trigger, "trigger is retrying: {e}");
            }
            (TriggerState::Running, _) => tracing::info!(function, trigger, "trigger is running"),
            _ => {}
        }
        triggers.insert(
            key.to_owned(),
            TriggerStatus {
                function: function.to_owned(),
                trigger: trigger.to_owned(),
                state,
                error,
                since: SystemTime::now(),
            },
        );
    }

    pub(crate) fn remove(&self, key: &str) {
        lock(&self.triggers).remove(key);
    }

    pub(crate) fn broker(
        &self,
        broker: &'static str,
        url: &str,
        connected: bool,
        error: Option<String>,
    ) {
        let mut brokers = lock(&self.brokers);
        let changed = brokers
            .get(broker)
            .is_none_or(|old| old.connected != connected || old.error != error);
        if !changed {
            return;
        }
        if connected {
            tracing::info!(broker, url, "connected to the broker");
        } else if let Some(e) = &error {
            tracing::warn!(broker, url, "broker unreachable, retrying: {e}");
        }
        brokers.insert(
            broker,
            BrokerStatus {
                broker,
                url: url.to_owned(),
                connected,
                error,
                since: SystemTime::now(),
            },
        );
    }

    pub fn triggers(&self) -> Vec<TriggerStatus> {
        lock(&self.triggers).values().cloned().collect()
    }

    pub fn brokers(&self) -> Vec<BrokerStatus> {
        lock(&self.brokers).values().cloned().collect()
    }

    /// One sentence per thing that keeps events from arriving.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .brokers()
            .into_iter()
            .filter(|b| !b.connected)
            .map(|b| {
                format!(
                    "{} broker {} is not connected{}; its triggers wait and retry",
                    b.broker,
                    b.url,
                    b.error.map(|e| format!(" ({e})")).unwrap_or_default()
                )
            })
            .collect();
        problems.extend(
            self.triggers()
                .into_iter()
                .filter(|t| t.state == TriggerState::Retrying)
                .map(|t| {
                    format!(
                        "trigger {} of {} is retrying: {}",
                        t.trigger,
                        t.function,
                        t.error.unwrap_or_default()
                    )
                }),
        );
        problems
    }
}
