//! The OpenAPI document, generated from the handlers' annotations.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers;
use crate::ledger;
use crate::model;
use crate::secrets;

#[derive(OpenApi)]
#[openapi(
    info(title = "Stratus admin API", description = "Deploy, version and invoke functions on a Stratus node."),
    paths(
        handlers::healthz, handlers::readyz, handlers::deploy, handlers::list_apps,
        handlers::show_app, handlers::delete_app, handlers::list_versions,
        handlers::activate_version, handlers::rollback, handlers::invoke,
        ledger::usage, ledger::logs, ledger::invocation, ledger::event, ledger::dead_letters, ledger::function_events,
        ledger::redrive, ledger::publish, secrets::list, secrets::set, secrets::delete,
    ),
    components(schemas(
        model::AppSummary, model::AppDetail, model::FunctionInfo, model::VersionSummary,
        model::DeployResponse, model::DeployedFunction, model::DeployTimings, model::DeployForm,
        model::ActivateResponse, model::ErrorResponse, model::ErrorInfo, model::Health, model::EventList, model::BrokerHealth, model::TriggerHealth,
        model::UsageReport, model::Prices, model::UsageRow, model::LogLineInfo, model::LogLines,
        model::InvocationDetail, model::AsyncAccepted, model::EventInfo,
        model::DeadLetters, model::Redriven, model::Published, model::SecretSummary, model::KeyValueHealth,
    )),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub async fn serve() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}
