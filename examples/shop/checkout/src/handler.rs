//! The WASI side of `checkout`: price, reserve, record, publish, answer —
//! and undo the reservations when a later step fails.

use serde_json::{Value, json};
use shop_common::http::{Answer, Call, Reply, Request};
use shop_common::kv::{self, Bucket};
use shop_common::text::error_message;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use crate::order::{self, Item, Order};

const MAX_BODY: u64 = 64 * 1024;
/// Shared with `orders`, which marks an order `confirmed`.
const BUCKET: &str = "orders";

struct Checkout;

wasip2::http::proxy::export!(Checkout);

impl Guest for Checkout {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = match Request::read(request, MAX_BODY) {
            Ok(request) => route(&request).unwrap_or_else(|reply| reply),
            Err(reply) => reply,
        };
        reply.send(response_out);
    }
}

fn route(request: &Request) -> Result<Reply, Reply> {
    if request.path != "/shop/checkout" {
        return Ok(Reply::not_found(&request.path));
    }
    if request.method != "POST" {
        return Ok(Reply::method_not_allowed(
            &request.method,
            &request.path,
            "POST",
        ));
    }
    let order = order::parse(&request.json()?)
        .map_err(|message| Reply::error(400, "invalid_order", &message))?;
    let bucket = kv::open(BUCKET).map_err(store_failed)?;
    if let Some(record) = recorded(&bucket, &order)? {
        return replay(&order, record);
    }
    place(&bucket, &order)
}

fn store_failed(message: String) -> Reply {
    println!("key-value failure: {message}");
    Reply::error(500, "store_failed", &message)
}

fn record_key(order: &str) -> String {
    format!("order/{order}")
}

/// The order as recorded by an earlier checkout, if any.
fn recorded(bucket: &Bucket, order: &Order) -> Result<Option<Value>, Reply> {
    let Some(bytes) = bucket.get(&record_key(&order.id)).map_err(store_failed)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|err| {
        store_failed(format!(
            "the record of order {} is not JSON: {err}",
            order.id
        ))
    })
}

/// A checkout of an order already recorded: the same answer, nothing
/// reserved again.
fn replay(order: &Order, mut record: Value) -> Result<Reply, Reply> {
    if !order.same_items(&record) {
        return Err(Reply::error(
            409,
            "order_conflict",
            &format!(
                "order {} was already placed with other items; use a new order id",
                order.id
            ),
        ));
    }
    // Still `placed`: the event may not have been published (the function
    // stopped in between). Publishing again is harmless: the queue keeps
    // one event per ce-id.
    if record["status"] == "placed" {
        publish(&order.id, &record)?;
    }
    println!("order {}: placed before, answered again", order.id);
    record["replayed"] = json!(true);
    Ok(Reply::ok(record))
}

fn place(bucket: &Bucket, order: &Order) -> Result<Reply, Reply> {
    let quotes = order
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| price(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = order
        .summary(&quotes)
        .map_err(|err| dependency_failed("pricing", &err))?;

    let mut reserved = Vec::new();
    for item in &order.items {
        if let Err(reply) = reserve(&order.id, item, &mut reserved) {
            undo(&order.id, &reserved);
            return Err(reply);
        }
    }

    // Recorded before it is published, so `orders` (which may run as soon
    // as the event is queued) finds it and sets `confirmed` after.
    let key = record_key(&order.id);
    if let Err(err) = bucket.set(&key, summary.to_string().as_bytes()) {
        undo(&order.id, &reserved);
        return Err(store_failed(err));
    }
    if let Err(reply) = publish(&order.id, &summary) {
        let _ = bucket.delete(&key);
        undo(&order.id, &reserved);
        return Err(reply);
    }
    println!(
        "order {}: placed, {} item(s), {} {}",
        order.id,
        order.items.len(),
        summary["total_cents"],
        summary["currency"].as_str().unwrap_or("")
    );
    let mut reply = Reply::new(201, summary);
    reply
        .headers
        .push(("location".into(), format!("/shop/orders/{}", order.id)));
    Ok(reply)
}

fn dependency_failed(dependency: &str, detail: &str) -> Reply {
    println!("{dependency} failed: {detail}");
    Reply::error(
        502,
        "dependency_failed",
        &format!("{dependency} failed: {detail}"),
    )
}

fn unexpected(answer: &Answer) -> String {
    format!("answered {}: {}", answer.status, answer.snippet())
}

/// `pricing`'s quote for item `i`.
fn price(i: usize, item: &Item) -> Result<Value, Reply> {
    let path = format!("/shop/price/{}?quantity={}", item.sku, item.quantity);
    let answer = Call::get("pricing.svc", &path)
        .send()
        .map_err(|err| dependency_failed("pricing", &err))?;
    match answer.status {
        200 => Ok(answer.json()),
        404 => Err(Reply::error(
            400,
            "unknown_sku",
            &format!("items[{i}].sku {:?} is not in the catalog", item.sku),
        )),
        _ => Err(dependency_failed("pricing", &unexpected(&answer))),
    }
}

/// Reserves `item`; adds its SKU to `reserved` when units were taken now
/// (not when this order held them already: those belong to the earlier,
/// successful checkout and are not to be undone).
fn reserve(order: &str, item: &Item, reserved: &mut Vec<String>) -> Result<(), Reply> {
    let body = json!({ "order": order, "sku": item.sku, "quantity": item.quantity });
    let answer = Call::post_json("inventory.svc", "/reserve", &body)
        .send()
        .map_err(|err| dependency_failed("inventory", &err))?;
    match answer.status {
        200 => {
            if answer.json()["replayed"] != true {
                reserved.push(item.sku.clone());
            }
            Ok(())
        }
        // Out of stock, or this order is busy or held otherwise: pass the
        // inventory's reason on.
        409 => {
            let body = answer.json();
            let message = error_message(&body).unwrap_or("the reservation was refused");
            println!("order {order}: not placed: {message}");
            let mut error = body["error"].clone();
            if error["code"].as_str().is_none() {
                error = shop_common::text::error_body("conflict", message)["error"].clone();
            }
            error["sku"] = json!(item.sku);
            Err(Reply::new(409, json!({ "error": error })))
        }
        _ => Err(dependency_failed("inventory", &unexpected(&answer))),
    }
}

/// Gives back the units reserved for `order` by this checkout. A failed
/// release is logged: those units stay out of stock until an operator
/// sets the stock again.
fn undo(order: &str, reserved: &[String]) {
    for sku in reserved {
        let body = json!({ "order": order, "sku": sku });
        match Call::post_json("inventory.svc", "/release", &body).send() {
            Ok(answer) if answer.is_success() => {}
            Ok(answer) => println!(
                "order {order}: releasing {sku} failed: {}",
                unexpected(&answer)
            ),
            Err(err) => println!("order {order}: releasing {sku} failed: {err}"),
        }
    }
}

/// Publishes the order to queue `orders`: `ce-id` is the order id, so a
/// repeat is stored once.
fn publish(order: &str, summary: &Value) -> Result<(), Reply> {
    let answer = Call::post_json("queue.svc", "/orders", summary)
        .header("ce-id", order)
        .header("ce-type", "com.example.shop.order.placed")
        .header("ce-subject", order)
        .send()
        .map_err(|err| dependency_failed("queue orders", &err))?;
    if answer.is_success() {
        Ok(())
    } else {
        Err(dependency_failed("queue orders", &unexpected(&answer)))
    }
}
