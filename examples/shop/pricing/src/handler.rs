//! The WASI side of `pricing`: read the config, ask `catalog` and
//! `inventory`, answer the quote.

use shop_common::config;
use shop_common::http::{Answer, Call, Reply, Request};
use shop_common::text::{check_id, error_message, query_param};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use crate::price::{self, MAX_QUANTITY, Policy, Product};

const MAX_BODY: u64 = 4096;

struct Pricing;

wasip2::http::proxy::export!(Pricing);

impl Guest for Pricing {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = match Request::read(request, MAX_BODY) {
            Ok(request) => route(&request).unwrap_or_else(|reply| reply),
            Err(reply) => reply,
        };
        reply.send(response_out);
    }
}

fn route(request: &Request) -> Result<Reply, Reply> {
    let path = request.path.as_str();
    let Some(sku) = path.strip_prefix("/shop/price/") else {
        return Ok(Reply::not_found(path));
    };
    if request.method != "GET" {
        return Ok(Reply::method_not_allowed(&request.method, path, "GET"));
    }
    check_id("sku", sku).map_err(|message| Reply::error(400, "invalid_sku", &message))?;
    let quantity = quantity(&request.query)?;
    let policy = policy().map_err(|message| {
        println!("bad config: {message}");
        Reply::error(500, "bad_config", &message)
    })?;

    let product = product(sku)?;
    let stock = stock(sku)?;
    Ok(Reply::ok(
        price::quote(sku, &product, stock, quantity, policy).to_json(),
    ))
}

/// `?quantity=N`, 1 when absent.
fn quantity(query: &str) -> Result<u64, Reply> {
    let Some(text) = query_param(query, "quantity") else {
        return Ok(1);
    };
    text.parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX_QUANTITY).contains(n))
        .ok_or_else(|| {
            Reply::error(
                400,
                "invalid_quantity",
                &format!(
                    "quantity is {text:?}; it must be a whole number from 1 to {MAX_QUANTITY}"
                ),
            )
        })
}

fn policy() -> Result<Option<Policy>, String> {
    let threshold = config::get("low_stock_threshold")?;
    let markup = config::get("low_stock_markup_percent")?;
    Policy::from_config(threshold.as_deref(), markup.as_deref())
}

/// A dependency that failed: 502 naming it.
fn failed(dependency: &str, detail: &str) -> Reply {
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

fn product(sku: &str) -> Result<Product, Reply> {
    let path = format!("/shop/products/{sku}");
    let answer = Call::get("catalog.svc", &path)
        .send()
        .map_err(|err| failed("catalog", &err))?;
    match answer.status {
        200 => Product::from_json(&answer.json()).map_err(|err| failed("catalog", &err)),
        404 => {
            let body = answer.json();
            let message = error_message(&body).unwrap_or("no such product");
            Err(Reply::error(404, "unknown_sku", message))
        }
        _ => Err(failed("catalog", &unexpected(&answer))),
    }
}

fn stock(sku: &str) -> Result<u64, Reply> {
    let path = format!("/shop/inventory/{sku}");
    let answer = Call::get("inventory.svc", &path)
        .send()
        .map_err(|err| failed("inventory", &err))?;
    if answer.status != 200 {
        return Err(failed("inventory", &unexpected(&answer)));
    }
    answer.json()["stock"]
        .as_u64()
        .ok_or_else(|| failed("inventory", &format!("no stock in {}", answer.snippet())))
}
