//! The admin API: REST and JSON under `/v1`, the only way anything (the CLI
//! included) changes a node, so a CI pipeline can do with curl whatever the
//! CLI does.
//!
//! Handlers are thin: they translate HTTP to calls on the control plane's
//! [`Node`](stratus_control::Node) and its typed errors back to statuses and
//! the platform's JSON error shape. The OpenAPI document served at
//! `/v1/openapi.json` is generated from the handler annotations and the
//! response types in [`model`], so it cannot drift from the code.

mod auth;
mod error;
mod handlers;
mod ledger;
mod metrics;
pub mod model;
mod openapi;
mod secrets;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use stratus_control::Node;
use stratus_events::Dispatcher;
use stratus_ledger::Ledger;

pub use openapi::openapi_json;

/// What the admin router needs.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub node: Arc<Node>,
    pub token: Arc<str>,
    /// Largest accepted deploy upload, in bytes.
    pub max_upload: usize,
    /// Usage and logs; `None` when the node runs with metering off.
    pub ledger: Option<Arc<Ledger>>,
    /// Async invocations: the durable queue and its delivery loop.
    pub dispatcher: Arc<Dispatcher>,
    /// What the cron, NATS and MQTT triggers are doing (for `/readyz`).
    pub triggers: Arc<stratus_triggers::Health>,
    /// Apps' secrets (set and listed here, read by functions).
    pub secrets: Arc<stratus_secrets::SecretStore>,
}

/// The admin API as a router, ready to serve.
pub fn router(state: AdminState) -> Router {
    let v1 = Router::new()
        .route("/apps", get(handlers::list_apps).post(handlers::deploy))
        .route(
            "/apps/{app}",
            get(handlers::show_app).delete(handlers::delete_app),
        )
        .route("/apps/{app}/versions", get(handlers::list_versions))
        .route(
            "/apps/{app}/versions/{version}/activate",
            post(handlers::activate_version),
        )
        .route("/apps/{app}/rollback", post(handlers::rollback))
        .route("/apps/{app}/secrets", get(secrets::list))
        .route(
            "/apps/{app}/secrets/{name}",
            put(secrets::set).delete(secrets::delete),
        )
        .route("/functions/{function}/invocations", post(handlers::invoke))
        .route("/functions/{function}/logs", get(ledger::logs))
        .route("/invocations/{id}", get(ledger::invocation))
        .route("/events/{id}", get(ledger::event))
        .route("/queues/{queue}/events", post(ledger::publish))
        .route("/functions/{function}/events", get(ledger::function_events))
        .route(
            "/functions/{function}/dead-letters",
            get(ledger::dead_letters),
        )
        .route(
            "/functions/{function}/dead-letters/redrive",
            post(ledger::redrive),
        )
        .route("/usage", get(ledger::usage))
        .layer(DefaultBodyLimit::max(state.max_upload))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(metrics::render))
        .route("/v1/openapi.json", get(openapi::serve))
        .nest("/v1", v1)
        .fallback(handlers::not_found)
        .with_state(state)
}
