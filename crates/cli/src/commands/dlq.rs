//! `stratus dlq ls|redrive FUNCTION`: a function's dead letters.

use std::process::ExitCode;

use reqwest::Method;
use stratus_admin::model::{DeadLetters, Redriven};

use crate::args::{ClientOpts, DlqCommand};
use crate::client::{Client, read_json};
use crate::commands::apps::segment;
use crate::output;

pub async fn run(opts: &ClientOpts, command: DlqCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    match command {
        DlqCommand::Ls(args) => {
            let path = format!("/v1/functions/{}/dead-letters", segment(&args.function));
            let dead: DeadLetters = client.get_json(&path).await?;
            output::print(
                args.format,
                &dead,
                &["ID", "ATTEMPTS", "FAILED (UTC)", "LAST ERROR"],
                || {
                    dead.events
                        .iter()
                        .map(|e| {
                            vec![
                                e.id.clone(),
                                e.attempts.to_string(),
                                e.updated_at.clone(),
                                e.last_error.clone().unwrap_or_default(),
                            ]
                        })
                        .collect()
                },
                &format!(
                    "function {} has no dead letters: every event it was sent succeeded or is still queued",
                    args.function
                ),
            )?;
        }
        DlqCommand::Redrive(args) => {
            let path = format!(
                "/v1/functions/{}/dead-letters/redrive",
                segment(&args.function)
            );
            let mut request = client.request(Method::POST, &path);
            if let Some(id) = &args.id {
                request = request.query(&[("id", id)]);
            }
            let response = client.send(request).await?;
            let redriven: Redriven = read_json(response).await?;
            println!("redriven: {}", redriven.redriven);
        }
    }
    Ok(ExitCode::SUCCESS)
}
