//! The WASI side of `inventory`: routes, JSON, and `wasi:keyvalue` as the
//! [`Store`] of the stock logic.

use serde_json::{Value, json};
use shop_common::http::{Reply, Request};
use shop_common::kv::{self, Bucket};
use shop_common::text::{check_id, id_field, quantity};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use crate::stock::{self, MAX_QUANTITY, MAX_STOCK, Released, Reservation, Reserved, Store};

const BUCKET: &str = "inventory";
const MAX_BODY: u64 = 4096;

struct Inventory;

wasip2::http::proxy::export!(Inventory);

impl Guest for Inventory {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = match Request::read(request, MAX_BODY) {
            Ok(request) => route(&request).unwrap_or_else(|reply| reply),
            Err(reply) => reply,
        };
        reply.send(response_out);
    }
}

impl Store for Bucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Bucket::get(self, key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        Bucket::set(self, key, value)
    }
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
        Bucket::increment(self, key, delta)
    }
}

/// A key-value failure: this function's own fault, so a 500.
fn store_failed(message: String) -> Reply {
    println!("key-value failure: {message}");
    Reply::error(500, "store_failed", &message)
}

fn route(request: &Request) -> Result<Reply, Reply> {
    let path = request.path.as_str();
    let method = request.method.as_str();
    if let Some(sku) = path.strip_prefix("/shop/inventory/") {
        check_id("sku", sku).map_err(|message| Reply::error(400, "invalid_sku", &message))?;
        let bucket = kv::open(BUCKET).map_err(store_failed)?;
        return match method {
            "GET" => {
                let stock = stock::stock(&bucket, sku).map_err(store_failed)?;
                Ok(Reply::ok(json!({ "sku": sku, "stock": stock })))
            }
            "PUT" => {
                let target = stock_body(&request.body)?;
                let stock = stock::set_stock(&bucket, sku, target).map_err(store_failed)?;
                println!("stock of {sku} set to {stock}");
                Ok(Reply::ok(json!({ "sku": sku, "stock": stock })))
            }
            _ => Ok(Reply::method_not_allowed(method, path, "GET, PUT")),
        };
    }
    match path {
        "/reserve" | "/release" if method != "POST" => {
            Ok(Reply::method_not_allowed(method, path, "POST"))
        }
        "/reserve" => reserve(&request.json()?),
        "/release" => release(&request.json()?),
        _ => Ok(Reply::not_found(path)),
    }
}

/// The body of a `PUT`: the new stock as a whole number.
fn stock_body(body: &[u8]) -> Result<u64, Reply> {
    let text = String::from_utf8_lossy(body);
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_STOCK)
        .ok_or_else(|| {
            Reply::error(
                400,
                "invalid_stock",
                &format!(
                    "the body must be the new stock, a whole number from 0 to {MAX_STOCK} \
                     (such as 25), not {:?}",
                    text.trim()
                ),
            )
        })
}

fn invalid(message: String) -> Reply {
    Reply::error(400, "invalid_reservation", &message)
}

fn reserve(body: &Value) -> Result<Reply, Reply> {
    let at = Reservation {
        order: id_field(body, "order", "order").map_err(invalid)?,
        sku: id_field(body, "sku", "sku").map_err(invalid)?,
        quantity: quantity(body.get("quantity"), "quantity", MAX_QUANTITY).map_err(invalid)?,
    };
    let bucket = kv::open(BUCKET).map_err(store_failed)?;
    let (order, sku, quantity) = (&at.order, &at.sku, at.quantity);
    let reserved = |replayed: bool, stock: u64| {
        Reply::ok(json!({
            "order": order, "sku": sku, "quantity": quantity,
            "replayed": replayed, "stock": stock,
        }))
    };
    match stock::reserve(&bucket, &at).map_err(store_failed)? {
        Reserved::Taken { left } => {
            println!("order {order}: reserved {quantity} of {sku}, {left} left");
            Ok(reserved(false, left))
        }
        Reserved::Replayed => {
            println!("order {order}: {quantity} of {sku} already reserved, not again");
            let stock = stock::stock(&bucket, sku).map_err(store_failed)?;
            Ok(reserved(true, stock))
        }
        Reserved::Insufficient { available } => {
            println!("order {order}: {quantity} of {sku} refused, {available} in stock");
            Ok(Reply::new(
                409,
                json!({ "error": {
                    "code": "insufficient_stock",
                    "message": format!(
                        "only {available} of {sku} in stock, {quantity} requested"
                    ),
                    "sku": sku, "available": available, "requested": quantity,
                }}),
            ))
        }
        Reserved::Conflict { held } => Ok(Reply::error(
            409,
            "order_conflict",
            &format!(
                "order {order} already holds {held} of {sku}, not {quantity}; \
                 a different order needs a new order id"
            ),
        )),
        Reserved::InProgress => Ok(in_progress(order, sku)),
    }
}

fn in_progress(order: &str, sku: &str) -> Reply {
    Reply::error(
        409,
        "reservation_in_progress",
        &format!("another request for order {order} and {sku} is being handled; try again"),
    )
}

fn release(body: &Value) -> Result<Reply, Reply> {
    let order = id_field(body, "order", "order").map_err(invalid)?;
    let sku = id_field(body, "sku", "sku").map_err(invalid)?;
    let bucket = kv::open(BUCKET).map_err(store_failed)?;
    let released = match stock::release(&bucket, &order, &sku).map_err(store_failed)? {
        Released::Returned { quantity } => {
            println!("order {order}: released {quantity} of {sku}");
            quantity
        }
        Released::NothingHeld => 0,
        Released::InProgress => return Ok(in_progress(&order, &sku)),
    };
    Ok(Reply::ok(
        json!({ "order": order, "sku": sku, "released": released }),
    ))
}
