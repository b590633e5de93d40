//! MQTT triggers: QoS 1 subscriptions, one connection per trigger.
//!
//! A message is acknowledged to the broker (PUBACK) only once its event is
//! durable in the function's queue; until then the broker still owns it and
//! sends it again after a reconnect. Acknowledgements go out in the order
//! the messages came, as MQTT 3.1.1 asks, while the stores behind them run
//! concurrently (and share group commits).
//!
//! A message larger than the function's `max_body` is acknowledged and kept
//! as a dead letter (`body_too_large`), never retried. rumqttc reads a
//! packet only up to the connection's limit, set just above `max_body`;
//! one above it ends the connection before it is read, and the broker,
//! which still owns it, would send it again on every reconnect. So that
//! error raises the limit to that packet's size (MQTT bounds it at
//! 256 MiB) for the next connection only: the message arrives, is buried
//! and acknowledged, and the trigger is running again.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Packet, Publish, QoS, StateError,
    SubscribeReasonCode,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::inbound::{Defaults, from_payload};
use crate::{Backoff, Task, TriggerState};

/// Messages stored but not yet acknowledged, per trigger.
const IN_FLIGHT: usize = 256;
/// MQTT's bound on a packet's remaining length (256 MiB): no broker sends
/// more.
const MQTT_MAX_PACKET: usize = 268_435_455;
/// What a PUBLISH holds besides its payload, at most: the topic (64 KiB and
/// its 2-byte length) and the packet id.
const PUBLISH_OVERHEAD: usize = 65_535 + 2 + 2;
/// Largest packet sent: subscriptions and acknowledgements, nothing more.
const MAX_OUTGOING: usize = 1 << 20;

/// The largest packet the trigger reads in the normal run of things: any
/// message the function can take, with its topic.
fn incoming_limit(task: &Task) -> usize {
    let max_body = task
        .ctx
        .invoker
        .live()
        .function(&task.app, &task.function)
        .map_or(stratus_manifest::DEFAULT_MAX_BODY.bytes(), |f| f.max_body);
    usize::try_from(max_body)
        .unwrap_or(usize::MAX)
        .saturating_add(PUBLISH_OVERHEAD)
        .min(MQTT_MAX_PACKET)
}

/// The size of a packet rumqttc refused as larger than its limit.
fn oversized(error: &ConnectionError) -> Option<usize> {
    match error {
        ConnectionError::MqttState(StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(size),
        )) => Some(*size),
        _ => None,
    }
}

/// A broker address, `mqtt://[user[:password]@]host[:port]` (port 1883
/// when absent; `tcp://` is read the same). Parsed as a URL, so IPv6
/// literals (`mqtt://[::1]:1883`) and percent-encoded credentials work.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct MqttAddress {
    /// As rumqttc joins it with the port (`{host}:{port}`): an IPv6
    /// literal keeps its brackets.
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl MqttAddress {
    pub fn parse(text: &str) -> Result<MqttAddress, String> {
        let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        match url.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(format!(
                    "{text:?}: TLS to the broker is not supported yet; use mqtt://"
                ));
            }
            other => return Err(format!("{text:?} is not an mqtt:// address ({other}://)")),
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => return Err(format!("{text:?} names no host")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?}: an MQTT address is only mqtt://host:port, without a path"
            ));
        }
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("{text:?}: the credentials are not UTF-8"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        Ok(MqttAddress {
            host,
            port: url.port().unwrap_or(1883),
            credentials,
        })
    }
}

/// Without the password: the address is shown in `/readyz`, logs and the
/// `source` of the events it brings.
impl std::fmt::Display for MqttAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.credentials {
            Some((user, _)) => write!(f, "mqtt://{user}@{}:{}", self.host, self.port),
            None => write!(f, "mqtt://{}:{}", self.host, self.port),
        }
    }
}

impl std::fmt::Debug for MqttAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

pub(crate) async fn run(task: Task, topic: String, max_attempts: u32) {
    let task = Arc::new(task);
    task.set(TriggerState::Starting, None);
    let config = &task.ctx.config;
    let address = match MqttAddress::parse(&config.mqtt_url) {
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
    let mut options = MqttOptions::new(client_id, address.host.clone(), address.port);
    if let Some((user, password)) = &address.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(!config.persistent_sessions)
        .set_manual_acks(true)
        .set_max_packet_size(incoming_limit(&task), MAX_OUTGOING);
    let (client, mut events) = AsyncClient::new(options, 64);
    let (order_tx, order_rx) = mpsc::channel::<(Publish, JoinHandle<bool>)>(IN_FLIGHT);
    let acker = tokio::spawn(acknowledge_in_order(client.clone(), order_rx));
    let _stop_acker = AbortOnDrop(acker);

    let url = address.to_string();
    let health = &task.ctx.health;
    health.mqtt_connection(&task.label, &url, false, Some("connecting".into()));
    let mut backoff = Backoff::new();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                health.mqtt_connection(&task.label, &url, true, None);
                // A limit raised for one oversized message served the
                // connection just made; the next one is back to normal.
                events
                    .mqtt_options
                    .set_max_packet_size(incoming_limit(&task), MAX_OUTGOING);
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
                // The acknowledgement needs the packet id, not the payload:
                // messages waiting for their turn hold no data.
                let mut ack = publish.clone();
                ack.payload = bytes::Bytes::new();
                let store = tokio::spawn(store(task.clone(), url.clone(), publish, max_attempts));
                if order_tx.send((ack, store)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let why = match oversized(&e) {
                    Some(size) => {
                        events.mqtt_options.set_max_packet_size(size, MAX_OUTGOING);
                        format!(
                            "a message on {topic:?} ({size} bytes with its topic) is larger than \
                             the function accepts; reconnecting to take it once and keep it as \
                             a dead letter"
                        )
                    }
                    None => {
                        health.mqtt_connection(&task.label, &url, false, Some(e.to_string()));
                        format!("broker {url}: {e}")
                    }
                };
                task.set(TriggerState::Retrying, Some(why));
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
async fn store(task: Arc<Task>, broker: String, publish: Publish, max_attempts: u32) -> bool {
    let defaults = Defaults {
        id: stratus_invoke::new_invocation_id(),
        source: format!("{broker}/{}", publish.topic),
        kind: "dev.stratus.mqtt.message",
        subject: publish.topic.clone(),
    };
    let queue = task.ctx.dispatcher.queue();
    let (event, dead) = match from_payload(&publish.payload, &defaults) {
        Ok(event) => match task.check_size(event.data.len()) {
            Ok(()) => (event, None),
            Err(why) => (
                event,
                Some(format!("message from MQTT topic {}: {why}", publish.topic)),
            ),
        },
        Err(why) => (
            defaults.wrap(None, &publish.payload),
            Some(format!(
                "malformed CloudEvent from MQTT topic {}: {why}",
                publish.topic
            )),
        ),
    };
    let stored = match dead {
        None => queue.enqueue(task.new_event(event, max_attempts)).await,
        Some(reason) => {
            tracing::warn!(topic = %publish.topic, "kept as a dead letter: {reason}");
            queue
                .bury(task.new_event(event, max_attempts), 0, reason)
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
    use super::{ConnectionError, MqttAddress, StateError, oversized};

    type Parts = (String, u16, Option<(String, String)>);

    fn parts(text: &str) -> Result<Parts, String> {
        MqttAddress::parse(text).map(|a| (a.host, a.port, a.credentials))
    }

    #[test]
    fn reads_broker_addresses() {
        assert_eq!(
            parts("mqtt://127.0.0.1:1883"),
            Ok(("127.0.0.1".into(), 1883, None))
        );
        assert_eq!(parts("mqtt://broker"), Ok(("broker".into(), 1883, None)));
        assert_eq!(
            parts("tcp://broker:1884/"),
            Ok(("broker".into(), 1884, None))
        );
        // rumqttc joins host and port with a colon: the brackets stay.
        assert_eq!(parts("mqtt://[::1]:1883"), Ok(("[::1]".into(), 1883, None)));
        assert_eq!(
            parts("mqtt://dev%40ice:p%3Ass@broker:1883"),
            Ok((
                "broker".into(),
                1883,
                Some(("dev@ice".into(), "p:ss".into()))
            ))
        );
        assert_eq!(
            parts("mqtt://user@broker"),
            Ok(("broker".into(), 1883, Some(("user".into(), String::new()))))
        );
        for bad in [
            "http://x:1",
            "mqtt://x:port",
            "mqtt://x:70000",
            "mqtt://",
            "mqtt://x/topic",
            "mqtts://x",
            "broker:1883",
            "",
        ] {
            assert!(MqttAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let address = MqttAddress::parse("mqtt://user:hunter2@[::1]:1883").expect("valid");
        assert_eq!(address.to_string(), "mqtt://user@[::1]:1883");
        assert!(!format!("{address:?}").contains("hunter2"));
    }

    #[test]
    fn only_a_packet_over_the_limit_counts_as_oversized() {
        let over = ConnectionError::MqttState(StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(9 << 20),
        ));
        assert_eq!(oversized(&over), Some(9 << 20));
        let refused = ConnectionError::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(oversized(&refused), None);
    }
}
