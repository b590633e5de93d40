//! The request headers Spin gives an HTTP component, for functions deployed
//! from a `spin.toml`: Spin guests read them (the Rust SDK's router matches
//! on `spin-path-info`), so a moved app must find them where Spin puts them.

use std::net::SocketAddr;

use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Uri};
use stratus_manifest::{Route, RoutePath, SpinSpec};

const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");

/// Sets Spin's headers on a request `spin`'s function serves, replacing
/// any the client sent (a client must not tell the guest which route
/// matched, nor where it connects from). `client` is the peer of the
/// connection: behind a proxy, the proxy's address, as in Spin.
pub(crate) fn set_headers(
    spin: &SpinSpec,
    uri: &Uri,
    client: Option<SocketAddr>,
    headers: &mut HeaderMap,
) {
    match client.map(|addr| HeaderValue::from_str(&addr.to_string())) {
        Some(Ok(addr)) => {
            headers.insert(CLIENT_ADDR, addr);
        }
        _ => {
            headers.remove(CLIENT_ADDR);
        }
    }
    let path = uri.path();
    // The function's most specific route for this path: the gateway chose
    // the function by the same rule.
    let matched = spin
        .routes
        .iter()
        .filter_map(|r| Some((Route::parse(&r.route).ok()?.path, r)))
        .filter(|(route, _)| covers(route, path))
        .max_by_key(|(route, _)| specificity(route));
    let Some((route, spin_route)) = matched else {
        return;
    };
    let path_info = match &route {
        RoutePath::Exact(_) => "",
        RoutePath::Prefix(prefix) => &path[prefix.len()..],
    };
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_owned();
    let path_and_query = uri.path_and_query().map_or(path, |pq| pq.as_str());
    let scheme = uri.scheme_str().unwrap_or("http");
    let component_route = spin_route
        .raw
        .strip_suffix("/...")
        .unwrap_or(&spin_route.raw);
    for (name, value) in [
        (FULL_URL, format!("{scheme}://{host}{path_and_query}")),
        (PATH_INFO, path_info.to_owned()),
        (MATCHED_ROUTE, spin_route.route.clone()),
        (COMPONENT_ROUTE, component_route.to_owned()),
        (RAW_COMPONENT_ROUTE, spin_route.raw.clone()),
        (BASE_PATH, spin.base.clone()),
    ] {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            // Only a Host header with bytes a URL cannot hold gets here.
            Err(_) => {
                headers.remove(name);
            }
        }
    }
}

fn covers(route: &RoutePath, path: &str) -> bool {
    match route {
        RoutePath::Exact(exact) => exact == path,
        RoutePath::Prefix(prefix) => {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                || (prefix.is_empty() && path.starts_with('/'))
        }
    }
}

fn specificity(route: &RoutePath) -> (bool, usize) {
    match route {
        RoutePath::Exact(path) => (true, path.len()),
        RoutePath::Prefix(prefix) => (false, prefix.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_manifest::SpinRoute;

    fn spin() -> SpinSpec {
        SpinSpec {
            base: "/api".into(),
            routes: vec![
                SpinRoute {
                    route: "/api/hello/...".into(),
                    raw: "/hello/...".into(),
                },
                SpinRoute {
                    route: "/api/hello/exact".into(),
                    raw: "/hello/exact".into(),
                },
            ],
        }
    }

    fn headers_for(uri: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.com:3000"));
        headers.insert(PATH_INFO, HeaderValue::from_static("/forged"));
        headers.insert(CLIENT_ADDR, HeaderValue::from_static("10.0.0.1:1"));
        let client = "127.0.0.1:45678".parse().ok();
        set_headers(&spin(), &uri.parse().unwrap(), client, &mut headers);
        headers
    }

    #[test]
    fn the_client_address_is_the_connection_peer_or_none() {
        assert_eq!(
            headers_for("/api/hello/a")[&CLIENT_ADDR],
            "127.0.0.1:45678",
            "the client's value is replaced"
        );
        let mut headers = HeaderMap::new();
        headers.insert(CLIENT_ADDR, HeaderValue::from_static("10.0.0.1:1"));
        set_headers(
            &spin(),
            &"/api/hello/a".parse().unwrap(),
            None,
            &mut headers,
        );
        assert!(
            !headers.contains_key(CLIENT_ADDR),
            "a forged value is not kept"
        );
    }

    #[test]
    fn a_wildcard_route_gives_the_rest_of_the_path() {
        let h = headers_for("/api/hello/a/b?x=1");
        assert_eq!(h[&PATH_INFO], "/a/b", "the client's value is replaced");
        assert_eq!(h[&MATCHED_ROUTE], "/api/hello/...");
        assert_eq!(h[&RAW_COMPONENT_ROUTE], "/hello/...");
        assert_eq!(h[&COMPONENT_ROUTE], "/hello");
        assert_eq!(h[&BASE_PATH], "/api");
        assert_eq!(h[&FULL_URL], "http://example.com:3000/api/hello/a/b?x=1");
        assert_eq!(headers_for("/api/hello")[&PATH_INFO], "");
        assert_eq!(headers_for("/api/hello/")[&PATH_INFO], "/");
    }

    #[test]
    fn an_exact_route_wins_and_has_no_path_info() {
        let h = headers_for("/api/hello/exact");
        assert_eq!(h[&PATH_INFO], "");
        assert_eq!(h[&MATCHED_ROUTE], "/api/hello/exact");
    }
}
