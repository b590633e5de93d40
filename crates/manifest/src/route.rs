//! Routes: which request paths a function serves.
//!
//! A route is either an exact path (`"/price"`) or a prefix (`"/pricing/..."`,
//! serving `/pricing` and everything below it; `"/..."` serves everything).
//! The gateway picks the most specific matching route, so this module also
//! defines what "more specific" means, in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The accepted forms, appended to every route error.
const FORMS: &str = "use \"/x\" for an exact path, \"/x/...\" for a path and everything below it, or \"/...\" for everything";

/// A parsed route. Serialized as its manifest string (`"/x"`, `"/x/..."`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// Matches this path and nothing else (`"/x"`).
    Exact(String),
    /// Matches this path and every path below it. Stored without the `/...`
    /// suffix (`"/x/..."` is `Prefix("/x")`); `Prefix("")` matches everything.
    Prefix(String),
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
        if !text.starts_with('/') {
            return fail("must start with '/'".into());
        }
        if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
        {
            let shown = match c {
                '?' | '#' => format!("'{c}' (query strings and fragments are not part of a route)"),
                _ => format!("whitespace or a control character ({:?})", c),
            };
            return fail(format!("contains {shown}"));
        }
        if text.contains("//") {
            return fail("has an empty segment (\"//\")".into());
        }
        // Exact "/" is the only route whose one segment is empty.
        if text == "/" {
            return Ok(Route::Exact(text.to_owned()));
        }
        let segments: Vec<&str> = text[1..].split('/').collect();
        let last = segments.len() - 1;
        for (i, segment) in segments.iter().enumerate() {
            if *segment == "..." && i != last {
                return fail(
                    "uses \"...\" before the last segment; it may only end a route".into(),
                );
            }
            if *segment != "..." && segment.contains("...") {
                return fail(format!(
                    "has the segment \"{segment}\"; \"...\" must be a segment of its own, as in \"/x/...\""
                ));
            }
            if matches!(*segment, "." | "..") {
                return fail(format!(
                    "has the segment \"{segment}\", which clients remove before sending a request"
                ));
            }
        }
        Ok(match text.strip_suffix("/...") {
            Some(prefix) => Route::Prefix(prefix.to_owned()),
            None => Route::Exact(text.to_owned()),
        })
    }

    /// Whether a request path is served by this route. A trailing slash
    /// matters for exact routes: `"/x"` does not match `"/x/"`.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Route::Exact(exact) => path == exact,
            Route::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }

    /// Orders routes so that the router can pick the best of several matches:
    /// the larger value wins. A longer literal path is more specific; for the
    /// same length an exact route beats a prefix.
    pub fn specificity(&self) -> (usize, u8) {
        match self {
            Route::Exact(exact) => (exact.len(), 1),
            Route::Prefix(prefix) => (prefix.len(), 0),
        }
    }

    /// The literal path of the route: the exact path, or the prefix without
    /// its `/...` suffix.
    pub fn path(&self) -> &str {
        match self {
            Route::Exact(path) | Route::Prefix(path) => path,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Exact(exact) => f.write_str(exact),
            Route::Prefix(prefix) => write!(f, "{prefix}/..."),
        }
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
            ("/", Route::Exact("/".into())),
            ("/price", Route::Exact("/price".into())),
            ("/a/b/", Route::Exact("/a/b/".into())),
            ("/pricing/...", Route::Prefix("/pricing".into())),
            ("/a/b/...", Route::Prefix("/a/b".into())),
            ("/...", Route::Prefix("".into())),
        ];
        for (text, want) in table {
            let route = Route::parse(text).unwrap();
            assert_eq!(route, want, "{text}");
            assert_eq!(route.to_string(), text, "display round trip");
        }
    }

    #[test]
    fn refuses_bad_routes_saying_why() {
        let table = [
            ("price", "must start with '/'"),
            ("", "must start with '/'"),
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
                Route::parse(route).unwrap().matches(path),
                want,
                "{route} vs {path}"
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
                .filter(|r| r.matches(path))
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
            Route::Exact("/a".into()),
            Route::Prefix("/b".into()),
            Route::Prefix("".into()),
        ];
        let json = serde_json::to_string(&routes).unwrap();
        assert_eq!(json, r#"["/a","/b/...","/..."]"#);
        assert_eq!(serde_json::from_str::<Vec<Route>>(&json).unwrap(), routes);
        assert!(serde_json::from_str::<Route>(r#""nope""#).is_err());
    }
}
