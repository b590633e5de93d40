//! Containment (issue 11, item 8): no broker message wedges a trigger or
//! is retried for nothing. A message larger than the function's `max_body`
//! is a dead letter `body_too_large`, including one past the MQTT client's
//! packet limit (which used to drop the connection on every redelivery);
//! an event whose attributes cannot be headers is dead at once; a
//! neighbour in another app keeps answering throughout. Against the real
//! brokers on their loopback ports, like `triggers.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// Publishes QoS 1 messages of any size to Mosquitto (the shared helper's
/// client keeps rumqttc's 10 KiB default) and waits for their PUBACKs.
async fn mqtt_send(topic: &str, payloads: Vec<Vec<u8>>) {
    let mut options = rumqttc::MqttOptions::new(unique("test-big-"), "127.0.0.1", 1883);
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(32 << 20, 32 << 20);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
    let count = payloads.len();
    for payload in payloads {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked < count {
        assert!(Instant::now() < deadline, "the broker did not acknowledge");
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => acked += 1,
            Ok(Err(e)) => panic!("publishing to {topic}: {e}"),
            _ => {}
        }
    }
}

/// A structured CloudEvent with this id.
fn cloudevent(id: &str) -> Vec<u8> {
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/t","type":"t"}}"#).into_bytes()
}

/// Polls a function's events until a dead one's error contains every
/// needle.
async fn dead_with(server: &Server, function: &str, needles: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = function_events(server, function).await;
        if let Some(dead) = events.iter().find(|e| {
            e["state"] == "dead"
                && e["last_error"]
                    .as_str()
                    .is_some_and(|error| needles.iter().all(|n| error.contains(n)))
        }) {
            return dead.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter with {needles:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `/readyz` shows `function`'s trigger running and nothing
/// retrying.
async fn running_again(server: &Server, function: &str) {
    readyz_until(server, |b| {
        let triggers = b["triggers"].as_array().cloned().unwrap_or_default();
        triggers
            .iter()
            .any(|t| t["function"] == function && t["state"] == "running")
            && triggers.iter().all(|t| t["state"] != "retrying")
    })
    .await;
}

/// A function of another app asked every 20 ms while a test runs: what it
/// answered each time (0 for no answer within 5 s).
struct Neighbour {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<u16>>,
}

impl Neighbour {
    async fn start(server: &Server) -> Neighbour {
        let app = testbed_app("neighbour", "next-door", &["/next-door"], "");
        server.deploy(app.path());
        let (http, url) = (server.http.clone(), server.url("/next-door"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let answer = http.get(&url).timeout(Duration::from_secs(5)).send().await;
                answers.push(answer.map_or(0, |r| r.status().as_u16()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        });
        Neighbour { stop, task }
    }

    /// Asserts the neighbour answered 200 every time it was asked.
    async fn answered_throughout(self) {
        self.stop.store(true, Ordering::Relaxed);
        let answers = self.task.await.unwrap();
        assert!(answers.len() >= 5, "asked only {} times", answers.len());
        assert!(
            answers.iter().all(|&s| s == 200),
            "the neighbour did not always answer 200: {answers:?}"
        );
    }
}

#[tokio::test]
async fn an_mqtt_message_past_the_client_limit_is_a_dead_letter_and_the_trigger_runs_again() {
    // A server node: persistent session, so the broker redelivers what the
    // node did not acknowledge — before, on every reconnect, for ever.
    let server = Server::start();
    let neighbour = Neighbour::start(&server).await;
    let topic = unique("stratus-big/");
    let app = testbed_app(
        "bigmqtt",
        "big-sensor",
        &[],
        &format!("max_body = \"8MiB\"\ntriggers = [{{ mqtt = \"{topic}\", max_attempts = 5 }}]"),
    );
    server.deploy(app.path());
    running_again(&server, "bigmqtt/big-sensor").await;

    let size = 9 << 20;
    mqtt_send(&topic, vec![vec![b'x'; size]]).await;
    let dead = dead_with(
        &server,
        "big-sensor",
        &["body_too_large", &format!("{size} bytes")],
    )
    .await;
    assert_eq!(dead["attempts"], 0, "never delivered: {dead}");
    // It went past the client's limit: the connection was taken down once
    // to let it in, and the trigger said so.
    assert!(
        server.logs("reconnecting to take it once").await,
        "no oversized-message reconnect logged"
    );
    running_again(&server, "bigmqtt/big-sensor").await;

    // The session is clear: the next message is delivered.
    let id = unique("after-big-");
    mqtt_send(&topic, vec![cloudevent(&id)]).await;
    let event = arrived(&server, &id).await;
    assert_eq!(event["state"], "succeeded", "{event}");
    // The big message was buried once, not again on each reconnect.
    let buried = function_events(&server, "big-sensor")
        .await
        .iter()
        .filter(|e| e["state"] == "dead")
        .count();
    assert_eq!(buried, 1);
    neighbour.answered_throughout().await;
}

#[tokio::test]
async fn broker_messages_larger_than_max_body_are_dead_letters_body_too_large() {
    let js = JetStream::connect().await;
    let stream = unique("STRATUS_BIG");
    js.create_stream(&stream).await;

    let server = Server::start();
    let neighbour = Neighbour::start(&server).await;
    let topic = unique("stratus-small/");
    let subject = unique("stratus.small.");
    let app = testbed_app(
        "smallbody",
        "small",
        &[],
        &format!(
            "max_body = \"1KiB\"\ntriggers = [{{ mqtt = \"{topic}\", max_attempts = 5 }}, \
             {{ nats = \"{subject}\", max_attempts = 5 }}, \
             {{ jetstream = {{ stream = \"{stream}\", consumer = \"small\" }}, max_attempts = 5 }}]"
        ),
    );
    server.deploy(app.path());
    readyz_until(&server, |b| {
        b["triggers"].as_array().is_some_and(|t| {
            t.iter()
                .filter(|t| t["function"] == "smallbody/small" && t["state"] == "running")
                .count()
                == 3
        })
    })
    .await;
    let four_kib = vec![b'x'; 4096];

    // MQTT: refused at intake, acknowledged, kept with the reason.
    let fits = unique("fits-");
    mqtt_send(&topic, vec![four_kib.clone(), cloudevent(&fits)]).await;
    let dead = dead_with(
        &server,
        "small",
        &["message from MQTT topic", "body_too_large", "4096 bytes"],
    )
    .await;
    assert_eq!(dead["attempts"], 0, "{dead}");
    // What fits is delivered as ever, after the big one.
    assert_eq!(arrived(&server, &fits).await["state"], "succeeded");

    // NATS: the same; a request learns the dead letter's id.
    let client = async_nats::connect(NATS).await.unwrap();
    let reply = client
        .request(subject.clone(), four_kib.clone().into())
        .await
        .unwrap();
    let id = String::from_utf8(reply.payload.to_vec()).unwrap();
    let dead = dead_letter(&server, "small", &id).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains("message from NATS subject") && error.contains("body_too_large"),
        "{error}"
    );
    assert_eq!(dead["attempts"], 0, "{dead}");

    // JetStream: never delivered, buried and acknowledged, so the stream
    // forgets it instead of redelivering it max_attempts times.
    js.publish(format!("{stream}.big"), &four_kib).await;
    let dead = dead_letter(&server, "small", &format!("{stream}-1")).await;
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("body_too_large"),
        "{dead}"
    );
    assert_eq!(dead["attempts"], 0, "{dead}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = js.consumer(&stream, "small").await;
        if info
            .as_ref()
            .is_some_and(|i| i.ack_floor == 1 && i.ack_pending == 0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "not acknowledged: {info:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    js.delete_stream(&stream).await;
    neighbour.answered_throughout().await;
}

#[tokio::test]
async fn an_event_queued_before_max_body_was_lowered_is_dead_at_once() {
    // One slot and no waiting for it: while a slow request holds the slot
    // the queued event is shed and waits, uncounted.
    let server = Server::start_with(&["--queue-timeout", "10ms"]);
    let manifest = |max_body: &str| {
        testbed_app(
            "lowered",
            "consumer",
            &["/consumer/..."],
            &format!(
                "max_body = \"{max_body}\"\nmax_concurrency = 1\n\
                 triggers = [{{ queue = \"jobs\", max_attempts = 5 }}]"
            ),
        )
    };
    server.deploy(manifest("8KiB").path());
    let (http, url) = (server.http.clone(), server.url("/consumer/sleep?ms=8000"));
    let slow = tokio::spawn(async move { http.get(url).send().await.unwrap().status() });
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("/consumer/count").await.status() != 429 {
        assert!(
            Instant::now() < deadline,
            "the slow request never took the slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, published) = publish(&server, "lowered", "jobs", &[], &"x".repeat(4096)).await;
    assert_eq!(status, 202, "{published}");
    let id = published["id"].as_str().unwrap().to_owned();
    // The event waits in the queue while the function now takes 1 KiB.
    server.deploy(manifest("1KiB").path());
    let dead = dead_letter(&server, "consumer", &id).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("body_too_large: the event's data is 4096 bytes, more than the 1024"),
        "{error}"
    );
    assert_eq!(dead["attempts"], 0, "never delivered: {dead}");
    assert_eq!(slow.await.unwrap(), 200);
}

#[tokio::test]
async fn an_event_whose_id_cannot_be_a_header_is_dead_at_once() {
    let server = Server::start();
    let neighbour = Neighbour::start(&server).await;
    let topic = unique("stratus-ctl/");
    let subject = unique("stratus.ctl.");
    let app = testbed_app(
        "ctlchars",
        "ctl",
        &[],
        &format!(
            "triggers = [{{ mqtt = \"{topic}\", max_attempts = 5 }}, \
             {{ nats = \"{subject}\", max_attempts = 5 }}]"
        ),
    );
    server.deploy(app.path());
    readyz_until(&server, |b| {
        b["triggers"].as_array().is_some_and(|t| {
            t.iter()
                .filter(|t| t["function"] == "ctlchars/ctl" && t["state"] == "running")
                .count()
                == 2
        })
    })
    .await;

    // A newline in a structured CloudEvent's id (JSON "\n").
    mqtt_send(
        &topic,
        vec![br#"{"specversion":"1.0","id":"bad\nid","source":"/t","type":"t"}"#.to_vec()],
    )
    .await;
    let dead = dead_with(
        &server,
        "ctl",
        &[
            "malformed CloudEvent from MQTT topic",
            r#"its ce-id "bad\nid" cannot be an HTTP header value"#,
        ],
    )
    .await;
    assert_eq!(
        (dead["attempts"].as_u64(), dead["max_attempts"].as_u64()),
        (Some(0), Some(5))
    );

    // A bell in one read from NATS in structured mode.
    let client = async_nats::connect(NATS).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("content-type", "application/cloudevents+json");
    let reply = client
        .request_with_headers(
            subject.clone(),
            headers,
            br#"{"specversion":"1.0","id":"bell\u0007","source":"/t","type":"t"}"#
                .to_vec()
                .into(),
        )
        .await
        .unwrap();
    let id = String::from_utf8(reply.payload.to_vec()).unwrap();
    let dead = dead_letter(&server, "ctl", &id).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains(r#"its ce-id "bell\u{7}" cannot be an HTTP header value"#),
        "{error}"
    );
    assert_eq!(dead["attempts"], 0, "{dead}");

    // And the function is fine: a good event is delivered once.
    let good = unique("good-");
    mqtt_send(&topic, vec![cloudevent(&good)]).await;
    let event = arrived(&server, &good).await;
    assert_eq!(
        (event["state"].as_str(), event["attempts"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    neighbour.answered_throughout().await;
}
