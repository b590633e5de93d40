//! `stratus quotas show|set`: the namespace's quotas and money budget.

use std::process::ExitCode;

use reqwest::Method;
use stratus_admin::model::QuotasView;

use crate::args::{ClientOpts, QuotaSetArgs, QuotasCommand};
use crate::client::Client;
use crate::output;

pub async fn run(opts: &ClientOpts, command: QuotasCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let view: QuotasView = match command {
        QuotasCommand::Show { format } => {
            let view: QuotasView = client.get_json("/v1/quotas").await?;
            if matches!(format, crate::args::Format::Json) {
                output::json(&view)?;
                return Ok(ExitCode::SUCCESS);
            }
            view
        }
        QuotasCommand::Set(args) => {
            let body = body(&args);
            let response = client
                .send(client.request(Method::PUT, "/v1/quotas").json(&body))
                .await?;
            crate::client::read_json(response).await?
        }
    };
    print(&view);
    Ok(ExitCode::SUCCESS)
}

fn body(args: &QuotaSetArgs) -> serde_json::Value {
    let mut quotas = serde_json::Map::new();
    let mut put = |key: &str, value: Option<serde_json::Value>| {
        if let Some(value) = value {
            quotas.insert(key.to_owned(), value);
        }
    };
    put("max_apps", args.max_apps.map(Into::into));
    put("max_functions", args.max_functions.map(Into::into));
    put("max_memory", args.max_memory.map(Into::into));
    put("max_concurrency", args.max_concurrency.map(Into::into));
    put(
        "requests_per_second",
        args.requests_per_second.map(Into::into),
    );
    put(
        "budget",
        args.budget.map(|amount| {
            serde_json::json!({
                "amount": amount,
                "unit": args.budget_unit.replace('-', "_"),
                "period": args.budget_period,
                "on_exhausted": args.on_exhausted,
            })
        }),
    );
    serde_json::Value::Object(quotas)
}

fn print(view: &QuotasView) {
    let quota = |key: &str| {
        view.quotas
            .get(key)
            .map_or("unlimited".to_owned(), ToString::to_string)
    };
    println!("namespace {}", view.namespace);
    println!("  apps            {} of {}", view.apps, quota("max_apps"));
    println!(
        "  functions       {} of {}",
        view.functions,
        quota("max_functions")
    );
    println!("  memory/function {}", quota("max_memory"));
    println!("  concurrency     {}", quota("max_concurrency"));
    println!("  requests/s      {}", quota("requests_per_second"));
    match &view.budget {
        Some(budget) => {
            println!(
                "  budget          {:.6} of {} {} this {} ({:.1} %, since {}), then {}",
                budget["used"].as_f64().unwrap_or_default(),
                budget["budget"]["amount"],
                budget["budget"]["unit"].as_str().unwrap_or_default(),
                budget["budget"]["period"].as_str().unwrap_or_default(),
                budget["percent"].as_f64().unwrap_or_default(),
                budget["period_start"].as_str().unwrap_or_default(),
                budget["budget"]["on_exhausted"]
                    .as_str()
                    .unwrap_or_default(),
            );
            if let Some(warning) = budget["warning"].as_str() {
                println!("  warning: {warning}");
            }
        }
        None => println!("  budget          {}", quota("budget")),
    }
}
