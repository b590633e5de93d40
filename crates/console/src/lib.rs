//! The web console: the front-end built from `console/` at the repository
//! root (by `scripts/console.sh build`) into `assets/`, embedded here so that
//! `cargo build` needs no npm and the binary serves the console without any
//! file beside it.
//!
//! The console is a single-page app that talks to the admin API of the same
//! listener with the token the user signs in with; its files themselves are
//! public (they hold nothing of the node's), so [`router`] serves them
//! without a token. Each answer carries a strict content security policy:
//! the console runs no inline script or style and talks to nothing but its
//! own origin, so an injected string in an app's name, a log line or an
//! event can at worst show as text, never run.

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The path the console is served under.
pub const PATH: &str = "/ui";

/// What the console's pages may load and do: only their own origin's
/// scripts, styles and API; no framing (clickjacking), no plugins.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
    style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.js", "text/javascript; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The console's routes: `/ui` (redirected to `/ui/`, so the page's
/// relative links resolve under it), `/ui/` and `/ui/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PATH, get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }),
        )
}

/// Answers one file, or 304 when the client holds it already (the
/// assets change only with the binary, so their hash is their tag).
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some((asset, etag)) = ASSETS.iter().zip(etags()).find(|(a, _)| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("the console has no file {name:?}"),
        )
            .into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revalidated on every load: a node upgraded in place serves the new
    // console at once, and the tag makes the check cheap.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(tag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, tag);
    }
    response
}

/// Each asset's entity tag, in the order of [`ASSETS`], computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.bytes))[..32]))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Body::empty()).expect("a request");
        router::<()>().oneshot(request).await.expect("infallible")
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_under_a_strict_policy() {
        let page = get("/ui/", &[]).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        let html = page.into_body().collect().await.expect("body").to_bytes();
        let html = String::from_utf8_lossy(&html);
        assert!(
            html.contains("console.js") && html.contains("console.css"),
            "{html}"
        );

        for (file, kind) in [
            ("console.js", "text/javascript"),
            ("console.css", "text/css"),
        ] {
            let response = get(&format!("/ui/{file}"), &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{file}");
            let ct = response.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii");
            assert!(ct.starts_with(kind), "{file}: {ct}");
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff"
            );
        }
    }

    #[tokio::test]
    async fn bare_path_redirects_and_a_known_tag_answers_not_modified() {
        let bare = get("/ui", &[]).await;
        assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(bare.headers()[header::LOCATION], "/ui/");

        let first = get("/ui/console.js", &[]).await;
        let tag = first.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_owned();
        let again = get("/ui/console.js", &[("if-none-match", &tag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = get("/ui/console.js", &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_and_hostile_names_are_not_found() {
        for path in [
            "/ui/nothing.js",
            "/ui/..%2FCargo.toml",
            "/ui/%2e%2e",
            "/ui/index.html%00",
            "/ui/console.js/x",
        ] {
            let response = get(path, &[]).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
