//! MQTT triggers: QoS 1 subscriptions, one connection per trigger.
//!
//! A message is acknowledged to the broker (PUBACK) only once its event is
//! durable in the function's queue; until then the broker still owns it and
//! sends it again after a reconnect. Acknowledgements go out in the order
//! the messages came, as MQTT 3.1.1 asks, while the stores behind them run
//! concurrently (and share group commits).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::inbound::{Defaults, from_payload};
use crate::{Backoff, Task, TriggerState};

/// Messages stored but not yet acknowledged, per trigger.
const IN_FLIGHT: usize = 256;
/// Largest message accepted.
const MAX_PACKET: usize = 8 << 20;

/// `mqtt://host:port` (port 1883 when absent).
pub(crate) fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| format!("{url:?} is not an mqtt:// address"))?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse()
                .map_err(|_| format!("{url:?} has no valid port"))?;
            Ok((host.to_owned(), port))
        }
        None if !rest.is_empty() => Ok((rest.to_owned(), 1883)),
        None => Err(format!("{url:?} names no host")),
    }
}

pub(crate) async fn run(task: Task, topic: String, max_attempts: u32) {
    let task = Arc::new(task);
    task.set(TriggerState::Starting, None);
    let config = &task.ctx.config;
    let (host, port) = match parse_url(&config.mqtt_url) {
        Ok(address) => address,
        Err(e) => {
            task.set(TriggerState::Retrying, Some(e));
            return;
        }
    };
    // Stable for this node and trigger, so a persistent session is found
    // again after a restart; 23 characters, the most MQTT 3.1.1 promises.
    let digest = Sha256::digest(format!("{}\n{}", config.node_identity, task.label).as_bytes());
    let client_id = format!("stratus-{}", &hex::encode(digest)[..15]);
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(!config.persistent_sessions)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    let (client, mut events) = AsyncClient::new(options, 64);
    let (order_tx, order_rx) = mpsc::channel::<(Publish, JoinHandle<bool>)>(IN_FLIGHT);
    let acker = tokio::spawn(acknowledge_in_order(client.clone(), order_rx));
    let _stop_acker = AbortOnDrop(acker);

    let url = config.mqtt_url.clone();
    let mut backoff = Backoff::new();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                    task.set(
                        TriggerState::Retrying,
                        Some(format!("cannot subscribe: {e}")),
                    );
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    task.set(
                        TriggerState::Retrying,
                        Some(format!(
                            "the broker at {url} refused the subscription to {topic:?}"
                        )),
                    );
                } else {
                    task.set(TriggerState::Running, None);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let store = tokio::spawn(store(task.clone(), publish.clone(), max_attempts));
                if order_tx.send((publish, store)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                task.set(TriggerState::Retrying, Some(format!("broker {url}: {e}")));
                backoff.wait().await;
            }
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn acknowledge_in_order(
    client: AsyncClient,
    mut stored: mpsc::Receiver<(Publish, JoinHandle<bool>)>,
) {
    while let Some((publish, store)) = stored.recv().await {
        // Not stored: no PUBACK, so the broker keeps the message and sends
        // it again when the session resumes.
        if matches!(store.await, Ok(true))
            && let Err(e) = client.ack(&publish).await
        {
            tracing::warn!(topic = %publish.topic, "cannot acknowledge an MQTT message: {e}");
        }
    }
}

/// Stores one message durably; `true` once it may be acknowledged.
async fn store(task: Arc<Task>, publish: Publish, max_attempts: u32) -> bool {
    let defaults = Defaults {
        id: stratus_gateway::new_invocation_id(),
        source: format!("{}/{}", task.ctx.config.mqtt_url, publish.topic),
        kind: "dev.stratus.mqtt.message",
        subject: publish.topic.clone(),
    };
    let queue = task.ctx.dispatcher.queue();
    let stored = match from_payload(&publish.payload, &defaults) {
        Ok(event) => queue.enqueue(task.new_event(event, max_attempts)).await,
        Err(why) => {
            tracing::warn!(topic = %publish.topic, "malformed CloudEvent kept as a dead letter: {why}");
            let raw = defaults.wrap(None, &publish.payload);
            queue
                .bury(
                    task.new_event(raw, max_attempts),
                    0,
                    format!(
                        "malformed CloudEvent from MQTT topic {}: {why}",
                        publish.topic
                    ),
                )
                .await
        }
    };
    match stored {
        Ok(_) => {
            task.ctx.dispatcher.wake();
            true
        }
        Err(e) => {
            tracing::error!(topic = %publish.topic, "cannot queue an MQTT message: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn reads_broker_addresses() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883"),
            Ok(("127.0.0.1".into(), 1883))
        );
        assert_eq!(parse_url("mqtt://broker"), Ok(("broker".into(), 1883)));
        assert!(parse_url("http://x:1").is_err());
        assert!(parse_url("mqtt://x:port").is_err());
    }
}
