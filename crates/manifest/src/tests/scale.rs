//! Validation time grows linearly with the manifest, and a node's limits
//! on size and routes hold. A large manifest with many routes (the shape a
//! hostile or generated upload takes) used to take 35 s to check, because
//! each route's line was found by scanning the text from its start.

use std::time::{Duration, Instant};

use super::*;
use crate::validate::{Limits, parse_within};

/// `functions` functions of `routes_each` routes each, one route a line or
/// all of a function's routes on one line.
fn big_manifest(functions: usize, routes_each: usize, one_line: bool) -> String {
    let mut text = String::from("[app]\nname = \"big\"\n");
    let separator = if one_line { ", " } else { ",\n  " };
    for f in 0..functions {
        let routes: Vec<String> = (0..routes_each)
            .map(|r| format!("\"/function-{f}/route-{r}\""))
            .collect();
        text.push_str(&format!(
            "\n[[function]]\nname = \"f{f}\"\ncomponent = \"f.wasm\"\nroutes = [{}]\n",
            routes.join(separator)
        ));
    }
    text
}

const UNLIMITED: Limits = Limits {
    max_size: ByteSize(u64::MAX),
    max_routes: usize::MAX,
};

fn timed(text: &str) -> (Duration, Result<Manifest, ManifestError>) {
    let started = Instant::now();
    let result = parse_within(text, FILE, UNLIMITED);
    (started.elapsed(), result)
}

/// Far above the linear time (0.2 s unoptimized on 2 cores) and far below
/// the quadratic one (35 s), so a regression fails without a flaky bound.
const GENEROUS: Duration = Duration::from_secs(10);

#[test]
fn a_large_manifest_validates_in_linear_time() {
    for one_line in [false, true] {
        let text = big_manifest(200, 250, one_line);
        assert!(text.len() > 1_300_000, "{}", text.len());
        let (took, result) = timed(&text);
        let routes: usize = result
            .unwrap()
            .functions
            .iter()
            .map(|f| f.routes.len())
            .sum();
        assert_eq!(routes, 50_000);
        eprintln!(
            "info: {} bytes, {routes} routes, one line per function: {one_line}: validated in {took:?}",
            text.len()
        );
        assert!(took < GENEROUS, "{took:?}");
    }
}

#[test]
fn an_error_at_the_end_of_a_large_manifest_names_its_place_quickly() {
    let mut text = big_manifest(200, 250, false);
    let lines = text.lines().count();
    text.push_str("\n[[function]]\nname = \"last\"\ncomponent = \"f.wasm\"\nroutes = [\"/function-7/route-9\"]\n");
    let (took, result) = timed(&text);
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{FILE}:{}:11: route \"/function-7/route-9\" of function \"last\" is already used by function \"f7\" (line {}); a route may belong to only one function",
            lines + 5,
            // The header, then per function a blank line, its name,
            // component and routes key, and one line per route.
            2 + 7 * 254 + 4 + 10
        )
    );
    assert!(took < GENEROUS, "{took:?}");
}

#[test]
fn a_manifest_over_the_size_limit_is_refused_before_parsing() {
    let text = big_manifest(200, 250, false);
    let started = Instant::now();
    let err = Manifest::parse(&text, FILE).unwrap_err();
    assert!(started.elapsed() < GENEROUS);
    assert!(matches!(err, ManifestError::TooLarge { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{FILE}: the manifest is {} bytes, more than the 256KiB (262144 bytes) a manifest may have; make it smaller: one prefix route such as \"/api/...\" serves a whole tree of paths",
            text.len()
        )
    );

    // Exactly at the limit is accepted: padding in a comment.
    let mut text = one_function("component = \"f.wasm\"");
    text.push('#');
    let pad = MAX_MANIFEST_SIZE.bytes() as usize - text.len();
    text.push_str(&"x".repeat(pad));
    assert_eq!(text.len() as u64, MAX_MANIFEST_SIZE.bytes());
    assert!(parse(&text).is_ok());
    text.push('x');
    assert!(matches!(parse(&text), Err(ManifestError::TooLarge { .. })));
}

#[test]
fn an_app_may_have_at_most_the_route_limit() {
    assert_eq!(MAX_ROUTES_PER_APP, 256);
    // 256 routes over two functions pass; one more is refused at that route.
    let at_limit = big_manifest(2, 128, false);
    assert_eq!(
        parse(&at_limit).unwrap().functions[1].routes.len(),
        128,
        "at the limit"
    );
    let over = big_manifest(2, 129, false);
    let err = parse(&over).unwrap_err();
    let ManifestError::Invalid { key, location, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(key, "routes");
    // The second function's 128th route (0-based 127) is the 257th.
    let line = over
        .lines()
        .position(|l| l.contains("\"/function-1/route-127\""))
        .unwrap();
    assert_eq!(location.line, line + 1);
    assert!(
        err.to_string().ends_with(
            "function \"f1\": this route makes app \"big\" exceed 256 routes, the most an app may have (counting the `routes` of all its functions); serve many paths with one prefix route such as \"/api/...\""
        ),
        "{err}"
    );
}
