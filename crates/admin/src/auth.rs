//! Who a request acts as, and whether it may: bearer tokens for `/v1`.
//!
//! Two kinds of token open the API. The node's own token (the bootstrap
//! token, from `--token-file` or `stratus up`) may do everything. Scoped
//! tokens (`stratus tokens create`) act in one namespace, or node-wide, with
//! a [`Role`]; each endpoint needs a role ([`crate::access`]). A scoped
//! token is `stratus_<id>_<secret>`: the id finds its record, which holds a
//! salted hash of the secret and never the secret itself.
//!
//! Another namespace's endpoints answer a namespace's token 404, as if the
//! namespace held nothing: a token learns nothing of what it may not see.
//! Its own namespace's endpoints that need more than its role answer 403,
//! naming the role needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use stratus_manifest::Namespace;
use stratus_storage::{Role, TokenRecord, TokenStore, now_ms};

use crate::AdminState;
use crate::access::{Access, access};
use crate::error::ApiError;

/// How often a token's last use is written, at most: a hint for `tokens
/// ls`, not worth a write per request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// What the check needs: the node's own token and the scoped tokens.
#[derive(Clone)]
pub struct Auth {
    token: Arc<str>,
    tokens: Arc<dyn TokenStore>,
    /// When each token's last use was last written.
    touched: Arc<Mutex<HashMap<String, i64>>>,
}

impl FromRef<AdminState> for Auth {
    fn from_ref(state: &AdminState) -> Self {
        Auth {
            token: state.token.clone(),
            tokens: state.tokens.clone(),
            touched: state.touched.clone(),
        }
    }
}

/// Who a request acts as, for handlers that decide by it (tokens) and for
/// the record of what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The node's own token: everything, in every namespace.
    Node,
    /// A scoped token.
    Token {
        id: String,
        name: String,
        /// `None`: node-wide.
        namespace: Option<Namespace>,
        role: Role,
    },
}

impl Principal {
    /// Its name, as the history of what it did shows it.
    pub fn name(&self) -> &str {
        match self {
            Principal::Node => "node token",
            Principal::Token { name, .. } => name,
        }
    }

    /// Whether it acts on every namespace with `role` or more.
    pub fn node_wide(&self, role: Role) -> bool {
        match self {
            Principal::Node => true,
            Principal::Token {
                namespace: None,
                role: own,
                ..
            } => *own >= role,
            Principal::Token { .. } => false,
        }
    }
}

/// The token a secret was made into.
pub(crate) const TOKEN_PREFIX: &str = "stratus_";

/// The salted hash a record keeps of `secret`.
pub(crate) fn hash(salt: &str, secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(salt.as_bytes());
    digest.update(secret.as_bytes());
    hex::encode(digest.finalize())
}

/// Authenticates, then authorizes by the endpoint's [`Access`]; the
/// [`Principal`] goes on to the handler.
pub async fn require_token(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(presented) = presented else {
        return ApiError::unauthorized(
            "this endpoint needs `Authorization: Bearer <token>`; the CLI reads it from --token or STRATUS_TOKEN",
        )
        .into_response();
    };
    let principal = match authenticate(&auth, &presented).await {
        Ok(principal) => principal,
        Err(e) => return e.into_response(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |p| p.as_str());
    let needs = access(request.method(), route);
    let namespace = request
        .extensions()
        .get::<Namespace>()
        .cloned()
        .unwrap_or_default();
    // The principal goes on the response too, refused or not: the audit
    // log, outside this check, names who it was.
    if let Err(e) = authorize(&principal, needs, &namespace) {
        let mut response = e.into_response();
        response.extensions_mut().insert(principal);
        return response;
    }
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(principal);
    response
}

async fn authenticate(auth: &Auth, presented: &str) -> Result<Principal, ApiError> {
    if constant_time_eq(presented.as_bytes(), auth.token.as_bytes()) {
        return Ok(Principal::Node);
    }
    let invalid = || ApiError::unauthorized("the bearer token is not valid for this node");
    let (id, secret) = presented
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .ok_or_else(invalid)?;
    let record = auth.tokens.get(id).await?.ok_or_else(invalid)?;
    if !constant_time_eq(
        hash(&record.salt, secret).as_bytes(),
        record.hash.as_bytes(),
    ) {
        return Err(invalid());
    }
    let now = now_ms();
    if let Some(expires) = record.expires_at
        && expires <= now
    {
        return Err(ApiError::unauthorized(&format!(
            "the token \"{}\" expired at {}; ask an admin of its namespace for a new one",
            record.name,
            stratus_storage::format_time(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(expires.max(0) as u64)
            )
        )));
    }
    touch(auth, &record, now);
    let namespace = match &record.namespace {
        Some(name) => Some(Namespace::new(name).map_err(|_| invalid())?),
        None => None,
    };
    Ok(Principal::Token {
        id: record.id,
        name: record.name,
        namespace,
        role: record.role,
    })
}

/// Notes a use of the token in the store, at most every
/// [`TOUCH_EVERY_MS`], without holding up the request.
fn touch(auth: &Auth, record: &TokenRecord, now: i64) {
    let due = match auth.touched.lock() {
        Ok(mut touched) => {
            let last = touched.get(&record.id).copied().unwrap_or(i64::MIN);
            let due = now.saturating_sub(last) >= TOUCH_EVERY_MS;
            if due {
                touched.insert(record.id.clone(), now);
            }
            due
        }
        Err(_) => false,
    };
    if due {
        let (tokens, id) = (auth.tokens.clone(), record.id.clone());
        tokio::spawn(async move {
            if let Err(e) = tokens.touch(&id, now).await {
                tracing::debug!(token = %id, "cannot note the token's use: {e}");
            }
        });
    }
}

fn authorize(principal: &Principal, needs: Access, namespace: &Namespace) -> Result<(), ApiError> {
    let (own, role, name) = match principal {
        Principal::Node => return Ok(()),
        Principal::Token {
            namespace,
            role,
            name,
            ..
        } => (namespace, *role, name),
    };
    if needs.own {
        return Ok(());
    }
    match own {
        Some(own) if needs.node_wide => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this endpoint is the node's, not a namespace's: it needs a node-wide token; the token \"{name}\" acts in namespace \"{own}\""
            ),
        )),
        // Never "forbidden" here: that would say there is something.
        Some(own) if own != namespace => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "namespace_not_found",
            format!("there is no namespace \"{namespace}\" this token may see"),
        )),
        _ if role < needs.role => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the role {} or above; the token \"{name}\" is {role}",
                needs.role
            ),
        )),
        _ => Ok(()),
    }
}

/// Compares without an early exit, so response timing does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_by_content() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
