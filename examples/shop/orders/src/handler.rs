//! The WASI side of `orders`: consume order events, answer lookups.

use serde_json::{Value, json};
use shop_common::http::{Reply, Request};
use shop_common::kv;
use shop_common::text::check_id;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use crate::event;

const MAX_BODY: u64 = 64 * 1024;
/// Shared with `checkout`, which records orders as `placed`.
const BUCKET: &str = "orders";

struct Orders;

wasip2::http::proxy::export!(Orders);

impl Guest for Orders {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = match Request::read(request, MAX_BODY) {
            Ok(request) => route(&request).unwrap_or_else(|reply| reply),
            Err(reply) => reply,
        };
        reply.send(response_out);
    }
}

fn store_failed(message: String) -> Reply {
    println!("key-value failure: {message}");
    Reply::error(500, "store_failed", &message)
}

fn route(request: &Request) -> Result<Reply, Reply> {
    let path = request.path.as_str();
    if let Some(id) = path.strip_prefix("/shop/orders/") {
        if request.method != "GET" {
            return Ok(Reply::method_not_allowed(&request.method, path, "GET"));
        }
        return lookup(id);
    }
    // Queue deliveries come to `/` (no route leads there from outside).
    if path == "/" && request.method == "POST" {
        return confirm(request);
    }
    Ok(Reply::not_found(path))
}

fn lookup(id: &str) -> Result<Reply, Reply> {
    check_id("order id", id).map_err(|message| Reply::error(400, "invalid_order_id", &message))?;
    let bucket = kv::open(BUCKET).map_err(store_failed)?;
    let Some(bytes) = bucket.get(&format!("order/{id}")).map_err(store_failed)? else {
        return Ok(Reply::error(
            404,
            "unknown_order",
            &format!("no order {id:?}"),
        ));
    };
    let record: Value = serde_json::from_slice(&bytes)
        .map_err(|err| store_failed(format!("the record of order {id} is not JSON: {err}")))?;
    Ok(Reply::ok(record))
}

fn confirm(request: &Request) -> Result<Reply, Reply> {
    let event_id = request.header("ce-id");
    let (id, record) = event::confirm(&request.body, event_id.as_deref()).map_err(|message| {
        println!(
            "event {}: refused: {message}",
            event_id.as_deref().unwrap_or("-")
        );
        // Not a 2xx: the node retries it, then keeps it as a dead letter.
        Reply::error(422, "invalid_order_event", &message)
    })?;
    let bucket = kv::open(BUCKET).map_err(store_failed)?;
    bucket
        .set(&format!("order/{id}"), record.to_string().as_bytes())
        .map_err(store_failed)?;
    println!(
        "order {id} confirmed: {} item(s), {} {}",
        record["items"].as_array().map_or(0, Vec::len),
        record["total_cents"],
        record["currency"].as_str().unwrap_or("")
    );
    Ok(Reply::ok(json!({ "order": id, "status": "confirmed" })))
}
