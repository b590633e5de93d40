//! `stratus audit`: the namespace's audit log, oldest first.

use std::process::ExitCode;

use stratus_admin::model::AuditRecord;

use crate::args::{AuditArgs, ClientOpts};
use crate::client::Client;
use crate::output;

pub async fn run(opts: &ClientOpts, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let limit = args.limit.to_string();
    let mut query = vec![("limit", limit.as_str())];
    if let Some(since) = &args.since {
        query.push(("since", since.as_str()));
    }
    if args.node_wide {
        query.push(("node_wide", "true"));
    }
    let request = client
        .request(reqwest::Method::GET, "/v1/audit")
        .query(&query);
    let response = client.send(request).await?;
    let entries: Vec<AuditRecord> = crate::client::read_json(response).await?;
    let who = |e: &AuditRecord| match e.token_name.as_str() {
        "" => "(no valid token)".to_owned(),
        name => format!("{name} ({})", e.role),
    };
    output::print(
        args.format,
        &entries,
        &[
            "TIME (UTC)",
            "WHO",
            "FROM",
            "ACTION",
            "TARGET",
            "OUTCOME",
            "DETAIL",
        ],
        || {
            entries
                .iter()
                .map(|e| {
                    vec![
                        e.time.clone(),
                        who(e),
                        e.source.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        format!("{} {}", e.status, e.outcome),
                        e.detail.clone(),
                    ]
                })
                .collect()
        },
        &format!(
            "nothing was changed in namespace {} through the API{}",
            client.namespace(),
            args.since
                .as_ref()
                .map_or(String::new(), |since| format!(" since {since}"))
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}
