//! `examples/shop` end to end: five functions that call each other through
//! `http://<function>.svc/`, keep stock and orders in key-value buckets,
//! read their pricing policy from `config`, and hand orders to a consumer
//! through the `orders` queue.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

async fn deployed_shop() -> Server {
    example_guest("shop_checkout");
    let server = Server::start_with(&["--retry-base", "10ms"]);
    server.deploy(&repo_root().join("examples/shop"));
    server
}

async fn stock(server: &Server, sku: &str) -> u64 {
    let response = server.get(&format!("/shop/inventory/{sku}")).await;
    assert_eq!(response.status(), 200);
    json(response).await["stock"].as_u64().unwrap()
}

async fn price(server: &Server, sku: &str, quantity: u64) -> Value {
    let response = server
        .get(&format!("/shop/price/{sku}?quantity={quantity}"))
        .await;
    let status = response.status();
    let body = json(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn checkout(server: &Server, body: &str) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/shop/checkout"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json(response).await)
}

/// `POST /reserve` on `inventory` through the admin API: the route is
/// internal, only other functions (and an operator) reach it.
async fn reserve_directly(server: &Server, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .post(server.admin_url("/v1/functions/inventory/invocations?path=/reserve&method=POST"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json(response).await)
}

#[tokio::test]
async fn the_shop_prices_reserves_once_and_publishes_orders() {
    let server = deployed_shop().await;

    // The catalog is compiled in.
    let products = json(server.get("/shop/products").await).await;
    assert_eq!(
        products["products"].as_array().unwrap().len(),
        5,
        "{products}"
    );
    let mug = json(server.get("/shop/products/mug-stratus").await).await;
    assert_eq!(mug["price_cents"], 1250, "{mug}");
    let unknown = server.get("/shop/products/nope").await;
    assert_eq!(unknown.status(), 404);

    // Stock, set by PUT; a SKU never stocked has none.
    set_stock(&server, "mug-stratus", 10).await;
    set_stock(&server, "sticker-pack", 3).await;
    assert_eq!(stock(&server, "mug-stratus").await, 10);
    assert_eq!(stock(&server, "cap-navy").await, 0);

    // Plenty of mugs: the base price. Few stickers (3 <= low_stock_threshold
    // 5 in the manifest's config): 20 % more.
    let plenty = price(&server, "mug-stratus", 2).await;
    assert_eq!(
        (
            &plenty["unit_price_cents"],
            &plenty["total_cents"],
            &plenty["stock"],
            &plenty["markup_percent"]
        ),
        (&json!(1250), &json!(2500), &json!(10), &json!(0)),
        "{plenty}"
    );
    let low = price(&server, "sticker-pack", 1).await;
    assert_eq!(
        (
            &low["unit_price_cents"],
            &low["total_cents"],
            &low["stock"],
            &low["markup_percent"]
        ),
        (&json!(600), &json!(600), &json!(3), &json!(20)),
        "{low}"
    );
    let unknown = server.get("/shop/price/nope?quantity=1").await;
    assert_eq!(unknown.status(), 404);
    let bad = server.get("/shop/price/mug-stratus?quantity=0").await;
    assert_eq!(bad.status(), 400);

    // A checkout: priced, reserved, recorded, published.
    let order = r#"{"order":"o-1","items":[{"sku":"mug-stratus","quantity":2},{"sku":"sticker-pack","quantity":1}]}"#;
    let (status, placed) = checkout(&server, order).await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(placed["order"], "o-1");
    assert_eq!(placed["status"], "placed");
    assert_eq!(placed["total_cents"], 2 * 1250 + 600, "{placed}");
    assert_eq!(placed["items"][1]["markup_percent"], 20, "{placed}");
    assert_eq!(stock(&server, "mug-stratus").await, 8);
    assert_eq!(stock(&server, "sticker-pack").await, 2);

    // The same order again is answered again, and reserves nothing.
    let (status, again) = checkout(&server, order).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["total_cents"], placed["total_cents"]);
    assert_eq!(stock(&server, "mug-stratus").await, 8);
    assert_eq!(stock(&server, "sticker-pack").await, 2);
    let (status, other) = checkout(
        &server,
        r#"{"order":"o-1","items":[{"sku":"mug-stratus","quantity":5}]}"#,
    )
    .await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(other["error"]["code"], "order_conflict", "{other}");

    // The reservation itself is idempotent by order, whoever calls it.
    let reservation = json!({ "order": "o-9", "sku": "mug-stratus", "quantity": 3 });
    let (status, first) = reserve_directly(&server, &reservation).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (&first["replayed"], &first["stock"]),
        (&json!(false), &json!(5)),
        "{first}"
    );
    let (status, second) = reserve_directly(&server, &reservation).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["replayed"], true, "{second}");
    assert_eq!(stock(&server, "mug-stratus").await, 5);

    // Beyond the stock: 409, the mug reserved first is given back, and
    // nothing is recorded or published.
    let (status, refused) = checkout(
        &server,
        r#"{"order":"o-2","items":[{"sku":"mug-stratus","quantity":1},{"sku":"sticker-pack","quantity":5}]}"#,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "insufficient_stock", "{refused}");
    assert_eq!(refused["error"]["sku"], "sticker-pack", "{refused}");
    assert_eq!(refused["error"]["available"], 2, "{refused}");
    assert_eq!(stock(&server, "mug-stratus").await, 5);
    assert_eq!(stock(&server, "sticker-pack").await, 2);

    // Malformed orders are 400s that say what is wrong.
    for (body, says) in [
        ("{", "not valid JSON"),
        (r#"{"order":"o-3"}"#, "items is missing"),
        (
            r#"{"order":"o-3","items":[{"sku":"mug-stratus","quantity":"2"}]}"#,
            "items[0].quantity",
        ),
        (
            r#"{"order":"o-3","items":[{"sku":"nope","quantity":1}]}"#,
            "items[0].sku \"nope\" is not in the catalog",
        ),
    ] {
        let (status, error) = checkout(&server, body).await;
        assert_eq!(status, 400, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }

    // o-1 reached the orders queue once, and `orders` confirmed it.
    let event = settled(&server, "o-1").await;
    assert_eq!(event["state"], "succeeded", "{event}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = server.get("/shop/orders/o-1").await;
        assert_eq!(response.status(), 200);
        let record = json(response).await;
        if record["status"] == "confirmed" {
            assert_eq!(record["total_cents"], 3100, "{record}");
            assert_eq!(record["event"], "o-1", "{record}");
            break;
        }
        assert_eq!(record["status"], "placed", "{record}");
        assert!(Instant::now() < deadline, "never confirmed: {record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = function_events(&server, "orders").await;
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, ["o-1"], "only o-1 was published, once: {events:?}");
    let missing = server.get("/shop/orders/o-2").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn concurrent_checkouts_never_sell_more_than_the_stock() {
    let server = deployed_shop().await;
    set_stock(&server, "cap-navy", 4).await;

    let buyers: Vec<_> = (0..10)
        .map(|n| {
            let (http, url) = (server.http.clone(), server.url("/shop/checkout"));
            tokio::spawn(async move {
                let body = format!(
                    r#"{{"order":"race-{n}","items":[{{"sku":"cap-navy","quantity":1}}]}}"#
                );
                let response = http.post(url).body(body).send().await.unwrap();
                (response.status().as_u16(), json(response).await)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for buyer in buyers {
        answers.push(buyer.await.unwrap());
    }
    for (status, body) in &answers {
        assert!(*status == 201 || *status == 409, "{status} {body}");
    }
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    let sold = statuses.iter().filter(|status| **status == 201).count() as u64;
    // Some may be refused spuriously while another gives units back, but
    // never more than 4 are sold, and what is sold is what left the stock.
    assert!((1..=4).contains(&sold), "sold {sold} of 4: {statuses:?}");
    assert_eq!(stock(&server, "cap-navy").await, 4 - sold);
}
