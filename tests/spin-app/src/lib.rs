//! A Spin HTTP component written as Spin's documentation shows: the SDK's
//! router (which routes on the `spin-path-info` header Spin sets), variables
//! and the default key-value store.
//!
//! | route (under `/spin/greet`) | answer |
//! | --- | --- |
//! | `GET /hello/:name` | `<greeting>, <name>!` (the `greeting` variable) |
//! | `POST /count` | increments `count` in the default store, answers the new value |
//! | `GET /token` | `token: <api_token>` (a variable without a default) |
//! | `POST /stock/:delta` | adds `delta` (signed) to `stock` through the SDK's `wasi:keyvalue@0.2.0-draft2` bindings, answers the new value |
//! | `GET /keys` | every key of the default store, one per line |
//! | `GET /headers` | the `spin-*` headers and `GREETER_MODE`, one per line |

use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::variables;

#[http_component]
fn handle(request: Request) -> Response {
    let mut router = Router::suffix();
    router.get("/hello/:name", hello);
    router.post("/count", count);
    router.get("/token", token);
    router.post("/stock/:delta", stock);
    router.get("/keys", keys);
    router.get("/headers", headers);
    router.handle(request)
}

fn hello(_: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let greeting = variables::get("greeting")?;
    let name = params.get("name").unwrap_or("world");
    Ok(Response::new(200, format!("{greeting}, {name}!")))
}

fn count(_: Request, _: Params) -> anyhow::Result<impl IntoResponse> {
    let store = Store::open_default()?;
    let count = store
        .get("count")?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.set("count", count.to_string().as_bytes())?;
    Ok(Response::new(200, count.to_string()))
}

fn token(_: Request, _: Params) -> anyhow::Result<impl IntoResponse> {
    match variables::get("api_token") {
        Ok(token) => Ok(Response::new(200, format!("token: {token}"))),
        Err(e) => Ok(Response::new(500, format!("no token: {e}"))),
    }
}

/// Spin 3 also links `wasi:keyvalue` (the SDK generates its bindings);
/// its increment takes a signed delta.
fn stock(_: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    use spin_sdk::wit::wasi::keyvalue::{atomics, store};
    let delta: i64 = params.get("delta").unwrap_or("0").parse()?;
    let bucket = store::open("default").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let stock =
        atomics::increment(&bucket, "stock", delta).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(Response::new(200, stock.to_string()))
}

fn keys(_: Request, _: Params) -> anyhow::Result<impl IntoResponse> {
    let mut keys = Store::open_default()?.get_keys()?;
    keys.sort();
    Ok(Response::new(200, keys.join("\n")))
}

fn headers(request: Request, _: Params) -> anyhow::Result<impl IntoResponse> {
    let mut lines: Vec<String> = request
        .headers()
        .filter(|(name, _)| name.starts_with("spin-"))
        .map(|(name, value)| format!("{name}: {}", value.as_str().unwrap_or("?")))
        .collect();
    lines.sort();
    lines.push(format!(
        "GREETER_MODE: {}",
        std::env::var("GREETER_MODE").unwrap_or_default()
    ));
    Ok(Response::new(200, lines.join("\n")))
}
