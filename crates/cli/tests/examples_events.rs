//! The event-driven example apps, end to end: `examples/payments` (a queue
//! consumer that is idempotent by `ce-id`, with declines in the dead-letter
//! queue) and `examples/iot-telemetry` (MQTT → ingest → queue → alerts).

use std::time::{Duration, Instant};

use crate::common::*;

const ORDER: &str = r#"{"amount":1250,"currency":"EUR","account":"acc-1"}"#;

#[tokio::test]
async fn payments_are_idempotent_by_ce_id_and_declines_end_in_the_dlq() {
    example_guest("payments");
    let server = Server::start_with(&["--retry-base", "10ms"]);
    server.deploy(&repo_root().join("examples/payments"));

    // The same event published twice is one event, charged once.
    for _ in 0..2 {
        let (status, body) = publish(
            &server,
            "payments",
            "payments",
            &[("ce-id", "order-42"), ("content-type", "application/json")],
            ORDER,
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    let event = settled(&server, "order-42").await;
    assert_eq!(
        (event["state"].as_str(), event["attempts"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    let charged: serde_json::Value =
        serde_json::from_str(event["result"].as_str().unwrap()).unwrap();
    let transaction = charged["transaction"].as_str().unwrap().to_string();
    assert_eq!(charged["idempotency_key"], "order-42");

    // A direct call with the same key yields the same transaction, which a
    // payment processor deduplicates.
    let direct = server
        .http
        .post(server.url("/payments"))
        .header("idempotency-key", "order-42")
        .body(ORDER)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(json(direct).await["transaction"], transaction.as_str());

    // A declined card fails every attempt and waits in the DLQ.
    let declined = r#"{"amount":990,"currency":"USD","account":"acc-declined"}"#;
    publish(
        &server,
        "payments",
        "payments",
        &[("ce-id", "order-43"), ("content-type", "application/json")],
        declined,
    )
    .await;
    let dead = settled(&server, "order-43").await;
    assert_eq!(
        (dead["state"].as_str(), dead["attempts"].as_u64()),
        (Some("dead"), Some(3)),
        "{dead}"
    );
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("card_declined"),
        "{dead}"
    );
    let listed = server.cli(&["dlq", "ls", "payments"]);
    assert!(stdout(&listed).contains("order-43"), "{}", stdout(&listed));

    // An async invocation from the CLI is charged under its own id.
    let out = server.cli(&["invoke", "payments", "--async", "--data", ORDER]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).split_whitespace().last().unwrap().to_string();
    let event = settled(&server, &id).await;
    assert_eq!(event["state"], "succeeded", "{event}");
}

#[tokio::test]
async fn iot_readings_over_mqtt_raise_alerts_through_a_queue() {
    example_guest("iot_ingest");
    let server = Server::start_with(&["--retry-base", "10ms"]);
    server.deploy(&repo_root().join("examples/iot-telemetry"));
    a_trigger_running(&server).await;
    let device = unique("dev-");
    mqtt_publish(
        &format!("sensors/{device}/telemetry"),
        &[
            r#"{"readings":[{"temperature":21.5,"humidity":40},{"temperature":31.2}]}"#,
            r#"{"readings":[{"temperature":999}]}"#,
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let found = function_events(&server, "alerts")
            .await
            .into_iter()
            .find(|e| {
                e["state"] == "succeeded" && e["result"].as_str().unwrap_or("").contains(&device)
            });
        if let Some(alert) = found {
            break alert;
        }
        assert!(Instant::now() < deadline, "no alert for {device}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        alert["id"].as_str().unwrap().starts_with("alert-"),
        "{alert}"
    );
    // The impossible reading is refused (422) twice, then kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, dead) = server.admin_get("/v1/functions/ingest/dead-letters").await;
        let found = dead["events"].as_array().unwrap().iter().any(|e| {
            e["attempts"] == 2
                && e["last_error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("invalid_reading")
        });
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter: {dead}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
