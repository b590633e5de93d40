//! The OpenAPI document, generated from the handlers' annotations.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::invocations::{functions, logs, series};
use crate::{
    apps, audit, events, health, invocations, metrics, model, namespaces, nodes, quotas, secrets,
    tokens, traffic, usage,
};

// Each path keeps the tag it had before the API was split by area (the
// module it was in then), so the published document did not change.
#[derive(OpenApi)]
#[openapi(
    info(title = "Stratus admin API", description = "Deploy, version and invoke functions on a Stratus node."),
    paths(
        health::healthz, health::readyz, apps::deploy, apps::deploys_in_progress, apps::list_apps,
        apps::show_app, apps::delete_app, apps::list_versions,
        apps::activate_version, apps::rollback, traffic::show, traffic::set, invocations::invoke,
        usage::usage, logs::logs, logs::invocation, events::event, events::dead_letters, events::function_events,
        events::redrive, events::publish, secrets::list, secrets::set, secrets::delete,
        functions::list, series::series, logs::invocations, events::queues, events::replay, metrics::scrape, nodes::list, nodes::rollout, namespaces::list,
        tokens::create, tokens::list, tokens::revoke, tokens::whoami, audit::list, quotas::show, quotas::set,
    ),
    components(schemas(
        model::AppSummary, model::AppDetail, model::FunctionInfo, model::VersionSummary,
        model::DeployResponse, model::DeployedFunction, model::DeployTimings, model::DeployForm,
        model::ActivateResponse, model::ErrorBody, model::ErrorDetail, model::Health, model::EventList, model::BrokerHealth, model::TriggerHealth,
        model::UsageReport, model::Prices, model::UsageRow, model::LogLineInfo, model::LogLines,
        model::InvocationDetail, model::AsyncAccepted, model::EventInfo,
        model::DeadLetters, model::Redriven, model::Published, model::SecretSummary, model::KeyValueHealth, model::DiskHealth,
        model::FunctionStatus, model::FunctionTrigger, model::LastErrorInfo, model::NodeInfo, model::Rollout, model::RolloutNode,
        model::NamespaceSummary, model::CreateToken, model::TokenInfo, model::TokenCreated,
        model::AuditRecord, model::QuotasView, model::WhoAmI, stratus_control::gains::Gains, stratus_control::gains::FunctionGains, model::FunctionTimeline, model::TimelinePoint, model::InvocationSummary, model::InvocationList, model::QueueList, model::QueueInfo,
        model::CanaryShare, traffic::TrafficBody, traffic::SplitEntry, stratus_control::TrafficReport,
        stratus_control::canary::TrafficWindow, stratus_control::canary::VersionWindow,
        stratus_storage::Canary, stratus_storage::Sticky, stratus_storage::RolloutPolicy,
        stratus_storage::RolloutEvent, stratus_storage::RolloutAction,
        stratus_control::DeployInProgress, stratus_control::FunctionProgress, stratus_control::CompileState,
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
pub fn openapi_json() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi())
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
        crate::contract::complete(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    })
}

pub async fn serve() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_are_described_with_both_formats() {
        let doc: serde_json::Value = serde_json::from_str(super::openapi_json()).unwrap();
        let get = &doc["paths"]["/metrics"]["get"];
        let content = &get["responses"]["200"]["content"];
        for media_type in [
            "text/plain; version=0.0.4; charset=utf-8",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ] {
            assert!(content[media_type].is_object(), "{media_type}: {get:#}");
        }
        assert_eq!(get["parameters"][0]["name"], "Accept", "{get:#}");
    }
}
