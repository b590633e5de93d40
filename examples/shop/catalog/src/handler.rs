//! The WASI side of `catalog`: route the request and answer.

use shop_common::http::{Reply, Request};
use shop_common::text::valid_id;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use crate::products;

/// Reads carry no body worth keeping.
const MAX_BODY: u64 = 4096;

struct Catalog;

wasip2::http::proxy::export!(Catalog);

impl Guest for Catalog {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = match Request::read(request, MAX_BODY) {
            Ok(request) => route(&request),
            Err(reply) => reply,
        };
        reply.send(response_out);
    }
}

fn route(request: &Request) -> Reply {
    let path = request.path.as_str();
    let sku = match path.strip_prefix("/shop/products") {
        Some("" | "/") => None,
        Some(rest) => match rest.strip_prefix('/') {
            Some(sku) => Some(sku),
            None => return Reply::not_found(path),
        },
        None => return Reply::not_found(path),
    };
    if request.method != "GET" {
        return Reply::method_not_allowed(&request.method, path, "GET");
    }
    let Some(sku) = sku else {
        return Reply::ok(products::list_json());
    };
    match products::find(sku) {
        Some(product) => Reply::ok(product.to_json()),
        None if valid_id(sku) => Reply::error(
            404,
            "unknown_sku",
            &format!("no product {sku:?} in the catalog; GET /shop/products lists them"),
        ),
        None => Reply::error(400, "invalid_sku", &format!("{sku:?} is not a SKU")),
    }
}
