//! Routes: which requests a function serves.
//!
//! A route's path is either exact (`"/price"`) or a prefix (`"/pricing/..."`,
//! serving `/pricing` and everything below it; `"/..."` serves everything).
//! A route may name the host it serves before its path
//! (`"api.example.com/orders/..."`): an app claims a custom domain that way.
//! A route without a host serves any host.
//!
//! The gateway picks the most specific matching route, so this module also
//! defines what "more specific" means, in one place: a route naming the
//! request's host beats every route without one; among routes of the same
//! kind, the longer path wins, and an exact path beats a prefix of the same
//! length.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The accepted forms, appended to every route error.
const FORMS: &str = "use \"/x\" for an exact path, \"/x/...\" for a path and everything below it, or \"/...\" for everything, each optionally after a host (\"api.example.com/x/...\")";

/// The longest host name DNS allows.
const MAX_HOST: usize = 253;

/// A parsed route: an optional host and a path. Serialized as its manifest
/// string (`"/x"`, `"/x/..."`, `"api.example.com/x/..."`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The host the route serves (lowercase, without a port); `None`
    /// serves every host.
    pub host: Option<String>,
    pub path: RoutePath,
}

/// A route's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoutePath {
    /// Matches this path and nothing else (`"/x"`).
    Exact(String),
    /// Matches this path and every path below it. Stored without the `/...`
    /// suffix (`"/x/..."` is `Prefix("/x")`); `Prefix("")` matches everything.
    Prefix(String),
}

impl From<RoutePath> for Route {
    /// A route for `path` on every host.
    fn from(path: RoutePath) -> Route {
        Route { host: None, path }
    }
}

impl Route {
    /// Parses a route as written in a manifest.
    pub fn parse(text: &str) -> Result<Route, RouteError> {
        let fail = |problem: String| {
            Err(RouteError {
                route: text.to_owned(),
                problem,
            })
        };
        let (host, path) = match text.find('/') {
            Some(0) => (None, text),
            Some(at) => (Some(&text[..at]), &text[at..]),
            None => {
                return fail("must start with '/' (or with a host and then '/')".into());
            }
        };
        if let Some(host) = host
            && let Err(problem) = check_host(host)
        {
            return fail(format!("names the host \"{host}\", which {problem}"));
        }
        match RoutePath::parse(path) {
            Ok(path) => Ok(Route {
                host: host.map(str::to_owned),
                path,
            }),
            Err(problem) => fail(problem),
        }
    }

    /// Whether a request for `path` on `host` (lowercase, without a port;
    /// `None` when the request names none) is served by this route.
    pub fn matches(&self, host: Option<&str>, path: &str) -> bool {
        self.host.as_deref().is_none_or(|own| Some(own) == host) && self.path.matches(path)
    }

    /// Orders routes so that the router can pick the best of several
    /// matches: the larger value wins. A route naming a host beats any
    /// without one; then the path decides ([`RoutePath::specificity`]).
    pub fn specificity(&self) -> (bool, usize, u8) {
        let (len, exact) = self.path.specificity();
        (self.host.is_some(), len, exact)
    }
}

/// Why `host` cannot be a route's host, if it cannot: it must be a DNS
/// name as clients send it in `Host`, lowercase, without port or wildcard.
fn check_host(host: &str) -> Result<(), String> {
    if host.len() > MAX_HOST {
        return Err(format!("is longer than {MAX_HOST} characters"));
    }
    if host.contains(':') {
        return Err("has a port; a route's host is matched on any port".into());
    }
    if host.contains('*') {
        return Err("has a wildcard; name each host of the app".into());
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "has capital letters; write it in lowercase (\"{}\"), as hosts are matched",
            host.to_ascii_lowercase()
        ));
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty label (a leading, trailing or doubled '.')".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "has the label \"{label}\", longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "has {c:?}; a host is ASCII letters, digits, '-' and '.' (an internationalized name in its xn-- form)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has the label \"{label}\", which starts or ends with '-'"
            ));
        }
    }
    Ok(())
}

/// A request's host as routes name hosts: from the URI's authority (HTTP/2,
/// absolute-form) or else the `Host` header, without its port or a
/// trailing dot, in lowercase; `None` when the request names none.
pub fn request_host(authority: Option<&str>, host_header: Option<&str>) -> Option<String> {
    let raw = authority.or(host_header)?;
    // "[::1]:8080" keeps its brackets; "example.com:8080" loses its port.
    let host = match raw.rfind(':') {
        Some(at) if !raw[at..].contains(']') => &raw[..at],
        _ => raw,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl RoutePath {
    /// Parses a route's path (it starts with '/'); the error says what is
    /// wrong with it.
    fn parse(text: &str) -> Result<RoutePath, String> {
        if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
        {
            let shown = match c {
                '?' | '#' => format!("'{c}' (query strings and fragments are not part of a route)"),
                _ => format!("whitespace or a control character ({:?})", c),
            };
            return Err(format!("contains {shown}"));
        }
        if text.contains("//") {
            return Err("has an empty segment (\"//\")".into());
        }
        // Exact "/" is the only route whose one segment is empty.
        if text == "/" {
            return Ok(RoutePath::Exact(text.to_owned()));
        }
        let segments: Vec<&str> = text[1..].split('/').collect();
        let last = segments.len() - 1;
        for (i, segment) in segments.iter().enumerate() {
            if *segment == "..." && i != last {
                return Err("uses \"...\" before the last segment; it may only end a route".into());
            }
            if *segment != "..." && segment.contains("...") {
                return Err(format!(
                    "has the segment \"{segment}\"; \"...\" must be a segment of its own, as in \"/x/...\""
                ));
            }
            if matches!(*segment, "." | "..") {
                return Err(format!(
                    "has the segment \"{segment}\", which clients remove before sending a request"
                ));
            }
        }
        Ok(match text.strip_suffix("/...") {
            Some(prefix) => RoutePath::Prefix(prefix.to_owned()),
            None => RoutePath::Exact(text.to_owned()),
        })
    }

    /// Whether a request path is served by this path. A trailing slash
    /// matters for exact paths: `"/x"` does not match `"/x/"`.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            RoutePath::Exact(exact) => path == exact,
            RoutePath::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }

    /// The larger value wins: a longer literal path is more specific; for
    /// the same length an exact path beats a prefix.
    pub fn specificity(&self) -> (usize, u8) {
        match self {
            RoutePath::Exact(exact) => (exact.len(), 1),
            RoutePath::Prefix(prefix) => (prefix.len(), 0),
        }
    }

    /// The literal path: the exact path, or the prefix without its `/...`
    /// suffix.
    pub fn literal(&self) -> &str {
        match self {
            RoutePath::Exact(path) | RoutePath::Prefix(path) => path,
        }
    }
}

impl fmt::Display for RoutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutePath::Exact(exact) => f.write_str(exact),
            RoutePath::Prefix(prefix) => write!(f, "{prefix}/..."),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            f.write_str(host)?;
        }
        self.path.fmt(f)
    }
}

impl FromStr for Route {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Route::parse(s)
    }
}

impl Serialize for Route {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Route::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A route that does not parse, with what is wrong and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route \"{route}\" {problem}; {FORMS}")]
pub struct RouteError {
    /// The route as written.
    pub route: String,
    /// What is wrong with it.
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let table = [
            ("/", None, RoutePath::Exact("/".into())),
            ("/price", None, RoutePath::Exact("/price".into())),
            ("/a/b/", None, RoutePath::Exact("/a/b/".into())),
            ("/pricing/...", None, RoutePath::Prefix("/pricing".into())),
            ("/a/b/...", None, RoutePath::Prefix("/a/b".into())),
            ("/...", None, RoutePath::Prefix("".into())),
            (
                "api.example.com/...",
                Some("api.example.com"),
                RoutePath::Prefix("".into()),
            ),
            (
                "shop.test/orders",
                Some("shop.test"),
                RoutePath::Exact("/orders".into()),
            ),
            (
                "localhost/x/...",
                Some("localhost"),
                RoutePath::Prefix("/x".into()),
            ),
            (
                "xn--bcher-kva.example/",
                Some("xn--bcher-kva.example"),
                RoutePath::Exact("/".into()),
            ),
        ];
        for (text, host, path) in table {
            let route = Route::parse(text).unwrap();
            let want = Route {
                host: host.map(str::to_owned),
                path,
            };
            assert_eq!(route, want, "{text}");
            assert_eq!(route.to_string(), text, "display round trip");
        }
    }

    #[test]
    fn refuses_bad_routes_saying_why() {
        let table = [
            ("price", "must start with '/'"),
            ("", "must start with '/'"),
            (
                "Api.example.com/x",
                "names the host \"Api.example.com\", which has capital letters; write it in lowercase (\"api.example.com\")",
            ),
            (
                "api.example.com:8443/x",
                "names the host \"api.example.com:8443\", which has a port",
            ),
            (
                "*.example.com/x",
                "names the host \"*.example.com\", which has a wildcard",
            ),
            (
                "example.com./x",
                "names the host \"example.com.\", which has an empty label",
            ),
            (
                "-a.example/x",
                "names the host \"-a.example\", which has the label \"-a\"",
            ),
            (
                "a_b.example/x",
                "names the host \"a_b.example\", which has '_'",
            ),
            (
                "bücher.example/x",
                "names the host \"bücher.example\", which has 'ü'",
            ),
            ("api.example.com/a//b", "has an empty segment"),
            ("/a?b=1", "contains '?'"),
            ("/a#top", "contains '#'"),
            ("/a b", "contains whitespace"),
            ("/a//b", "has an empty segment (\"//\")"),
            ("//", "has an empty segment"),
            ("/.../a", "uses \"...\" before the last segment"),
            ("/x...", "has the segment \"x...\""),
            ("/a/../b", "has the segment \"..\""),
            ("/./a", "has the segment \".\""),
        ];
        for (text, want) in table {
            let message = Route::parse(text).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("route \"{text}\" {want}")),
                "{text}: {message}"
            );
            assert!(message.ends_with(FORMS), "{message}");
        }
    }

    #[test]
    fn matches_exact_and_prefix_paths() {
        let table = [
            ("/price", "/price", true),
            ("/price", "/price/", false),
            ("/price", "/prices", false),
            ("/price", "/", false),
            ("/", "/", true),
            ("/", "/a", false),
            ("/pricing/...", "/pricing", true),
            ("/pricing/...", "/pricing/", true),
            ("/pricing/...", "/pricing/eu/7", true),
            ("/pricing/...", "/pricingx", false),
            ("/pricing/...", "/", false),
            ("/...", "/", true),
            ("/...", "/anything/at/all", true),
        ];
        for (route, path, want) in table {
            assert_eq!(
                Route::parse(route).unwrap().matches(None, path),
                want,
                "{route} vs {path}"
            );
        }
    }

    #[test]
    fn a_host_route_serves_its_host_only_and_beats_any_without_one() {
        let host = Route::parse("api.example.com/orders/...").unwrap();
        assert!(host.matches(Some("api.example.com"), "/orders/7"));
        assert!(!host.matches(Some("www.example.com"), "/orders/7"));
        assert!(!host.matches(None, "/orders/7"));
        let any = Route::parse("/orders/7").unwrap();
        assert!(any.matches(Some("api.example.com"), "/orders/7"));
        assert!(host.specificity() > any.specificity());
        assert!(
            Route::parse("a.example/").unwrap().specificity()
                > Route::parse("/a/very/long/path").unwrap().specificity()
        );
    }

    #[test]
    fn a_requests_host_is_taken_as_routes_name_hosts() {
        let table = [
            (None, Some("API.Example.com:8080"), Some("api.example.com")),
            (
                Some("api.example.com"),
                Some("other.example"),
                Some("api.example.com"),
            ),
            (None, Some("example.com."), Some("example.com")),
            (None, Some("[::1]:8080"), Some("[::1]")),
            (None, Some("[::1]"), Some("[::1]")),
            (None, None, None),
            (None, Some(""), None),
        ];
        for (authority, header, want) in table {
            assert_eq!(
                request_host(authority, header).as_deref(),
                want,
                "{authority:?} {header:?}"
            );
        }
    }

    #[test]
    fn the_longest_match_wins_and_exact_beats_prefix() {
        let routes: Vec<Route> = ["/...", "/a/...", "/a/b/...", "/a/b", "/a"]
            .iter()
            .map(|r| Route::parse(r).unwrap())
            .collect();
        let best = |path: &str| {
            routes
                .iter()
                .filter(|r| r.matches(None, path))
                .max_by_key(|r| r.specificity())
                .map(|r| r.to_string())
        };
        assert_eq!(best("/a/b").as_deref(), Some("/a/b"));
        assert_eq!(best("/a/b/c").as_deref(), Some("/a/b/..."));
        assert_eq!(best("/a").as_deref(), Some("/a"));
        assert_eq!(best("/a/x").as_deref(), Some("/a/..."));
        assert_eq!(best("/z").as_deref(), Some("/..."));
        assert!(
            Route::parse("/ab").unwrap().specificity()
                > Route::parse("/a/...").unwrap().specificity()
        );
    }

    #[test]
    fn serializes_as_the_manifest_string() {
        let routes = vec![
            Route::from(RoutePath::Exact("/a".into())),
            Route::from(RoutePath::Prefix("/b".into())),
            Route::from(RoutePath::Prefix("".into())),
            Route {
                host: Some("a.test".into()),
                path: RoutePath::Prefix("/c".into()),
            },
        ];
        let json = serde_json::to_string(&routes).unwrap();
        assert_eq!(json, r#"["/a","/b/...","/...","a.test/c/..."]"#);
        assert_eq!(serde_json::from_str::<Vec<Route>>(&json).unwrap(), routes);
        assert!(serde_json::from_str::<Route>(r#""nope""#).is_err());
    }
}
