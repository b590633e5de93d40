//! `stratus secrets set|ls|rm APP …`: an app's secrets. The value of `set`
//! is read from stdin (never from an argument, which would end up in shell
//! history and in `ps`).

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use stratus_admin::model::SecretSummary;

use crate::args::{ClientOpts, SecretsCommand};
use crate::client::Client;
use crate::commands::apps::segment;
use crate::output;

pub async fn run(opts: &ClientOpts, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    match command {
        SecretsCommand::Set(args) => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("cannot read the secret's value from stdin (it must be UTF-8 text)")?;
            // `echo value | stratus secrets set` adds a newline nobody meant.
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value).to_string();
            if value.is_empty() {
                anyhow::bail!(
                    "the secret's value is empty; pipe it on stdin, e.g. `printf %s \"$TOKEN\" | stratus secrets set {} {}`",
                    args.app,
                    args.name
                );
            }
            let path = format!(
                "/v1/apps/{}/secrets/{}",
                segment(&args.app),
                segment(&args.name)
            );
            client
                .send(client.request(Method::PUT, &path).body(value))
                .await?;
            println!("secret {} of app {} set", args.name, args.app);
        }
        SecretsCommand::Ls(args) => {
            let path = format!("/v1/apps/{}/secrets", segment(&args.app));
            let secrets: Vec<SecretSummary> = client.get_json(&path).await?;
            output::print(
                args.format,
                &secrets,
                &["NAME", "UPDATED (UTC)"],
                || {
                    secrets
                        .iter()
                        .map(|s| vec![s.name.clone(), output::timestamp(s.updated_at)])
                        .collect()
                },
                &format!(
                    "app {} has no secrets; set one with `printf %s \"$VALUE\" | stratus secrets set {} NAME`",
                    args.app, args.app
                ),
            )?;
        }
        SecretsCommand::Rm(args) => {
            let path = format!(
                "/v1/apps/{}/secrets/{}",
                segment(&args.app),
                segment(&args.name)
            );
            client.send(client.request(Method::DELETE, &path)).await?;
            println!("secret {} of app {} removed", args.name, args.app);
        }
    }
    Ok(ExitCode::SUCCESS)
}
