//! `stratus apps`, `versions`, `rollback`, `delete`.

use std::process::ExitCode;

use reqwest::Method;
use stratus_admin::model::{ActivateResponse, AppSummary, VersionSummary};

use crate::args::{ClientOpts, DeleteArgs, ListArgs, RollbackArgs, VersionsArgs};
use crate::client::{Client, read_json};
use crate::output;

pub async fn list(opts: &ClientOpts, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let apps: Vec<AppSummary> = client.get_json("/v1/apps").await?;
    output::print(
        args.format,
        &apps,
        &["APP", "LIVE", "CANARY", "VERSIONS", "UPDATED (UTC)"],
        || {
            apps.iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.live_version.map_or("-".into(), |v| v.to_string()),
                        a.canary
                            .map_or("-".into(), |c| format!("v{} {}%", c.version, c.percent)),
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
    output::print(
        args.format,
        &versions,
        &["VERSION", "LIVE", "CREATED (UTC)", "FUNCTIONS"],
        || {
            versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        if v.live { "*" } else { "" }.to_string(),
                        output::timestamp(v.created_at),
                        v.functions
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
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
