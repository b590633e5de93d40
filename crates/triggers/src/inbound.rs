//! From a broker's message to an event: a CloudEvent when the message is
//! one (binary mode in headers, or structured mode as JSON), otherwise the
//! payload wrapped with attributes that say where it came from.
//!
//! A message that claims to be a CloudEvent but is not a valid one is no
//! event to deliver, yet it must not be lost either: the caller stores it as
//! a dead letter with the reason, where it can be read and redriven. So is
//! one whose attributes could never be delivered: each becomes a header of
//! the delivery (`ce-id`, `ce-source`, …), and a value with a newline or
//! another control character cannot be one, however often it is retried.

use base64::Engine;
use serde_json::Value;

/// What an event has before it is queued for a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub subject: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Attributes for a message that is not a CloudEvent.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub id: String,
    pub source: String,
    pub kind: &'static str,
    /// The subject or topic the message arrived on.
    pub subject: String,
}

impl Defaults {
    /// The message as it came, with these attributes: what is stored when
    /// it cannot be read as an event.
    pub fn wrap(&self, content_type: Option<String>, payload: &[u8]) -> Incoming {
        Incoming {
            id: self.id.clone(),
            source: self.source.clone(),
            kind: self.kind.to_owned(),
            subject: Some(self.subject.clone()),
            content_type,
            data: payload.to_vec(),
        }
    }
}

const STRUCTURED: &str = "application/cloudevents+json";

/// Reads a message with headers (NATS). `header` looks a name up case-
/// insensitively.
pub fn from_headers(
    header: impl Fn(&str) -> Option<String>,
    payload: &[u8],
    defaults: &Defaults,
) -> Result<Incoming, String> {
    let content_type = header("content-type");
    if let Some(version) = header("ce-specversion") {
        check_version(&version)?;
        let required = |name: &str| {
            header(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("the {name} header is missing or empty"))
        };
        return deliverable(Incoming {
            id: required("ce-id")?,
            source: required("ce-source")?,
            kind: required("ce-type")?,
            subject: header("ce-subject").or_else(|| Some(defaults.subject.clone())),
            content_type,
            data: payload.to_vec(),
        });
    }
    if content_type
        .as_deref()
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with(STRUCTURED))
    {
        return deliverable(structured(payload, defaults)?);
    }
    deliverable(defaults.wrap(content_type, payload))
}

/// Reads a message without headers (MQTT 3.1.1): a JSON object with a
/// `specversion` is a structured CloudEvent; anything else is data.
pub fn from_payload(payload: &[u8], defaults: &Defaults) -> Result<Incoming, String> {
    let looks_structured = payload.trim_ascii_start().starts_with(b"{")
        && serde_json::from_slice::<Value>(payload).is_ok_and(|v| v.get("specversion").is_some());
    if looks_structured {
        return deliverable(structured(payload, defaults)?);
    }
    let content_type = if serde_json::from_slice::<Value>(payload).is_ok() {
        "application/json"
    } else {
        "application/octet-stream"
    };
    deliverable(defaults.wrap(Some(content_type.into()), payload))
}

/// `e` if every attribute that becomes a header of its delivery can be one.
fn deliverable(e: Incoming) -> Result<Incoming, String> {
    let attributes = [
        ("ce-id", Some(&e.id)),
        ("ce-source", Some(&e.source)),
        ("ce-type", Some(&e.kind)),
        ("ce-subject", e.subject.as_ref()),
        ("content-type", e.content_type.as_ref()),
    ];
    for (name, value) in attributes {
        if let Some(value) = value {
            stratus_events::header_value(name, value).map_err(|e| e.to_string())?;
        }
    }
    Ok(e)
}

fn check_version(version: &str) -> Result<(), String> {
    if version.trim() == "1.0" {
        Ok(())
    } else {
        Err(format!(
            "specversion {version:?} is not supported; Stratus reads CloudEvents 1.0"
        ))
    }
}

/// CloudEvents 1.0 JSON format.
fn structured(payload: &[u8], defaults: &Defaults) -> Result<Incoming, String> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("the structured CloudEvent is not valid JSON: {e}"))?;
    let Value::Object(event) = value else {
        return Err("the structured CloudEvent is not a JSON object".into());
    };
    let text = |name: &str| match event.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(format!("attribute {name} must be a non-empty string")),
    };
    let required =
        |name: &str| text(name)?.ok_or_else(|| format!("required attribute {name} is missing"));
    check_version(&required("specversion")?)?;
    let id = required("id")?;
    let source = required("source")?;
    let kind = required("type")?;
    let subject = text("subject")?.or_else(|| Some(defaults.subject.clone()));
    let declared = text("datacontenttype")?;
    let (content_type, data) = match (event.get("data"), event.get("data_base64")) {
        (Some(_), Some(_)) => return Err("both data and data_base64 are present".into()),
        (_, Some(Value::String(encoded))) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("data_base64 is not base64: {e}"))?;
            (declared, bytes)
        }
        (_, Some(_)) => return Err("data_base64 must be a string".into()),
        (Some(Value::String(s)), None) if declared.as_deref().is_some_and(|t| !is_json(t)) => {
            (declared, s.clone().into_bytes())
        }
        (Some(data), None) => (
            Some(declared.unwrap_or_else(|| "application/json".into())),
            data.to_string().into_bytes(),
        ),
        (None, None) => (declared, Vec::new()),
    };
    Ok(Incoming {
        id,
        source,
        kind,
        subject,
        content_type,
        data,
    })
}

fn is_json(content_type: &str) -> bool {
    let t = content_type.to_ascii_lowercase();
    t.starts_with("application/json") || t.contains("+json")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            id: "gen-1".into(),
            source: "nats://127.0.0.1:4222/orders.created".into(),
            kind: "dev.stratus.nats.message",
            subject: "orders.created".into(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn a_plain_message_is_wrapped() {
        let e = from_headers(headers(&[]), b"hi", &defaults()).unwrap();
        assert_eq!(
            (e.id.as_str(), e.kind.as_str(), e.subject.as_deref()),
            ("gen-1", "dev.stratus.nats.message", Some("orders.created"))
        );
        let e = from_payload(br#"{"t":21}"#, &defaults()).unwrap();
        assert_eq!(e.content_type.as_deref(), Some("application/json"));
        assert_eq!(e.data, br#"{"t":21}"#);
    }

    #[test]
    fn binary_mode_takes_the_attributes_from_headers() {
        let e = from_headers(
            headers(&[
                ("Ce-Specversion", "1.0"),
                ("ce-id", "order-7"),
                ("ce-source", "/shop"),
                ("ce-type", "com.example.order"),
                ("content-type", "application/json"),
            ]),
            b"{}",
            &defaults(),
        )
        .unwrap();
        assert_eq!(
            (e.id.as_str(), e.source.as_str(), e.kind.as_str()),
            ("order-7", "/shop", "com.example.order")
        );
        let missing = from_headers(
            headers(&[("ce-specversion", "1.0"), ("ce-source", "/s")]),
            b"",
            &defaults(),
        );
        assert_eq!(missing.unwrap_err(), "the ce-id header is missing or empty");
    }

    #[test]
    fn structured_mode_is_read_from_json() {
        let e = from_payload(
            br#"{"specversion":"1.0","id":"r-1","source":"/sensors/7","type":"reading","data":{"t":30.5}}"#,
            &defaults(),
        )
        .unwrap();
        assert_eq!((e.id.as_str(), e.kind.as_str()), ("r-1", "reading"));
        assert_eq!(e.data, br#"{"t":30.5}"#);
        assert_eq!(e.content_type.as_deref(), Some("application/json"));
        let b64 = from_headers(
            headers(&[("content-type", "application/cloudevents+json")]),
            br#"{"specversion":"1.0","id":"b","source":"/s","type":"t","data_base64":"aGk=","datacontenttype":"text/plain"}"#,
            &defaults(),
        )
        .unwrap();
        assert_eq!(
            (b64.data.as_slice(), b64.content_type.as_deref()),
            (&b"hi"[..], Some("text/plain"))
        );
    }

    #[test]
    fn malformed_cloudevents_say_what_is_wrong() {
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"specversion":"1.0","source":"/s","type":"t"}"#,
                "required attribute id is missing",
            ),
            (
                br#"{"specversion":"0.3","id":"x","source":"/s","type":"t"}"#,
                "specversion \"0.3\" is not supported; Stratus reads CloudEvents 1.0",
            ),
            (
                br#"{"specversion":"1.0","id":7,"source":"/s","type":"t"}"#,
                "attribute id must be a non-empty string",
            ),
            (
                br#"{"specversion":"1.0","id":"x","source":"/s","type":"t","data_base64":"!!"}"#,
                "data_base64 is not base64: Invalid symbol 33, offset 0.",
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(from_payload(payload, &defaults()).unwrap_err(), want);
        }
        let structured = headers(&[("content-type", "application/cloudevents+json")]);
        assert!(
            from_headers(structured, b"not json", &defaults())
                .unwrap_err()
                .starts_with("the structured CloudEvent is not valid JSON")
        );
    }

    #[test]
    fn attributes_that_cannot_be_headers_are_refused_with_the_reason() {
        let newline = from_payload(
            br#"{"specversion":"1.0","id":"r-1\nx","source":"/s","type":"t"}"#,
            &defaults(),
        )
        .unwrap_err();
        assert!(
            newline.contains(r#"its ce-id "r-1\nx" cannot be an HTTP header value"#),
            "{newline}"
        );
        let escape = from_headers(
            headers(&[
                ("ce-specversion", "1.0"),
                ("ce-id", "ok"),
                ("ce-source", "/s\u{1b}[2J"),
                ("ce-type", "t"),
            ]),
            b"",
            &defaults(),
        )
        .unwrap_err();
        assert!(escape.contains("its ce-source"), "{escape}");
        // A plain message on a topic no header can carry is refused too.
        let topic = Defaults {
            subject: "sensors/a\rb".into(),
            ..defaults()
        };
        let plain = from_payload(b"21.5", &topic).unwrap_err();
        assert!(plain.contains("its ce-subject"), "{plain}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Short text, mostly printable ASCII but often with control
        /// characters (the ones no header can carry), sometimes any Unicode.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[ -~\\t\\n\\r\\x00-\\x1f\\x7f\\u{80}-\\u{9f}é]{0,12}",
                1 => any::<String>(),
            ]
        }

        /// A header lookup over arbitrary pairs, CloudEvents names likely.
        fn header_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
            let name = prop_oneof![
                Just("ce-specversion".to_owned()),
                Just("ce-id".to_owned()),
                Just("ce-source".to_owned()),
                Just("ce-type".to_owned()),
                Just("ce-subject".to_owned()),
                Just("content-type".to_owned()),
                "[a-zA-Z-]{1,12}",
            ];
            let value = prop_oneof![
                Just("1.0".to_owned()),
                Just("application/cloudevents+json".to_owned()),
                text(),
            ];
            proptest::collection::vec((name, value), 0..8)
        }

        /// JSON objects shaped like structured CloudEvents, with arbitrary
        /// (often wrong) attribute values, or arbitrary bytes.
        fn payloads() -> impl Strategy<Value = Vec<u8>> {
            let attribute = prop_oneof![
                text().prop_map(Value::String),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null),
                Just(Value::String("1.0".into())),
            ];
            let names = prop_oneof![
                Just("specversion"),
                Just("id"),
                Just("source"),
                Just("type"),
                Just("subject"),
                Just("datacontenttype"),
                Just("data"),
                Just("data_base64"),
            ];
            let event = proptest::collection::vec((names, attribute), 0..9).prop_map(|pairs| {
                let object: serde_json::Map<String, Value> =
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
            });
            prop_oneof![proptest::collection::vec(any::<u8>(), 0..256), event,]
        }

        /// What any answer must be: an event every header of whose
        /// delivery is valid, or a reason that says something and carries
        /// no control character (it goes to logs and the dead letter).
        fn check(result: Result<Incoming, String>) -> Result<(), TestCaseError> {
            match result {
                Ok(e) => {
                    prop_assert!(!e.id.trim().is_empty());
                    for value in [Some(&e.id), Some(&e.source), Some(&e.kind)]
                        .into_iter()
                        .chain([e.subject.as_ref(), e.content_type.as_ref()])
                        .flatten()
                    {
                        prop_assert!(stratus_events::header_value("x", value).is_ok());
                    }
                }
                Err(why) => {
                    prop_assert!(why.len() > 10, "{why:?}");
                    prop_assert!(!why.chars().any(char::is_control), "{why:?}");
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_message_parses_or_says_why(
                payload in payloads(),
                pairs in header_pairs(),
                subject in text(),
            ) {
                let defaults = Defaults { subject, ..defaults() };
                let header = |name: &str| {
                    pairs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                check(from_headers(header, &payload, &defaults))?;
                check(from_payload(&payload, &defaults))?;
            }
        }
    }
}
