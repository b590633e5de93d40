//! `stratus nodes`: the nodes serving the platform and their load.

use std::process::ExitCode;

use stratus_admin::model::NodeInfo;

use crate::args::{ClientOpts, ListArgs};
use crate::client::Client;
use crate::output;

pub async fn list(opts: &ClientOpts, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let nodes: Vec<NodeInfo> = client.get_json("/v1/nodes").await?;
    output::print(
        args.format,
        &nodes,
        &[
            "NODE",
            "HOST",
            "GATEWAY",
            "ADMIN",
            "VERSION",
            "APPS",
            "IN FLIGHT",
            "STARTED (UTC)",
        ],
        || {
            nodes
                .iter()
                .map(|n| {
                    vec![
                        n.id.clone(),
                        n.hostname.clone(),
                        n.gateway.clone(),
                        n.admin.clone(),
                        n.version.clone(),
                        n.live_apps.to_string(),
                        format!("{}/{}", n.in_flight, n.capacity),
                        output::timestamp(n.started_at),
                    ]
                })
                .collect()
        },
        "no node has reported to the cluster in the last 15 seconds",
    )?;
    Ok(ExitCode::SUCCESS)
}
