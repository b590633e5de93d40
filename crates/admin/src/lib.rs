//! The admin API: REST and JSON under `/v1`, the only way anything (the CLI
//! included) changes a node, so a CI pipeline can do with curl whatever the
//! CLI does.
//!
//! One module per area — apps and versions (`apps`), invocations and logs
//! (`invocations`), events and queues (`events`), secrets, usage — each with
//! its own router and its own slice of [`AdminState`], merged in
//! [`router`]. Handlers are thin: they translate HTTP to operations of the
//! control plane's [`Node`](stratus_control::Node), the event
//! [`Dispatcher`], the ledger and the secret store, and their typed errors
//! back to statuses and the platform's one JSON error shape
//! ([`model::ErrorBody`]). The OpenAPI document served at
//! `/v1/openapi.json` is generated from the handler annotations and the
//! response types in [`model`], so it cannot drift from the code.

mod access;
mod apps;
mod audit;
mod auth;
mod common;
mod contract;
#[cfg(test)]
mod contract_props;
pub mod disk;
mod error;
mod events;
mod exposition;
mod form;
mod function_metrics;
mod health;
mod invocations;
mod metrics;
pub mod model;
mod namespaces;
mod nodes;
mod openapi;
mod quotas;
mod rejections;
mod secrets;
mod tokens;
mod traffic;
mod upload;
#[cfg(test)]
mod upload_props;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use http::StatusCode;
use stratus_control::Node;
use stratus_events::Dispatcher;
use stratus_storage::Ledger;

use crate::error::ApiError;

pub use openapi::openapi_json;

/// Everything the admin API uses, handed over by the node's assembly. Each
/// area's handlers see only their part of it (`FromRef` substates: see each
/// area's `router`).
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
    /// Scoped API tokens.
    pub tokens: Arc<dyn stratus_storage::TokenStore>,
    /// Every change through the API, and every refused attempt at one.
    pub audit: Arc<dyn stratus_storage::AuditLog>,
    /// When each token's last use was last written (kept by the token
    /// check; empty to begin with).
    pub touched: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    /// The platform's nodes: this one, or the cluster's.
    pub nodes: Arc<dyn stratus_storage::NodeDirectory>,
    /// The data directory, measured for `/readyz`.
    pub data_dir: Arc<disk::DataDir>,
}

/// The admin API as a router, ready to serve: the areas under `/v1`, each
/// its own router, merged behind the token check and the upload limit;
/// health, metrics and the API's description outside it, without a token.
pub fn router(state: AdminState) -> Router {
    let v1 = Router::new()
        .merge(apps::router())
        .merge(traffic::router())
        .merge(invocations::router())
        .merge(events::router())
        .merge(secrets::router())
        .merge(usage::router())
        .merge(nodes::router())
        .merge(namespaces::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(quotas::router())
        .layer(DefaultBodyLimit::max(state.max_upload))
        .route_layer(axum::middleware::from_fn_with_state(
            auth::Auth::from_ref(&state),
            auth::require_token,
        ))
        // Outside the token check, so refused attempts are recorded too.
        .route_layer(axum::middleware::from_fn_with_state(
            audit::AuditState::from_ref(&state),
            audit::record,
        ));
    let routes = Router::new()
        .merge(health::router())
        .route("/metrics", get(metrics::scrape))
        .route("/v1/openapi.json", get(openapi::serve))
        // The console's files: public, the API it calls is not.
        .merge(stratus_console::router())
        .nest("/v1", v1)
        .fallback(not_found)
        .with_state(state);
    // Before routing: `/v1/namespaces/{namespace}/…` is routed as `/v1/…`
    // with the namespace handed on.
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(rejections::as_json))
            .layer(axum::middleware::from_fn(namespaces::scope))
            .service(routes),
    )
}

/// Unknown admin paths answer in the platform's error shape too.
async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no admin endpoint at {}; see /v1/openapi.json", uri.path()),
    )
}
