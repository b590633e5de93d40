//! `stratus apps`, `versions`, `rollback`, `delete`.

use std::process::ExitCode;

use reqwest::Method;
use stratus_admin::model::{ActivateResponse, AppSummary, VersionSummary};

use stratus_control::TrafficReport;

use crate::args::{ClientOpts, DeleteArgs, Format, ListArgs, RollbackArgs, VersionsArgs};
use crate::client::{Client, read_json};
use crate::output;

pub async fn list(opts: &ClientOpts, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let apps: Vec<AppSummary> = client.get_json("/v1/apps").await?;
    output::print(
        args.format,
        &apps,
        &["APP", "LIVE", "CANARY", "CODE", "VERSIONS", "UPDATED (UTC)"],
        || {
            apps.iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.live_version.map_or("-".into(), |v| v.to_string()),
                        a.canary
                            .map_or("-".into(), |c| format!("v{} {}%", c.version, c.percent)),
                        a.tier.clone().unwrap_or_else(|| "-".into()),
                        a.versions.to_string(),
                        output::timestamp(a.updated_at),
                    ]
                })
                .collect()
        },
        "no apps yet; deploy one with `stratus deploy DIR`",
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn versions(opts: &ClientOpts, args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = format!("/v1/apps/{}/versions", segment(&args.app));
    let versions: Vec<VersionSummary> = client.get_json(&path).await?;
    // The rollouts say why a version serves a share, or stopped.
    let traffic: Option<TrafficReport> = match (args.format, versions.is_empty()) {
        (Format::Table, false) => Some(
            client
                .get_json(&format!("/v1/apps/{}/traffic", segment(&args.app)))
                .await?,
        ),
        _ => None,
    };
    let serves = |version: u32, live: bool| match traffic.as_ref().and_then(|t| t.canary.as_ref()) {
        _ if live => "*".to_owned(),
        Some(c) if c.version == version => format!("canary {}%", c.percent),
        _ => String::new(),
    };
    let last_rollout = |version: u32| {
        traffic
            .as_ref()
            .and_then(|t| t.history.iter().rev().find(|e| e.canary == version))
            .map_or_else(String::new, |e| {
                format!("{}: {}", e.action.as_str(), e.reason)
            })
    };
    output::print(
        args.format,
        &versions,
        &[
            "VERSION",
            "LIVE",
            "CREATED (UTC)",
            "FUNCTIONS",
            "LAST ROLLOUT",
        ],
        || {
            versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        serves(v.version, v.live),
                        output::timestamp(v.created_at),
                        v.functions
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        last_rollout(v.version),
                    ]
                })
                .collect()
        },
        &format!(
            "app {} has no versions; deploy one with `stratus deploy DIR`",
            args.app
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(opts: &ClientOpts, args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let app = segment(&args.app);
    let path = match args.to {
        Some(version) => format!("/v1/apps/{app}/versions/{version}/activate"),
        None => format!("/v1/apps/{app}/rollback"),
    };
    let response = client.send(client.request(Method::POST, &path)).await?;
    let activated: ActivateResponse = read_json(response).await?;
    println!(
        "{} is now serving version {}",
        activated.app, activated.live_version
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(opts: &ClientOpts, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = format!("/v1/apps/{}", segment(&args.app));
    client.send(client.request(Method::DELETE, &path)).await?;
    println!("deleted {}", args.app);
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a user-given name for use as one URL path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
