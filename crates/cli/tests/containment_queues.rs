//! Containment of queues (issue 11, item 5): a named queue belongs to its
//! app. Apps `a` and `b` each have an `orders` queue (consumed by `fulfil`,
//! and in `b` also by `audit`); `a` publishes from inside a function with
//! `POST http://queue.svc/[<app>/]<queue>`. Another app's queue is reached
//! only through a grant in the consuming function's trigger
//! (`from = ["a"]`), ids are de-duplicated per app, and a queue without a
//! grant answers exactly like one that does not exist. A neighbour in a
//! third app keeps answering throughout, against the real binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// App `name`: `front` (testbed at `/<name>/...`, the publisher) and
/// `fulfil` consuming `orders` with `fulfil_trigger`'s extra keys; `b` also
/// has `audit` on `orders` without any grant.
fn app(name: &str, fulfil_trigger: &str) -> AppDir {
    let testbed = test_guest("testbed");
    let audit = if name == "b" {
        format!(
            "\n[[function]]\nname = \"audit\"\ncomponent = \"{}\"\ntriggers = [{{ queue = \"orders\" }}]\n",
            testbed.display()
        )
    } else {
        String::new()
    };
    AppDir::new(&format!(
        "[app]\nname = \"{name}\"\n\n\
         [[function]]\nname = \"front\"\ncomponent = \"{0}\"\nroutes = [\"/{name}/...\"]\n\n\
         [[function]]\nname = \"fulfil\"\ncomponent = \"{0}\"\ntriggers = [{{ queue = \"orders\"{fulfil_trigger} }}]\n{audit}",
        testbed.display()
    ))
}

/// Has `app`'s `front` POST `data` to `http://queue.svc/<to>` with `ce-id`
/// `id`: the status and JSON answer it got back.
async fn publish_as(server: &Server, app: &str, to: &str, id: &str) -> (u16, serde_json::Value) {
    let response = server
        .http
        .post(server.url(&format!("/{app}/publish?queue={to}&id={id}")))
        .header("content-type", "application/json")
        .body(format!("{{\"to\":\"{to}\"}}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// The events of `function` (as `app/function`) with this id, as
/// (`from`, state), sorted; an empty `from` is the function's own app.
async fn copies(server: &Server, function: &str, id: &str) -> Vec<(String, String)> {
    // `app/function`, with its slash escaped to stay one path segment.
    let function = function.replace('/', "%2F");
    let mut found: Vec<(String, String)> = function_events(server, &function)
        .await
        .iter()
        .filter(|e| e["id"] == id)
        .map(|e| {
            (
                e["from"].as_str().unwrap_or("").to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Waits until `function`'s events with `id` are exactly `want`, all
/// delivered: (`from`, "succeeded") each.
async fn delivered(server: &Server, function: &str, id: &str, want: &[&str]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|from| (from.to_string(), "succeeded".to_string()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = copies(server, function, id).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{function} has {got:?} for {id}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks the neighbour (testbed at `/n/...`, app `neighbour`) again and
/// again until stopped; counts the answers and the ones that were not 200.
struct Neighbour {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Neighbour {
    fn start(server: &Server) -> Neighbour {
        let (stop, answered, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (http, url) = (server.http.clone(), server.url("/n/echo"));
        let task = tokio::spawn({
            let (stop, answered, failed) = (stop.clone(), answered.clone(), failed.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = matches!(http.get(&url).send().await, Ok(r) if r.status() == 200);
                    answered.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    // Paces the probe; nothing waits on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Neighbour {
            stop,
            answered,
            failed,
            task,
        }
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let (answered, failed) = (
            self.answered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        assert!(answered > 0, "the neighbour was never asked");
        assert_eq!(failed, 0, "the neighbour failed {failed} of {answered}");
    }
}

#[tokio::test]
async fn queues_belong_to_their_app_and_other_apps_need_a_grant() {
    let server = Server::start();
    let neighbour_app = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour_app.path());
    let neighbour = Neighbour::start(&server);
    let (a, b) = (app("a", ""), app("b", ""));
    server.deploy(a.path());
    server.deploy(b.path());

    // a's `orders` is a's own: only a's consumer gets a's event. (Every
    // copy is stored before the 202, so b having none now is final.)
    let (status, answer) = publish_as(&server, "a", "orders", "order-x").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (&answer["app"], &answer["queue"], &answer["consumers"]),
        (&"a".into(), &"orders".into(), &1.into()),
        "{answer}"
    );
    delivered(&server, "a/fulfil", "order-x", &[""]).await;
    assert!(copies(&server, "b/fulfil", "order-x").await.is_empty());
    assert!(copies(&server, "b/audit", "order-x").await.is_empty());

    // b publishing the same ce-id to its own `orders` is a new event:
    // de-duplication is per app.
    let (status, answer) = publish_as(&server, "b", "orders", "order-x").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["consumers"], 2, "{answer}");
    delivered(&server, "b/fulfil", "order-x", &[""]).await;
    delivered(&server, "b/audit", "order-x", &[""]).await;
    // Within a, the id still de-duplicates.
    assert_eq!(publish_as(&server, "a", "orders", "order-x").await.0, 202);
    assert_eq!(copies(&server, "a/fulfil", "order-x").await.len(), 1);

    // Without a grant, b's `orders` answers exactly like a queue b does not
    // have and an app that does not exist, and nothing is stored.
    let (status, refused) = publish_as(&server, "a", "b/orders", "order-z").await;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["error"]["code"], "no_consumer", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("from = [\"a\"]"),
        "the refusal says what grants it: {message}"
    );
    let (status, missing_queue) = publish_as(&server, "a", "b/invoices", "order-z").await;
    assert_eq!(status, 404, "{missing_queue}");
    assert_eq!(
        missing_queue["error"]["message"]
            .as_str()
            .unwrap()
            .replace("invoices", "orders"),
        message
    );
    assert_eq!(missing_queue["error"]["code"], refused["error"]["code"]);
    let (status, missing_app) = publish_as(&server, "a", "ghost/orders", "order-z").await;
    assert_eq!(status, 404, "{missing_app}");
    assert_eq!(
        missing_app["error"]["message"]
            .as_str()
            .unwrap()
            .replace("\"ghost\"", "\"b\""),
        message
    );
    assert!(copies(&server, "b/fulfil", "order-z").await.is_empty());
    assert!(copies(&server, "b/audit", "order-z").await.is_empty());

    // b grants a on `fulfil` (not on `audit`): a's events reach fulfil
    // only, marked as a's, and a's order-x sits beside b's own order-x.
    let b_granting = app("b", ", from = [\"a\"]");
    server.deploy(b_granting.path());
    let (status, answer) = publish_as(&server, "a", "b/orders", "order-x").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (&answer["app"], &answer["consumers"]),
        (&"b".into(), &1.into()),
        "{answer}"
    );
    delivered(&server, "b/fulfil", "order-x", &["", "a"]).await;
    assert_eq!(copies(&server, "b/audit", "order-x").await.len(), 1);
    // And an id a publishes first never shadows b's own.
    assert_eq!(publish_as(&server, "a", "b/orders", "order-y").await.0, 202);
    delivered(&server, "b/fulfil", "order-y", &["a"]).await;
    assert_eq!(publish_as(&server, "b", "orders", "order-y").await.0, 202);
    delivered(&server, "b/fulfil", "order-y", &["", "a"]).await;
    // The grant is b's to give: b still cannot reach a's `orders`.
    let (status, refused) = publish_as(&server, "b", "a/orders", "order-w").await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (404, &"no_consumer".into())
    );

    neighbour.finish().await;
}

#[tokio::test]
async fn the_admin_api_publishes_to_a_named_apps_queue() {
    let server = Server::start();
    let (a, b) = (app("a", ""), app("b", ""));
    server.deploy(a.path());
    server.deploy(b.path());

    let (status, published) = publish(&server, "b", "orders", &[("ce-id", "op-1")], "{}").await;
    assert_eq!(status, 202, "{published}");
    let mut consumers: Vec<&str> = published["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    consumers.sort_unstable();
    assert_eq!(consumers, ["b/audit", "b/fulfil"]);
    delivered(&server, "b/fulfil", "op-1", &[""]).await;
    assert!(copies(&server, "a/fulfil", "op-1").await.is_empty());

    let (status, published) = publish(&server, "a", "orders", &[("ce-id", "op-1")], "{}").await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["consumers"], serde_json::json!(["a/fulfil"]));
    delivered(&server, "a/fulfil", "op-1", &[""]).await;

    // A queue the app does not have, and names that are not names.
    let (status, body) = publish(&server, "a", "invoices", &[], "{}").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &"no_consumer".into())
    );
    let (status, body) = publish(&server, "A!", "orders", &[], "{}").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &"bad_request".into())
    );

    // The path from before queues belonged to apps says where they went.
    let response = server
        .http
        .post(server.admin_url("/v1/queues/orders/events"))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    let body = json(response).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/apps/<app>/queues/orders/events"),
        "{body}"
    );
    // And the API's description has the new path only.
    let (status, spec) = server.admin_get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/v1/apps/{app}/queues/{queue}/events"]["post"].is_object());
    assert!(spec["paths"]["/v1/queues/{queue}/events"].is_null());
}
