//! `stratus usage`: metered usage and cost per function.

use std::process::ExitCode;

use stratus_admin::model::{UsageReport, UsageRow};

use crate::args::{ClientOpts, UsageArgs, UsageFormat};
use crate::client::Client;
use crate::output;

pub async fn run(opts: &ClientOpts, args: UsageArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let mut query = Vec::new();
    if let Some(app) = &args.app {
        query.push(("app", app.as_str()));
    }
    if let Some(since) = &args.since {
        query.push(("since", since.as_str()));
    }
    let request = client
        .request(reqwest::Method::GET, "/v1/usage")
        .query(&query);
    let response = client.send(request).await?;
    let report: UsageReport = crate::client::read_json(response).await?;
    match args.format {
        UsageFormat::Json => output::json(&report)?,
        UsageFormat::Csv => print!("{}", csv(&report)),
        UsageFormat::Table if report.functions.is_empty() => {
            let since = report.since.as_deref().unwrap_or("the start of retention");
            let of = args
                .app
                .as_ref()
                .map_or(String::new(), |app| format!(" of app {app}"));
            output::nothing(&format!(
                "no invocations{of} since {since}; every request to a deployed function is counted here"
            ));
        }
        UsageFormat::Table => table(&report),
    }
    // Against the namespace's budget, when it has one.
    if !matches!(args.format, UsageFormat::Json | UsageFormat::Csv)
        && let Some(status) = &report.budget
    {
        println!(
            "\nbudget: {:.6} of {} {} this {} ({:.1} %){}",
            status.used,
            status.budget.amount,
            status.budget.unit.as_str(),
            status.budget.period.as_str(),
            status.percent,
            if status.exhausted { ", exhausted" } else { "" }
        );
        if let Some(warning) = &status.warning {
            println!("warning: {warning}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(report: &UsageReport) {
    let currency = &report.prices.currency;
    let cost_header = format!("COST ({currency})");
    let row = |r: &UsageRow, app: &str, function: &str| {
        vec![
            app.to_string(),
            function.to_string(),
            r.requests.to_string(),
            r.errors.to_string(),
            r.cold_starts.to_string(),
            format!("{:.3}", r.gb_seconds),
            format!("{:.3}", r.cpu_seconds),
            format!("{:.6}", r.cost),
        ]
    };
    let mut rows: Vec<Vec<String>> = report
        .functions
        .iter()
        .map(|r| row(r, &r.app, &r.function))
        .collect();
    rows.push(row(&report.total, "TOTAL", ""));
    output::table(
        &[
            "APP",
            "FUNCTION",
            "REQUESTS",
            "ERRORS",
            "COLD",
            "GB-SECONDS",
            "CPU-SECONDS",
            &cost_header,
        ],
        &rows,
    );
    let since = report.since.as_deref().unwrap_or("the start of retention");
    println!(
        "since {since}; {currency} {} per GB-second, {currency} {} per million requests{}",
        report.prices.per_gb_second,
        report.prices.per_million_requests,
        if report.granularity == "hour" {
            " (from hourly totals)"
        } else {
            ""
        }
    );
    if report.total.sampled > 0 {
        println!(
            "{} of these invocations were counted but not kept one by one (raw records sampled past a rate per function); every number above includes them",
            report.total.sampled
        );
    }
}

/// Decimals of a cost in CSV: a billionth of the currency, so that a
/// function's share of one request's price (0.0000002 at the default price)
/// still shows, without the float's noise in the last digits.
const COST_DECIMALS: usize = 9;

/// A number with a fixed count of decimals (`{:.N}`).
struct Fixed(f64, usize);

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.*}", self.1, self.0)
    }
}

/// One row per function; plain numbers (no units, no thousands separators)
/// with fixed decimals, so spreadsheets can sum them.
fn csv(report: &UsageReport) -> String {
    let mut out = String::from(
        "app,function,requests,errors,cold_starts,gb_seconds,cpu_seconds,duration_seconds,bytes_in,bytes_out,sampled,cost,currency\n",
    );
    for r in &report.functions {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&r.app),
            csv_field(&r.function),
            r.requests,
            r.errors,
            r.cold_starts,
            Fixed(r.gb_seconds, 6),
            Fixed(r.cpu_seconds, 6),
            Fixed(r.duration_seconds, 6),
            r.bytes_in,
            r.bytes_out,
            r.sampled,
            Fixed(r.cost, COST_DECIMALS),
            csv_field(&report.prices.currency),
        ));
    }
    out
}

/// RFC 4180 quoting, only where needed (names are restricted anyway).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
