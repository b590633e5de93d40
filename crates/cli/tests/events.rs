//! Async invocations through the durable queue, end to end.

use std::time::{Duration, Instant};

use crate::common::*;

#[tokio::test]
async fn an_async_invocation_is_delivered_as_a_cloudevent_and_keeps_its_result() {
    let server = Server::start();
    let app = testbed_app("async", "worker", &[], "");
    server.deploy(app.path());
    let accepted = submit(&server, "worker", "/echo", "order 42").await;
    assert_eq!(accepted["state"], "queued");
    let id = accepted["id"].as_str().unwrap();
    let event = settled(&server, id).await;
    assert_eq!(event["state"], "succeeded", "{event}");
    assert_eq!(event["attempts"], 1);
    assert_eq!(event["result_status"], 200);
    assert_eq!(event["result"], "order 42");
    assert_eq!(event["queue"], "fn:async/worker");
}

#[tokio::test]
async fn the_handler_sees_the_cloudevent_headers() {
    let server = Server::start();
    let app = testbed_app("ce", "ce", &[], "");
    server.deploy(app.path());
    for (header, expected) in [
        ("ce-specversion", Some("1.0")),
        ("ce-type", Some("dev.stratus.invocation")),
        ("ce-source", Some("/v1/functions/ce/ce")),
        ("content-type", Some("text/plain")),
        ("ce-id", None),
        ("ce-time", None),
    ] {
        let accepted = submit(&server, "ce", &format!("/header?name={header}"), "").await;
        let id = accepted["id"].as_str().unwrap();
        let event = settled(&server, id).await;
        assert_eq!(event["state"], "succeeded", "{header}: {event}");
        let value = event["result"].as_str().unwrap();
        match (header, expected) {
            ("ce-id", _) => assert_eq!(value, id, "ce-id is the invocation id"),
            ("ce-time", _) => assert!(value.starts_with("20") && value.ends_with('Z'), "{value}"),
            (_, Some(expected)) => assert_eq!(value, expected, "{header}"),
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn a_failing_invocation_is_retried_then_dead_with_its_last_error() {
    let server = Server::start_with(&["--retry-base", "10ms", "--max-attempts", "3"]);
    let app = testbed_app("failing", "flaky", &[], "");
    server.deploy(app.path());
    let accepted = submit(&server, "flaky", "/panic", "").await;
    let event = settled(&server, accepted["id"].as_str().unwrap()).await;
    assert_eq!(event["state"], "dead", "{event}");
    assert_eq!(event["attempts"], 3);
    let error = event["last_error"].as_str().unwrap();
    assert!(
        error.contains("502") && error.contains("function_trapped"),
        "{error}"
    );
}

#[tokio::test]
async fn an_accepted_invocation_and_its_retry_state_survive_kill_9() {
    let mut server = Server::start_with(&["--retry-base", "1h"]);
    let app = testbed_app("durable", "later", &[], "");
    server.deploy(app.path());
    // `env` without a name answers 400: a failure, retried in an hour.
    let accepted = submit(&server, "later", "/env", "kept").await;
    let id = accepted["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, event) = server.admin_get(&format!("/v1/events/{id}")).await;
        if event["attempts"] == 1 && event["state"] == "queued" {
            break;
        }
        assert!(Instant::now() < deadline, "never failed once: {event}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill_9();
    let restarted = Server::start_in(&server.data_dir, &["--retry-base", "1h"]);
    let (status, event) = restarted.admin_get(&format!("/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (event["state"].as_str(), event["attempts"].as_u64()),
        (Some("queued"), Some(1)),
        "{event}"
    );
    assert!(
        event["last_error"].as_str().unwrap().contains("400"),
        "{event}"
    );
}

#[tokio::test]
async fn sigterm_lets_an_event_being_delivered_finish_and_settle() {
    let mut server = Server::start();
    let app = testbed_app("drain", "slow", &[], "");
    server.deploy(app.path());
    let accepted = submit(&server, "slow", "/sleep?ms=1500", "").await;
    let id = accepted["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, event) = server.admin_get(&format!("/v1/events/{id}")).await;
        if event["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {event}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.terminate().success());
    // Settled before the node stopped: not delivered again after a restart.
    let restarted = Server::start_in(&server.data_dir, &[]);
    let (_, event) = restarted.admin_get(&format!("/v1/events/{id}")).await;
    assert_eq!(
        (event["state"].as_str(), event["attempts"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{event}"
    );
    assert_eq!(event["result_status"], 200, "{event}");
}

#[tokio::test]
async fn invoke_async_prints_the_id_and_bad_modes_are_refused() {
    let server = Server::start();
    let app = testbed_app("cli", "clifn", &[], "");
    server.deploy(app.path());
    let out = server.cli(&[
        "invoke", "clifn", "--async", "--path", "/echo", "-d", "via cli",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(settled(&server, &id).await["result"], "via cli");

    let response = server
        .http
        .post(server.admin_url("/v1/functions/clifn/invocations?mode=later"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, body) = server.admin_get("/v1/events/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "event_not_found");
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven_through_the_cli() {
    let server = Server::start_with(&["--retry-base", "10ms", "--max-attempts", "2"]);
    let app = testbed_app("dlq", "dlqfn", &[], "");
    server.deploy(app.path());
    let accepted = submit(&server, "dlqfn", "/panic", "").await;
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&server, &id).await["state"], "dead");

    let out = server.cli(&["dlq", "ls", "dlqfn"]);
    let table = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("function_trapped"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&stdout(
        &server.cli(&["dlq", "ls", "dlqfn", "--format", "json"]),
    ))
    .unwrap();
    assert_eq!(json["events"][0]["attempts"], 2);

    // Redriven, it fails again (the function still panics) and comes back.
    let out = server.cli(&["dlq", "redrive", "dlqfn", "--id", &id]);
    assert_eq!(stdout(&out).trim(), "redriven: 1", "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, event) = server.admin_get(&format!("/v1/events/{id}")).await;
        if event["state"] == "dead"
            && event["attempts"] == 2
            && event["updated_at"] != json["events"][0]["updated_at"]
        {
            break;
        }
        assert!(Instant::now() < deadline, "not redriven: {event}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = server.cli(&["dlq", "redrive", "dlqfn", "--id", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no dead letter \"nope\""),
        "{}",
        stderr(&out)
    );

    // Replayed, a copy under a new id dies the same way; the attempts
    // show in the invocations, each a trap.
    let out = server.cli(&["replay", "dlqfn", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    let copy = said
        .trim()
        .strip_prefix(&format!("replayed {id} as "))
        .and_then(|rest| rest.strip_suffix(" (queued)"))
        .unwrap_or_else(|| panic!("{said}"))
        .to_owned();
    assert_eq!(settled(&server, &copy).await["state"], "dead");
    let out = server.cli(&["replay", "dlqfn", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no event \"nope\""),
        "{}",
        stderr(&out)
    );

    let listed = |args: &[&str]| {
        let mut all = vec!["invocations", "dlqfn", "--format", "json"];
        all.extend_from_slice(args);
        let out = server.cli(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        list["invocations"].as_array().unwrap().clone()
    };
    // 2 attempts, 2 after the redrive, 2 of the copy: all traps, by event.
    let deadline = Instant::now() + Duration::from_secs(20);
    while listed(&["--status", "error"]).len() < 6 {
        assert!(Instant::now() < deadline, "{:?}", listed(&[]));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let traps = listed(&["--status", "error", "--trigger", "event"]);
    assert_eq!(traps.len(), 6);
    assert!(traps.iter().all(|i| i["error"] == "function_trapped"));
    assert!(listed(&["--status", "ok"]).is_empty());
    let table = stdout(&server.cli(&["invocations", "dlqfn", "--limit", "2"]));
    assert_eq!(table.lines().count(), 3, "a header and two rows: {table}");
    let out = server.cli(&["invocations", "dlqfn", "--status", "bad"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not ok, error or a status code"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_event_published_to_a_queue_reaches_every_consumer_once() {
    let server = Server::start();
    let testbed = test_guest("testbed");
    let shop = AppDir::new(&format!(
        "[app]\nname = \"shop\"\n\n\
         [[function]]\nname = \"fulfil\"\ncomponent = \"{0}\"\ntriggers = [{{ queue = \"orders\" }}]\n\n\
         [[function]]\nname = \"audit\"\ncomponent = \"{0}\"\ntriggers = [{{ queue = \"orders\", max_attempts = 5 }}]\n",
        testbed.display()
    ));
    server.deploy(shop.path());
    let headers = [
        ("ce-id", "order-1"),
        ("ce-type", "com.example.order.created"),
    ];
    let (status, published) = publish(&server, "shop", "orders", &headers, "{\"order\":1}").await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["id"], "order-1");
    let mut consumers: Vec<&str> = published["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    consumers.sort_unstable();
    assert_eq!(consumers, ["shop/audit", "shop/fulfil"]);
    // Published again with the same id: stored once per consumer.
    assert_eq!(
        publish(&server, "shop", "orders", &headers, "{}").await.0,
        202
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.metric("stratus_events_succeeded_total").await < 2 {
        assert!(
            Instant::now() < deadline,
            "the consumers were not both reached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.metric("stratus_events_succeeded_total").await, 2);
    let event = settled(&server, "order-1").await;
    // The trigger's path is `/`: the testbed's default answer.
    assert_eq!(
        (event["state"].as_str(), event["result"].as_str()),
        (Some("succeeded"), Some("testbed"))
    );
}

#[tokio::test]
async fn publishing_to_a_queue_nobody_consumes_is_refused_and_bad_triggers_fail_deploy() {
    let server = Server::start();
    let (status, body) = publish(&server, "shop", "nowhere", &[], "x").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "no_consumer");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("queue = \"nowhere\"")
    );

    // A deploy error names the trigger and what is wrong with it.
    let cron = testbed_app("cron", "tick", &[], "triggers = [{ cron = \"0 * * * *\" }]");
    let error = server.deploy_err(cron.path());
    assert!(
        error.contains(
            "triggers[0]: cron \"0 * * * *\" is not a valid schedule: it has 5 fields; write six"
        ),
        "{error}"
    );
    let bad = testbed_app("bad", "bad", &[], "triggers = [{ queue = \"Not A Name\" }]");
    let error = server.deploy_err(bad.path());
    assert!(error.contains("is not a queue name"), "{error}");
}

#[tokio::test]
async fn a_busy_function_delays_events_without_using_their_attempts() {
    let server = Server::start_with(&["--queue-timeout", "50ms", "--max-attempts", "1"]);
    let app = testbed_app("busy", "busy", &[], "max_concurrency = 1");
    server.deploy(app.path());
    let mut ids = Vec::new();
    for _ in 0..4 {
        let accepted = submit(&server, "busy", "/sleep?ms=200", "").await;
        ids.push(accepted["id"].as_str().unwrap().to_string());
    }
    // With one attempt each, a 429 counted as a failure would kill them.
    for id in &ids {
        let event = settled(&server, id).await;
        assert_eq!(event["state"], "succeeded", "{event}");
    }
    assert!(server.metric("stratus_events_busy_total").await > 0);
}
