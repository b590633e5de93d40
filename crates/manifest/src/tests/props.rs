//! Property-based tests of the parser: whatever text a client sends, parsing
//! ends without a panic, and a refusal says where the problem is.

use proptest::prelude::*;

use super::*;
use crate::lines::LineIndex;

/// Enough cases to find the usual mistakes, few enough to run in a second
/// or two unoptimized.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// Valid manifests to mutate: every kind of key, nested tables, arrays.
const CORPUS: &[&str] = &[
    FULL,
    r#"[app]
name = "events"

[[function]]
name = "consumer"
component = "c.wasm"
triggers = [{ queue = "orders", max_attempts = 5 }, { cron = "0 */5 * * * *", timezone = "Europe/Paris" }]
allowed_outbound = ["https://api.example.com", "http://*.svc"]
keyvalue = ["default"]
config = { currency = "EUR" }
secrets = ["stripe-key"]
max_outbound_requests = 3
max_outbound_bytes = "1MiB"
outbound_timeout = "2s"
min_warm = true
reuse = 10
"#,
];

/// One edit of a manifest: at a position (taken modulo the length, then
/// back to a character boundary), delete some bytes or insert a fragment
/// made of TOML's punctuation, letters and a multi-byte character.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..12usize).prop_map(|(at, len)| Edit::Delete(at, len)),
        (any::<usize>(), "[\\[\\]{}=\"',.#\\n a-z0-9/_é-]{1,8}")
            .prop_map(|(at, text)| Edit::Insert(at, text)),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Delete(at, len) => {
            let start = boundary(text, *at);
            let end = boundary(text, start.saturating_add(*len).min(text.len()));
            text.replace_range(start..end.max(start), "");
        }
        Edit::Insert(at, fragment) => {
            let at = boundary(text, *at);
            text.insert_str(at, fragment);
        }
        Edit::DuplicateLine(at) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let i = at % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            if let Some(line) = lines.get(i) {
                out.insert(i, line);
            }
            *text = out.concat();
        }
    }
}

/// What every outcome of `Manifest::parse` must satisfy: a manifest that
/// survives its stored (JSON) form, or an error on one line that starts
/// with a location inside the text.
fn check_outcome(text: &str) -> Result<(), TestCaseError> {
    match Manifest::parse(text, FILE) {
        Ok(manifest) => {
            let json =
                serde_json::to_string(&manifest).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: Manifest =
                serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, manifest);
        }
        Err(err) => {
            let message = err.to_string();
            let location = err.location();
            prop_assert!(location.is_some(), "no location: {err:?}");
            let location = location
                .cloned()
                .unwrap_or_else(|| Location::at(FILE, "", 0));
            prop_assert!(location.line >= 1 && location.column >= 1, "{location}");
            prop_assert!(
                location.line <= text.split('\n').count(),
                "line {} of a text of {} lines: {message}",
                location.line,
                text.split('\n').count()
            );
            prop_assert!(message.starts_with(&format!("{location}: ")), "{message}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics_and_errors_have_a_location(
        text in "(\\PC|[\\n\\t\\r\\x00]){0,200}",
    ) {
        check_outcome(&text)?;
    }

    #[test]
    fn mutated_manifests_never_panic_and_errors_have_a_location(
        which in 0..CORPUS.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut text = CORPUS[which].to_owned();
        for edit in &edits {
            apply(&mut text, edit);
        }
        check_outcome(&text)?;
    }

    /// The index answers as a scan from the start of the text would.
    #[test]
    fn line_index_agrees_with_a_scan(text in "[a\\né\\r]{0,40}", offset in 0..50usize) {
        let mut at = offset.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let scanned = Location {
            file: FILE.into(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        };
        prop_assert_eq!(LineIndex::new(&text).location(FILE, offset), scanned);
    }
}

/// A route as a manifest writes it, from few segments so that functions
/// often collide.
fn route_text() -> impl Strategy<Value = String> {
    (prop::collection::vec("[ab]{1,2}", 0..3), any::<bool>()).prop_map(|(segments, prefix)| {
        let path = format!("/{}", segments.join("/"));
        match (prefix, path.as_str()) {
            (true, "/") => "/...".to_owned(),
            (true, _) => format!("{path}/..."),
            (false, _) => path,
        }
    })
}

proptest! {
    #![proptest_config(config())]

    /// Generated apps: valid ones keep every route, in order; one that
    /// lists a route twice is refused at the second listing, naming it.
    #[test]
    fn a_repeated_route_is_refused_where_it_is_repeated(
        functions in prop::collection::vec(prop::collection::vec(route_text(), 0..4), 1..4),
    ) {
        let mut text = String::from("[app]\nname = \"shop\"\n");
        for (i, routes) in functions.iter().enumerate() {
            text.push_str(&format!(
                "\n[[function]]\nname = \"f{i}\"\ncomponent = \"f.wasm\"\nroutes = [\n"
            ));
            for route in routes {
                text.push_str(&format!("  \"{route}\",\n"));
            }
            text.push_str("]\n");
        }
        let all: Vec<&String> = functions.iter().flatten().collect();
        let repeated = all
            .iter()
            .enumerate()
            .find(|(i, r)| all[..*i].contains(r))
            .map(|(i, r)| (i, (*r).clone()));
        match (Manifest::parse(&text, FILE), repeated) {
            (Ok(manifest), None) => {
                let parsed: Vec<String> = manifest
                    .functions
                    .iter()
                    .flat_map(|f| f.routes.iter().map(ToString::to_string))
                    .collect();
                let written: Vec<String> = all.iter().map(|r| (*r).clone()).collect();
                prop_assert_eq!(parsed, written);
            }
            (
                Err(ManifestError::DuplicateRoute { location, route, .. }),
                Some((index, repeated)),
            ) => {
                prop_assert_eq!(&route, &repeated);
                // The second listing is the (index + 1)-th route line.
                let line = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.starts_with("  \""))
                    .nth(index)
                    .map(|(n, _)| n + 1);
                prop_assert_eq!(Some(location.line), line);
            }
            (outcome, repeated) => {
                prop_assert!(false, "{outcome:?} for repeated route {repeated:?}:\n{text}");
            }
        }
    }
}
