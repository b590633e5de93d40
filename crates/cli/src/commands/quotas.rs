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
    fn or_unlimited<T: ToString>(quota: Option<T>) -> String {
        quota.map_or("unlimited".to_owned(), |q| q.to_string())
    }
    let quotas = &view.quotas;
    println!("namespace {}", view.namespace);
    println!(
        "  apps            {} of {}",
        view.apps,
        or_unlimited(quotas.max_apps)
    );
    println!(
        "  functions       {} of {}",
        view.functions,
        or_unlimited(quotas.max_functions)
    );
    println!("  memory/function {}", or_unlimited(quotas.max_memory));
    println!("  concurrency     {}", or_unlimited(quotas.max_concurrency));
    println!(
        "  requests/s      {}",
        or_unlimited(quotas.requests_per_second)
    );
    match &view.budget {
        Some(status) => {
            let budget = &status.budget;
            println!(
                "  budget          {:.6} of {} {} this {} ({:.1} %, since {}), then {}",
                status.used,
                budget.amount,
                budget.unit.as_str(),
                budget.period.as_str(),
                status.percent,
                status.period_start,
                budget.on_exhausted.as_str(),
            );
            if let Some(warning) = &status.warning {
                println!("  warning: {warning}");
            }
        }
        None => println!("  budget          unlimited"),
    }
}
