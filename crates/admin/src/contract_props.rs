//! The OpenAPI document against the code: each parameter grammar it states
//! is exactly what the handler checks (a string the pattern takes is
//! accepted, one it refuses is refused), and the document says for every
//! operation what the layers in front of it can answer.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::string::string_regex;
use regex::Regex;
use serde_json::Value;

use crate::common::{SPAN_PATTERN, parse_span};
use crate::contract::{
    FUNCTION_PATTERN, ID_PATTERN, NAME_PATTERN, PATH_PATTERN, QUEUE_PATTERN, SECRET_NAME_PATTERN,
};
use crate::tokens::{LIFETIME_PATTERN, lifetime};
use crate::traffic::STEPS_PATTERN;

/// What a grammar is called, its pattern, and the node's check.
type Grammar = (&'static str, &'static str, fn(&str) -> bool);

/// Each pattern with the check the node makes of the same text.
fn grammars() -> Vec<Grammar> {
    vec![
        ("name", NAME_PATTERN, stratus_manifest::valid_name),
        ("function", FUNCTION_PATTERN, |s| match s.split_once('/') {
            Some((app, name)) => {
                stratus_manifest::valid_name(app) && stratus_manifest::valid_name(name)
            }
            None => stratus_manifest::valid_name(s),
        }),
        ("queue", QUEUE_PATTERN, stratus_manifest::valid_queue_name),
        (
            "secret name",
            SECRET_NAME_PATTERN,
            stratus_manifest::valid_config_key,
        ),
        ("span", SPAN_PATTERN, |s| parse_span(s).is_some()),
        ("lifetime", LIFETIME_PATTERN, |s| lifetime(s).is_some()),
        ("steps", STEPS_PATTERN, crate::traffic::valid_steps),
        ("path", PATH_PATTERN, crate::invocations::valid_path),
        (
            "invocation id",
            ID_PATTERN,
            crate::common::valid_invocation_id,
        ),
    ]
}

/// Text near and far from every grammar: drawn from a pattern, from the
/// characters the grammars use, or anything at all.
fn text() -> impl Strategy<Value = String> {
    let drawn: Vec<BoxedStrategy<String>> = grammars()
        .into_iter()
        .map(|(_, pattern, _)| {
            // Drawn whole, so without the anchors.
            let unanchored = pattern.trim_start_matches('^').trim_end_matches('$');
            string_regex(unanchored).unwrap().boxed()
        })
        .collect();
    prop_oneof![
        proptest::strategy::Union::new(drawn),
        "[a-zA-Z0-9/._%~:-]{0,70}",
        "[0-9]{0,8}[a-z]{0,2}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_grammar_in_the_document_is_what_the_node_checks(text in text()) {
        for (what, pattern, check) in grammars() {
            let documented = Regex::new(pattern).unwrap().is_match(&text);
            prop_assert_eq!(
                documented,
                check(&text),
                "{} {:?}: the pattern {} says {}",
                what,
                text,
                pattern,
                documented
            );
        }
    }
}

fn document() -> Value {
    serde_json::from_str(crate::openapi_json()).unwrap()
}

/// Every operation with its path and method.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    found
}

#[test]
fn every_operation_names_the_answers_of_the_layers_before_it() {
    let doc = document();
    let operations = operations(&doc);
    assert!(operations.len() > 50, "{}", operations.len());
    for (path, method, operation) in operations {
        let responses = operation["responses"].as_object().unwrap();
        let what = format!("{method} {path}");
        if responses.contains_key("default") {
            continue;
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        assert_eq!(
            secured,
            path.starts_with("/v1/") && path != "/v1/openapi.json",
            "{what}"
        );
        if secured {
            for status in ["401", "503"] {
                assert!(responses.contains_key(status), "{what} lacks {status}");
            }
        }
        if path.starts_with("/v1/namespaces/{namespace}/") {
            assert!(
                responses.contains_key("400"),
                "{what}: a bad namespace name"
            );
            // Another namespace's: as if empty, or the node's to change.
            assert!(
                responses.contains_key("404") || responses.contains_key("403"),
                "{what}: another namespace"
            );
        }
        if operation.get("requestBody").is_some() {
            assert!(responses.contains_key("413"), "{what}");
        }
        for (status, response) in responses {
            assert!(
                !response["description"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty(),
                "{what} {status} has no description"
            );
            if (status.starts_with('4') || status.starts_with('5')) && path != "/readyz" {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorResponse",
                    "{what} {status}"
                );
            }
            if status == "429" || status == "503" {
                assert!(response["headers"]["Retry-After"].is_object(), "{what}");
            }
        }
        // Every path parameter has a grammar: none is any text at all but
        // an event's id, which its publisher chose.
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let schema = &parameter["schema"];
            let event_id = parameter["name"] == "id"
                && (path.ends_with("/events/{id}") || path.ends_with("/events/{id}/replay"));
            if parameter["in"] == "path" && !event_id {
                assert!(
                    schema["pattern"].is_string() || schema["type"] == "integer",
                    "{what}: {parameter}"
                );
            }
        }
    }
}

#[test]
fn links_lead_to_operations_of_the_document_with_their_parameters() {
    let doc = document();
    let operations = operations(&doc);
    let by_id = |id: &str| {
        operations
            .iter()
            .find(|(_, _, op)| op["operationId"] == id)
            .map(|(_, _, op)| op.clone())
    };
    let mut links = 0;
    for (path, method, operation) in &operations {
        for response in operation["responses"].as_object().unwrap().values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().unwrap();
                let target = by_id(target)
                    .unwrap_or_else(|| panic!("{method} {path}: link {name} to nothing"));
                let names: Vec<&str> = target["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                for needed in &names {
                    assert!(
                        link["parameters"][needed].is_string(),
                        "{method} {path}: link {name} misses {needed}"
                    );
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
}

#[test]
fn operation_ids_are_unique() {
    let doc = document();
    let mut ids: Vec<String> = operations(&doc)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
}
