//! `stratus traffic APP [vN=P …]`: shows or sets how an app's requests
//! split between its live version and a canary.

use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::json;
use stratus_control::TrafficReport;
use stratus_storage::Sticky;

use crate::args::{CanaryOpts, ClientOpts, Format, TrafficArgs};
use crate::client::{Client, read_json};
use crate::commands::apps::segment;
use crate::output;

pub async fn run(opts: &ClientOpts, args: TrafficArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = format!("/v1/apps/{}/traffic", segment(&args.app));
    let report: TrafficReport = if args.split.is_empty() {
        if args.rollout != CanaryOpts::default() {
            anyhow::bail!(
                "--steps, --interval, --sticky-* and the limits go with a split, e.g. `v1=90 v2=10`"
            );
        }
        client.get_json(&path).await?
    } else {
        let split = args
            .split
            .iter()
            .map(|s| parse_share(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let o = &args.rollout;
        let body = json!({
            "split": split,
            "steps": o.steps,
            "interval_secs": o.interval.map(|d| d.as_secs()),
            "sticky_header": o.sticky_header,
            "sticky_cookie": o.sticky_cookie,
            "max_error_rate_increase": o.max_error_rate_increase,
            "max_p99_ratio": o.max_p99_ratio,
            "min_requests": o.min_requests,
        });
        let response = client
            .send(client.request(Method::PUT, &path).json(&body))
            .await?;
        read_json(response).await?
    };
    if args.format == Format::Json {
        output::json(&report)?;
    } else {
        print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `v8=10` (or `8=10`) as the API's split entry.
fn parse_share(text: &str) -> anyhow::Result<serde_json::Value> {
    let (version, percent) = text
        .split_once('=')
        .with_context(|| format!("{text:?}: a share is VERSION=PERCENT, like v8=10"))?;
    let version: u32 = version
        .trim_start_matches('v')
        .parse()
        .with_context(|| format!("{text:?}: {version:?} is not a version number"))?;
    let percent: u8 = percent
        .parse()
        .with_context(|| format!("{text:?}: {percent:?} is not a percentage"))?;
    Ok(json!({ "version": version, "percent": percent }))
}

/// The query parameters of `deploy --canary` for `opts`.
pub fn canary_query(opts: &CanaryOpts) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if !opts.steps.is_empty() {
        let steps: Vec<String> = opts.steps.iter().map(u8::to_string).collect();
        query.push(("steps", steps.join(",")));
    }
    if let Some(interval) = opts.interval {
        query.push(("interval_secs", interval.as_secs().to_string()));
    }
    if let Some(header) = &opts.sticky_header {
        query.push(("sticky_header", header.clone()));
    }
    if let Some(cookie) = &opts.sticky_cookie {
        query.push(("sticky_cookie", cookie.clone()));
    }
    if let Some(v) = opts.max_error_rate_increase {
        query.push(("max_error_rate_increase", v.to_string()));
    }
    if let Some(v) = opts.max_p99_ratio {
        query.push(("max_p99_ratio", v.to_string()));
    }
    if let Some(v) = opts.min_requests {
        query.push(("min_requests", v.to_string()));
    }
    query
}

fn print(report: &TrafficReport) {
    let live = report
        .live_version
        .map_or_else(|| "no live version".to_owned(), |v| format!("v{v} live"));
    match &report.canary {
        None => println!("{}: {live}, no canary", report.app),
        Some(c) => {
            let steps = if c.steps.is_empty() {
                "stays there until changed".to_owned()
            } else {
                let steps: Vec<String> = c.steps.iter().map(|s| format!("{s}%")).collect();
                format!("then {} every {} s", steps.join(", "), c.interval_ms / 1000)
            };
            let sticky = match &c.sticky {
                Some(Sticky::Header(h)) => format!("; sticky by header {h}"),
                Some(Sticky::Cookie(k)) => format!("; sticky by cookie {k}"),
                None => String::new(),
            };
            println!(
                "{}: {live}, canary v{} at {}% ({steps}{sticky})",
                report.app, c.version, c.percent
            );
            println!(
                "  rolled back past +{} points of errors or {}× the p99, judged after {} requests",
                c.policy.max_error_rate_increase, c.policy.max_p99_ratio, c.policy.min_requests
            );
        }
    }
    if let Some(w) = &report.window {
        println!("  this step, on this node:");
        for v in [&w.stable, &w.canary] {
            println!(
                "    v{}: {} requests, {:.1}% errors, p99 {}",
                v.version,
                v.requests,
                v.error_percent,
                v.p99_ms.map_or("-".into(), |p| format!("{p:.1} ms"))
            );
        }
    }
    if report.history.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = report
        .history
        .iter()
        .map(|e| {
            vec![
                output::timestamp(e.at),
                e.action.as_str().to_owned(),
                format!("v{}", e.stable),
                format!("v{}", e.canary),
                format!("{}%", e.percent),
                if e.by.is_empty() {
                    "-".into()
                } else {
                    e.by.clone()
                },
                e.reason.clone(),
            ]
        })
        .collect();
    println!();
    output::table(
        &[
            "TIME (UTC)",
            "ACTION",
            "STABLE",
            "CANARY",
            "SHARE",
            "BY",
            "WHY",
        ],
        &rows,
    );
}
