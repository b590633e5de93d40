//! `stratus invocations FUNCTION`: a function's recorded invocations;
//! `stratus replay FUNCTION ID`: one of its events queued for it again.

use std::process::ExitCode;

use reqwest::Method;
use stratus_admin::model::{AsyncAccepted, InvocationList};

use crate::args::{ClientOpts, InvocationsArgs, ReplayArgs};
use crate::client::{Client, read_json};
use crate::commands::apps::segment;
use crate::output;

pub async fn list(opts: &ClientOpts, args: InvocationsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = format!("/v1/functions/{}/invocations", segment(&args.function));
    let mut query = vec![("limit", args.limit.to_string())];
    for (key, value) in [
        ("status", args.status),
        ("trigger", args.trigger),
        ("since", args.since),
        (
            "min_duration_ms",
            args.min_duration_ms.map(|ms| ms.to_string()),
        ),
    ] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    let response = client
        .send(client.request(Method::GET, &path).query(&query))
        .await?;
    let list: InvocationList = read_json(response).await?;
    output::print(
        args.format,
        &list,
        &[
            "ID",
            "STARTED (UTC)",
            "STATUS",
            "TRIGGER",
            "MS",
            "COLD",
            "VERSION",
            "ERROR",
        ],
        || {
            list.invocations
                .iter()
                .map(|i| {
                    vec![
                        i.id.clone(),
                        i.started_at.clone(),
                        i.status.to_string(),
                        i.trigger.clone(),
                        format!("{:.1}", i.duration_ms),
                        if i.cold { "cold" } else { "" }.to_owned(),
                        i.version.to_string(),
                        i.error.clone().unwrap_or_default(),
                    ]
                })
                .collect()
        },
        &format!(
            "no recorded invocation of {} matches (see `stratus logs {}` for its output)",
            args.function, args.function
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn replay(opts: &ClientOpts, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = format!(
        "/v1/functions/{}/events/{}/replay",
        segment(&args.function),
        segment(&args.id)
    );
    let response = client.send(client.request(Method::POST, &path)).await?;
    let accepted: AsyncAccepted = read_json(response).await?;
    println!(
        "replayed {} as {} ({})",
        args.id, accepted.id, accepted.state
    );
    Ok(ExitCode::SUCCESS)
}
