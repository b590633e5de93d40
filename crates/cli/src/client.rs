//! A small client of the admin API that turns every failure into one
//! sentence: unreachable node, rejected token, or the server's own message.

use std::path::Path;

use anyhow::{Context, anyhow};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use stratus_manifest::Namespace;

use crate::args::ClientOpts;
use crate::up_token;

pub struct Client {
    http: reqwest::Client,
    base: String,
    namespace: Namespace,
    token: Option<String>,
    /// Where the token came from, for the message when it is refused.
    token_source: String,
}

impl Client {
    pub fn new(opts: &ClientOpts) -> anyhow::Result<Client> {
        let base = opts.server.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            anyhow::bail!(
                "--server must be an http:// or https:// URL, got \"{}\"",
                opts.server
            );
        }
        let namespace = Namespace::new(&opts.namespace)
            .with_context(|| "--namespace (or STRATUS_NAMESPACE) names no namespace")?;
        // A running `up` node on the port asked for comes before a data
        // dir here: it is the node that answers there now.
        let local = Path::new("./.stratus");
        let (token, token_source) = if let Some(token) = opts.token.clone() {
            (Some(token), "given by --token or STRATUS_TOKEN".to_string())
        } else if let Some((token, path)) = up_token::find(&base) {
            let source = format!("that `stratus up` left in {}", path.display());
            (Some(token), source)
        } else if let Some(token) = read_local_token(local) {
            let source = format!("read from {}", local.join("admin-token").display());
            (Some(token), source)
        } else {
            (None, String::new())
        };
        // reqwest builds its TLS setup even for http://, from the process's
        // provider: every client of the CLI is built here, so it is set here.
        crate::tls::install_provider();
        let mut http = reqwest::Client::builder();
        if base.starts_with("https://") {
            http =
                http.tls_backend_preconfigured(crate::tls::client_config(opts.ca_cert.as_deref())?);
        }
        let http = http.build().context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base,
            namespace,
            token,
            token_source,
        })
    }

    /// The admin API's URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The namespace the commands address.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// A request to `path` of the API; a path under `/v1` is the
    /// namespace's (`/v1/namespaces/<namespace>/…`) unless it is one of the
    /// node's own.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let node_wide = ["/v1/nodes", "/v1/namespaces"].iter().any(|p| {
            path == *p || path.starts_with(&format!("{p}/")) || path.starts_with(&format!("{p}?"))
        });
        let url = match path.strip_prefix("/v1/") {
            Some(rest) if !node_wide && !self.namespace.is_default() => {
                format!("{}/v1/namespaces/{}/{rest}", self.base, self.namespace)
            }
            _ => format!("{}{path}", self.base),
        };
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a request; connection failures and non-2xx answers become errors.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response, self.token_source()).await)
        }
    }

    /// Sends a request without treating error statuses as failures (invoke
    /// prints the function's answer whatever its status).
    pub async fn send_raw(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        request.send().await.map_err(|e| self.unreachable(e))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.send(self.request(Method::GET, path)).await?;
        read_json(response).await
    }

    /// Where the token came from; `None` when the CLI found none.
    pub fn token_source(&self) -> Option<&str> {
        self.token.as_ref().map(|_| self.token_source.as_str())
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        let cause = root_cause(&e);
        if self.base.starts_with("https://") && cause.to_lowercase().contains("certificate") {
            anyhow!(
                "the admin API at {} answered with a TLS certificate this CLI does not trust \
                 ({cause}); give the CA certificate that signed it with --ca-cert or \
                 STRATUS_CA_CERT",
                self.base
            )
        } else if e.is_connect() {
            anyhow!(
                "cannot reach the Stratus admin API at {}; is `stratus server` or `stratus up` \
                 running there? (set --server or STRATUS_SERVER)",
                self.base
            )
        } else if e.is_timeout() {
            anyhow!(
                "the Stratus admin API at {} did not answer in time",
                self.base
            )
        } else {
            anyhow!("request to {} failed: {cause}", self.base)
        }
    }
}

pub async fn read_json<T: DeserializeOwned>(response: Response) -> anyhow::Result<T> {
    let url = response.url().path().to_string();
    let bytes = response
        .bytes()
        .await
        .context("reading the server's answer")?;
    serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("the server's answer to {url} is not what this CLI expects ({e}); are the CLI and server versions the same?"))
}

/// Where each kind of node keeps its token, for the hints below.
const WHERE_TOKENS_ARE: &str = "`stratus server` stores its token in <data-dir>/admin-token \
     (read from ./.stratus when you run the CLI next to it), and a `stratus up` on this machine \
     is found by its port with no token given (it prints an `export STRATUS_TOKEN=…` line for \
     other machines)";

/// The server's JSON error message when there is one, else the status.
/// `token_source` says where the token came from, `None` when none was sent.
pub async fn api_error(response: Response, token_source: Option<&str>) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    match (status, message, token_source) {
        (StatusCode::UNAUTHORIZED, _, None) => anyhow!(
            "the node needs an admin token; pass --token or set STRATUS_TOKEN. {WHERE_TOKENS_ARE}"
        ),
        (StatusCode::UNAUTHORIZED, _, Some(source)) => anyhow!(
            "the node rejected the admin token {source}; pass the right one with --token or \
             STRATUS_TOKEN. {WHERE_TOKENS_ARE}"
        ),
        (_, Some(message), _) => anyhow!("{message}"),
        (status, None, _) => {
            let snippet: String = text.chars().take(200).collect();
            anyhow!("the server answered {status}: {}", snippet.trim())
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The token a local `stratus server` stored in its default data dir, so
/// commands run next to it need no flags.
fn read_local_token(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join("admin-token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}
