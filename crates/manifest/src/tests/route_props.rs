//! Property-based tests of routes: parsing any text ends without a panic,
//! what parses prints back as written, and matching follows the two forms.

use proptest::prelude::*;

use super::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        ..ProptestConfig::default()
    }
}

/// Paths from a small alphabet (so routes and paths often overlap), with
/// dots, doubled and trailing slashes and the odd character a route refuses.
fn path() -> impl Strategy<Value = String> {
    "(/([ab.]{0,3}|\\.\\.\\.)){0,4}/?[?# ]?"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_never_panics_and_round_trips(text in "(\\PC|[\\n\\t]){0,40}") {
        if let Ok(route) = Route::parse(&text) {
            prop_assert_eq!(route.to_string(), text.clone());
            prop_assert_eq!(route.host.is_some(), !text.starts_with('/'));
            prop_assert_eq!(Route::parse(&route.to_string()), Ok(route));
            prop_assert!(text.contains('/'));
            prop_assert!(!text.contains("//") && !text.contains(['?', '#', ' ']));
        }
    }

    #[test]
    fn routes_from_the_path_alphabet_round_trip_or_say_why(text in path()) {
        match Route::parse(&text) {
            Ok(route) => prop_assert_eq!(route.to_string(), text),
            Err(e) => {
                prop_assert_eq!(&e.route, &text);
                prop_assert!(e.to_string().starts_with(&format!("route \"{text}\" ")), "{e}");
            }
        }
    }

    /// An exact route matches its own path only; a prefix route matches its
    /// path and everything below it, and nothing that merely starts with
    /// the same characters.
    #[test]
    fn matching_follows_the_two_forms(route in path(), request in path()) {
        let Ok(parsed) = Route::parse(&route) else { return Ok(()) };
        let matches = parsed.matches(None, &request);
        match &parsed.path {
            RoutePath::Exact(exact) => prop_assert_eq!(matches, request == *exact),
            RoutePath::Prefix(prefix) => {
                let below = request.len() > prefix.len()
                    && request.starts_with(prefix.as_str())
                    && request.as_bytes()[prefix.len()] == b'/';
                prop_assert_eq!(matches, request == *prefix || below);
                // Everything below the prefix matches, whatever follows.
                let deeper = format!("{prefix}/{}", request.trim_start_matches('/'));
                prop_assert!(parsed.matches(None, &deeper), "{deeper}");
            }
        }
    }
}
