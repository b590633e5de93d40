//! The OpenAPI document, generated from the handlers' annotations.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::invocations::{functions, logs};
use crate::{
    apps, audit, events, health, invocations, metrics, model, namespaces, nodes, quotas, secrets,
    tokens, usage,
};

// Each path keeps the tag it had before the API was split by area (the
// module it was in then), so the published document did not change.
#[derive(OpenApi)]
#[openapi(
    info(title = "Stratus admin API", description = "Deploy, version and invoke functions on a Stratus node."),
    paths(
        health::healthz, health::readyz, apps::deploy, apps::list_apps,
        apps::show_app, apps::delete_app, apps::list_versions,
        apps::activate_version, apps::rollback, invocations::invoke,
        usage::usage, logs::logs, logs::invocation, events::event, events::dead_letters, events::function_events,
        events::redrive, events::publish, secrets::list, secrets::set, secrets::delete,
        functions::list, metrics::scrape, nodes::list, nodes::rollout, namespaces::list,
        tokens::create, tokens::list, tokens::revoke, audit::list, quotas::show, quotas::set,
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
        model::AuditRecord, model::QuotasView,
    )),
    modifiers(&BearerAuth, &NamespacedPaths),
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

/// Paths under `/v1` that are the node's, not a namespace's.
const NODE_WIDE: &[&str] = &["/v1/nodes", "/v1/namespaces"];

/// Every namespace's endpoint at `/v1/namespaces/{namespace}/…` too, as
/// `namespaces::scope` serves it: the same operations with the namespace
/// as a path parameter (and operation ids of their own).
struct NamespacedPaths;

impl Modify for NamespacedPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{Object, Required, Type};
        let namespace = ParameterBuilder::new()
            .name("namespace")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(
                "The namespace; `/v1/…` without it is the `default` namespace's",
            ))
            .schema(Some(Object::with_type(Type::String)))
            .build();
        let scoped: Vec<_> = openapi
            .paths
            .paths
            .iter()
            .filter_map(|(path, item)| {
                let rest = path.strip_prefix("/v1/")?;
                if NODE_WIDE.contains(&path.as_str()) || path == "/v1/openapi.json" {
                    return None;
                }
                let mut item = item.clone();
                for op in [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ]
                .into_iter()
                .flatten()
                {
                    op.operation_id = op
                        .operation_id
                        .take()
                        .map(|id| format!("{id}_in_namespace"));
                }
                let mut parameters = item.parameters.take().unwrap_or_default();
                parameters.insert(0, namespace.clone());
                item.parameters = Some(parameters);
                Some((format!("/v1/namespaces/{{namespace}}/{rest}"), item))
            })
            .collect();
        openapi.paths.paths.extend(scoped);
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

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_are_described_with_both_formats() {
        let doc: serde_json::Value = serde_json::from_str(&super::openapi_json()).unwrap();
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
