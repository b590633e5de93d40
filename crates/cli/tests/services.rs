//! In-process services: a function reaching the node itself over
//! `wasi:http`, e.g. publishing with `POST http://queue.svc/<queue>`.

use crate::common::*;

/// A testbed function under `/pub/...` that publishes (or fetches) from
/// inside the sandbox (see `publish_from_guest`).
fn publisher() -> AppDir {
    testbed_app("front", "checkout", &["/pub/..."], "")
}

#[tokio::test]
async fn a_function_publishes_to_a_queue_another_function_consumes() {
    let server = Server::start();
    // The publisher and, in the same app, a function consuming `orders`.
    let app = AppDir::new(&format!(
        "[app]\nname = \"front\"\n\n\
         [[function]]\nname = \"checkout\"\ncomponent = \"{0}\"\nroutes = [\"/pub/...\"]\n\n\
         [[function]]\nname = \"fulfil\"\ncomponent = \"{0}\"\ntriggers = [{{ queue = \"orders\" }}]\n",
        test_guest("testbed").display()
    ));
    server.deploy(app.path());

    let (status, body) =
        publish_from_guest(&server, "queue=orders&id=order-7", "{\"order\":7}").await;
    assert_eq!(status, 202, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({ "id": "order-7", "app": "front", "queue": "orders", "consumers": 1 })
    );

    let event = settled(&server, "order-7").await;
    assert_eq!(event["state"], "succeeded", "{event}");
    assert_eq!(event["queue"], "fn:front/fulfil");
    assert!(event.get("from").is_none(), "its own app's event: {event}");
    assert_eq!(event["result"], "testbed", "{event}");

    // Without a `ce-id` the service makes one up and says which.
    let (status, body) = publish_from_guest(&server, "queue=orders", "{}").await;
    assert_eq!(status, 202, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = answer["id"].as_str().unwrap();
    assert!(!id.is_empty() && id != "order-7", "{answer}");
    assert_eq!(settled(&server, id).await["state"], "succeeded");
}

#[tokio::test]
async fn publishing_from_a_function_is_refused_without_consumer_with_a_bad_name_or_too_much_data() {
    let server = Server::start();
    server.deploy(publisher().path());
    let (status, body) = publish_from_guest(&server, "queue=nowhere", "x").await;
    assert_eq!(status, 404, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["error"]["code"], "no_consumer", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("queue = \"nowhere\""), "{message}");

    let (status, body) = publish_from_guest(&server, "queue=Not.A.Name", "x").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a queue name"), "{body}");

    // Service calls are buffered: past 1 MiB the request itself fails.
    let large = "x".repeat((1 << 20) + 1);
    let (status, body) = publish_from_guest(&server, "queue=nowhere", &large).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestBodySize"), "{body}");
    let (status, body) = publish_from_guest(&server, "queue=nowhere", &large[1..]).await;
    assert_eq!(status, 404, "exactly 1 MiB is accepted: {body}");
}

#[tokio::test]
async fn outbound_requests_to_any_other_host_are_still_denied() {
    let server = Server::start();
    server.deploy(publisher().path());
    // A real host, a `.svc` host no service answers, and a real address
    // that is listening (so a refusal is the sandbox's, not the network's).
    let listening = server.admin.trim_start_matches("http://").to_string();
    for to in ["example.com", "nothing.svc", listening.as_str()] {
        let response = server.get(&format!("/pub/fetch?to={to}")).await;
        assert_eq!(response.status(), 200, "{to}");
        let text = response.text().await.unwrap();
        assert!(text.contains("HttpRequestDenied"), "{to}: {text}");
    }
}

#[tokio::test]
async fn allowed_outbound_lets_matching_requests_out_and_denies_the_rest() {
    let server = Server::start();
    // A real peer on loopback: the admin API's /healthz answers 200.
    let admin = server.admin.trim_start_matches("http://").to_string();
    let port = admin.rsplit(':').next().unwrap().to_string();
    let app = testbed_app(
        "egress",
        "egress",
        &["/egress/..."],
        &format!("allowed_outbound = [\"http://127.0.0.1:{port}\", \"http://*.invalid:*\"]"),
    );
    server.deploy(app.path());
    let fetch = |to: String| {
        let server = &server;
        async move {
            let response = server.get(&format!("/egress/fetch?to={to}")).await;
            assert_eq!(response.status(), 200, "{to}");
            response.text().await.unwrap()
        }
    };
    // The allowed address is reached (its `/` answers 404, a real answer),
    // and the request is metered with the invocation.
    let response = server.get(&format!("/egress/fetch?to={admin}")).await;
    let id = invocation_id(&response);
    let reached = response.text().await.unwrap();
    assert!(reached.starts_with("reached: "), "{reached}");
    let detail = server.invocation(&id).await;
    assert_eq!(detail["outbound_requests"], 1, "{detail}");
    assert!(detail["outbound_ms"].as_f64().unwrap() > 0.0, "{detail}");
    // The same host on another port, and another name for it, are not.
    for to in ["127.0.0.1:1".to_string(), format!("localhost:{port}")] {
        let denied = fetch(to.clone()).await;
        assert!(denied.contains("HttpRequestDenied"), "{to}: {denied}");
    }
    // A wildcard pattern lets a subdomain out (to a name that cannot
    // resolve: the error is the network's, not a denial).
    let lookup = fetch("api.example.invalid:8080".into()).await;
    assert!(!lookup.contains("HttpRequestDenied"), "{lookup}");
}
