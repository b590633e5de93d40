//! `stratus tokens create|ls|revoke`: scoped API tokens of the namespace
//! (`--namespace`), or node-wide ones. A new token is printed once: the
//! node keeps only a salted hash of it.

use std::process::ExitCode;

use reqwest::Method;
use stratus_admin::model::{TokenCreated, TokenInfo};

use crate::args::{ClientOpts, TokensCommand};
use crate::client::Client;
use crate::commands::apps::segment;
use crate::output;

pub async fn run(opts: &ClientOpts, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let namespace = client.namespace().clone();
    match command {
        TokensCommand::Create(args) => {
            let body = serde_json::json!({
                "name": args.name,
                "role": args.role,
                "expires": args.expires,
                "node_wide": args.node_wide,
            });
            let response = client
                .send(client.request(Method::POST, "/v1/tokens").json(&body))
                .await?;
            let created: TokenCreated = response.json().await?;
            let scope = match &created.info.namespace {
                Some(ns) => format!("namespace {ns}"),
                None => "every namespace".to_owned(),
            };
            eprintln!(
                "token {} ({}, {} of {scope}); it is shown only now:",
                created.info.id, created.info.name, created.info.role
            );
            println!("{}", created.token);
        }
        TokensCommand::Ls(args) => {
            let path = if args.node_wide {
                "/v1/tokens?node_wide=true"
            } else {
                "/v1/tokens"
            };
            let tokens: Vec<TokenInfo> = client.get_json(path).await?;
            let when = |t: Option<i64>| t.map_or("-".to_owned(), output::timestamp);
            output::print(
                args.format,
                &tokens,
                &[
                    "ID",
                    "NAME",
                    "ROLE",
                    "SCOPE",
                    "CREATED (UTC)",
                    "EXPIRES",
                    "LAST USED",
                ],
                || {
                    tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.clone(),
                                t.name.clone(),
                                t.role.clone(),
                                t.namespace.clone().unwrap_or_else(|| "node".into()),
                                output::timestamp(t.created_at),
                                when(t.expires_at),
                                when(t.last_used_at),
                            ]
                        })
                        .collect()
                },
                &format!(
                    "namespace {namespace} has no tokens; make one with `stratus tokens create --namespace {namespace} --role viewer --name NAME`"
                ),
            )?;
        }
        TokensCommand::Revoke(args) => {
            let path = format!("/v1/tokens/{}", segment(&args.id));
            client.send(client.request(Method::DELETE, &path)).await?;
            println!("token {} revoked", args.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
