//! Bearer-token authentication for `/v1`.

use std::sync::Arc;

use axum::extract::{FromRef, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;

use crate::AdminState;
use crate::error::ApiError;

/// The node's admin token: all the check needs.
#[derive(Debug, Clone)]
pub struct Token(Arc<str>);

impl FromRef<AdminState> for Token {
    fn from_ref(state: &AdminState) -> Self {
        Token(state.token.clone())
    }
}

/// Rejects requests without `Authorization: Bearer <the node's token>`.
pub async fn require_token(
    State(Token(token)): State<Token>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::unauthorized("the bearer token is not valid for this node").into_response(),
        None => ApiError::unauthorized(
            "this endpoint needs `Authorization: Bearer <token>`; the CLI reads it from --token or STRATUS_TOKEN",
        )
        .into_response(),
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
