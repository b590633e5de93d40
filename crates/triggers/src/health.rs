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

/// A broker and the node's connections to it: one shared by every trigger
/// (NATS), or one per trigger (MQTT, whose sessions are per subscriber).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStatus {
    pub broker: &'static str,
    pub url: String,
    /// Whether every connection to it is up.
    pub connected: bool,
    /// Why a connection is down, when one is.
    pub error: Option<String>,
    /// The newest change of any connection.
    pub since: SystemTime,
    pub connections: usize,
}

impl BrokerStatus {
    fn new(broker: &'static str, url: &str, connected: bool, error: Option<String>) -> Self {
        BrokerStatus {
            broker,
            url: url.to_owned(),
            connected,
            error,
            since: SystemTime::now(),
            connections: 1,
        }
    }
}

/// Puts `status` under `key` unless the connection there is already in
/// that state (keeping its `since`); whether it changed.
fn replace<K: Ord>(map: &mut BTreeMap<K, BrokerStatus>, key: K, status: BrokerStatus) -> bool {
    let unchanged = map
        .get(&key)
        .is_some_and(|old| old.connected == status.connected && old.error == status.error);
    if !unchanged {
        map.insert(key, status);
    }
    !unchanged
}

/// The shared status board.
#[derive(Debug, Default)]
pub struct Health {
    triggers: Mutex<BTreeMap<String, TriggerStatus>>,
    brokers: Mutex<BTreeMap<&'static str, BrokerStatus>>,
    /// MQTT connections by the label of the trigger that owns each.
    mqtt: Mutex<BTreeMap<String, BrokerStatus>>,
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
        lock(&self.mqtt).remove(key);
    }

    /// Records the state of the MQTT connection of trigger `key` (its
    /// trigger's own state logs the failures).
    pub(crate) fn mqtt_connection(
        &self,
        key: &str,
        url: &str,
        connected: bool,
        error: Option<String>,
    ) {
        let status = BrokerStatus::new("mqtt", url, connected, error);
        if replace(&mut lock(&self.mqtt), key.to_owned(), status) && connected {
            tracing::debug!(trigger = key, url, "connected to the MQTT broker");
        }
    }

    /// Records the state of the shared connection to `broker`; a change is
    /// logged once.
    pub(crate) fn broker(
        &self,
        broker: &'static str,
        url: &str,
        connected: bool,
        error: Option<String>,
    ) {
        let status = BrokerStatus::new(broker, url, connected, error.clone());
        if !replace(&mut lock(&self.brokers), broker, status) {
            return;
        }
        if connected {
            tracing::info!(broker, url, "connected to the broker");
        } else if let Some(e) = &error {
            tracing::warn!(broker, url, "broker unreachable, retrying: {e}");
        }
    }

    pub fn triggers(&self) -> Vec<TriggerStatus> {
        lock(&self.triggers).values().cloned().collect()
    }

    /// Every broker in use; MQTT's connections summed up as one.
    pub fn brokers(&self) -> Vec<BrokerStatus> {
        let mut brokers: Vec<BrokerStatus> = lock(&self.brokers).values().cloned().collect();
        let mqtt = lock(&self.mqtt);
        let mut connections = mqtt.values();
        if let Some(first) = connections.next() {
            let mut all = first.clone();
            for c in connections {
                all.connections += 1;
                all.since = all.since.max(c.since);
                if !c.connected {
                    if all.connected {
                        all.error = c.error.clone();
                    }
                    all.connected = false;
                }
            }
            brokers.push(all);
        }
        brokers
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
