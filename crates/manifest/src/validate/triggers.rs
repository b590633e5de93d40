//! `triggers = [...]`: one table per event source, each checked for its own
//! keys, with messages that name the trigger by its index.

use toml::{Spanned, Value, map::Map};

use super::{NAME_RULE, Source, valid_name};
use crate::error::ManifestError;
use crate::model::{DEFAULT_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS, TriggerSpec};
use crate::schedule::{Schedule, parse_time_zone};

/// Each event source a trigger may name, with the keys its table takes.
const KINDS: &[(&str, &[&str])] = &[
    ("queue", &["queue", "from", "max_attempts"]),
    ("cron", &["cron", "timezone", "max_attempts"]),
    ("nats", &["nats", "queue_group", "max_attempts"]),
    ("jetstream", &["jetstream", "max_attempts"]),
    ("mqtt", &["mqtt", "max_attempts"]),
];

impl Source<'_> {
    /// `triggers = [{ queue = "orders" }, { cron = "0 0 * * * *" }, …]`.
    pub(super) fn triggers(
        &self,
        value: &Spanned<Value>,
        p: &str,
    ) -> Result<Vec<TriggerSpec>, ManifestError> {
        let Value::Array(items) = value.get_ref() else {
            return Err(self.wrong_type(value, p, "triggers", "an array of tables"));
        };
        let mut triggers = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{p}triggers[{i}]");
            let trigger = one_trigger(item, &at)
                .map_err(|message| self.invalid(value.span(), "triggers", message))?;
            triggers.push(trigger);
        }
        Ok(triggers)
    }
}

fn one_trigger(item: &Value, at: &str) -> Result<TriggerSpec, String> {
    let Value::Table(table) = item else {
        return Err(format!(
            "{at} must be a table such as {{ queue = \"orders\" }}, not {}",
            item.type_str()
        ));
    };
    let named: Vec<&(&str, &[&str])> = KINDS
        .iter()
        .filter(|(kind, _)| table.contains_key(*kind))
        .collect();
    let (kind, keys) = match named.as_slice() {
        [one] => **one,
        [] => {
            let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            let hint = table
                .keys()
                .map(|key| did_you_mean(key, kinds.iter().copied()))
                .find(|hint| !hint.is_empty())
                .unwrap_or_default();
            return Err(format!(
                "{at} names no event source; use one of {}{hint}",
                kinds.join(", ")
            ));
        }
        many => {
            let kinds: Vec<&str> = many.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "{at} names {}; use one per trigger",
                kinds.join(" and ")
            ));
        }
    };
    if let Some(extra) = table.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!(
            "{at} has an unknown key `{extra}`; a {kind} trigger takes {}{}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            did_you_mean(extra, keys.iter().copied())
        ));
    }
    let max_attempts = match table.get("max_attempts") {
        None => DEFAULT_MAX_ATTEMPTS,
        Some(Value::Integer(n)) if (1..=i64::from(MAX_MAX_ATTEMPTS)).contains(n) => *n as u32,
        Some(other) => {
            return Err(format!(
                "{at}: max_attempts {other} is out of range; use an integer from 1 to {MAX_MAX_ATTEMPTS}"
            ));
        }
    };
    let source = &table[kind];
    match kind {
        "queue" => {
            let queue = string(source, at, "queue")?;
            if !valid_queue_name(queue) {
                return Err(format!(
                    "{at}: queue {source} is not a queue name; use 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a letter or digit"
                ));
            }
            let from = match table.get("from") {
                None => Vec::new(),
                Some(apps) => publishers(apps, at)?,
            };
            Ok(TriggerSpec::Queue {
                queue: queue.to_owned(),
                from,
                max_attempts,
            })
        }
        "cron" => {
            let schedule = Schedule::parse(string(source, at, "cron")?)
                .map_err(|why| format!("{at}: cron {source} is not a valid schedule: {why}"))?;
            let timezone = match table.get("timezone") {
                None => None,
                Some(zone) => {
                    let name = string(zone, at, "timezone")?;
                    Some(parse_time_zone(name).map_err(|why| format!("{at}: timezone {why}"))?)
                }
            };
            Ok(TriggerSpec::Cron {
                schedule,
                timezone,
                max_attempts,
            })
        }
        "nats" => {
            let subject = string(source, at, "nats")?;
            if !valid_nats_subject(subject) {
                return Err(format!(
                    "{at}: nats subject {source} is not valid; use '.'-separated tokens without spaces, where `*` matches one token and a last `>` the rest, e.g. \"orders.created\""
                ));
            }
            let queue_group = match table.get("queue_group") {
                None => None,
                Some(group) => {
                    let name = string(group, at, "queue_group")?;
                    if !valid_broker_name(name) {
                        return Err(format!(
                            "{at}: queue_group {group} is not valid; use 1 to 64 of A-Z, a-z, 0-9, '-', '_'"
                        ));
                    }
                    Some(name.to_owned())
                }
            };
            Ok(TriggerSpec::Nats {
                subject: subject.to_owned(),
                queue_group,
                max_attempts,
            })
        }
        "jetstream" => {
            let Value::Table(js) = source else {
                return Err(format!(
                    "{at}: jetstream must be a table such as {{ stream = \"ORDERS\", consumer = \"restock\" }}, not {}",
                    source.type_str()
                ));
            };
            let (stream, consumer) = jetstream_names(js, at)?;
            Ok(TriggerSpec::JetStream {
                stream,
                consumer,
                max_attempts,
            })
        }
        _ => {
            let topic = string(source, at, "mqtt")?;
            if !valid_mqtt_filter(topic) {
                return Err(format!(
                    "{at}: mqtt topic filter {source} is not valid; use '/'-separated levels where `+` matches one level and a last `#` the rest, e.g. \"sensors/+/temperature\""
                ));
            }
            Ok(TriggerSpec::Mqtt {
                topic: topic.to_owned(),
                max_attempts,
            })
        }
    }
}

/// `from = ["shop", "billing"]`: the other apps whose functions may
/// publish to this queue of the app.
fn publishers(apps: &Value, at: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = apps else {
        return Err(format!(
            "{at}: from must be an array of app names such as [\"shop\"], not {}",
            apps.type_str()
        ));
    };
    let mut from: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let app = string(item, at, &format!("from[{i}]"))?;
        if !valid_name(app) {
            return Err(format!(
                "{at}: from[{i}] {item} is not an app name ({NAME_RULE}); list each app whose functions may publish here by its name"
            ));
        }
        if from.iter().any(|seen| seen == app) {
            return Err(format!("{at}: from lists {item} twice; list each app once"));
        }
        from.push(app.to_owned());
    }
    Ok(from)
}

/// "; did you mean `key`?" for a mistyped key close to one of `keys`.
fn did_you_mean<'a>(typed: &str, keys: impl IntoIterator<Item = &'a str>) -> String {
    crate::suggest::closest(typed, keys)
        .map_or(String::new(), |key| format!("; did you mean `{key}`?"))
}

fn string<'v>(value: &'v Value, at: &str, key: &str) -> Result<&'v str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "{at}: {key} must be a string, not {}",
            other.type_str()
        )),
    }
}

fn jetstream_names(js: &Map<String, Value>, at: &str) -> Result<(String, String), String> {
    if let Some(extra) = js.keys().find(|k| *k != "stream" && *k != "consumer") {
        return Err(format!(
            "{at}: jetstream has an unknown key `{extra}`; it takes `stream` and `consumer`{}",
            did_you_mean(extra, ["stream", "consumer"])
        ));
    }
    let mut names = Vec::new();
    for key in ["stream", "consumer"] {
        let Some(value) = js.get(key) else {
            return Err(format!(
                "{at}: jetstream has no `{key}`; write {{ stream = \"ORDERS\", consumer = \"restock\" }}"
            ));
        };
        let name = string(value, at, &format!("jetstream {key}"))?;
        if !valid_broker_name(name) {
            return Err(format!(
                "{at}: jetstream {key} {value} is not valid; use 1 to 64 of A-Z, a-z, 0-9, '-', '_'"
            ));
        }
        names.push(name.to_owned());
    }
    let consumer = names.pop().unwrap_or_default();
    let stream = names.pop().unwrap_or_default();
    Ok((stream, consumer))
}

/// A queue name: 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a
/// letter or digit (the manifest's rule, which publishers share).
pub fn valid_queue_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// JetStream stream and consumer names and NATS queue groups: NATS refuses
/// '.', '*', '>', whitespace and path separators in them; we keep to a
/// portable subset.
fn valid_broker_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_nats_subject(subject: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    subject.len() <= 255
        && tokens.iter().enumerate().all(|(i, token)| {
            !token.is_empty()
                && !token
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                && (*token == "*" || !token.contains('*'))
                && (*token == ">" && i == tokens.len() - 1 || !token.contains('>'))
        })
}

fn valid_mqtt_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    !filter.is_empty()
        && filter.len() <= 1024
        && !filter.contains('\0')
        && levels.iter().enumerate().all(|(i, level)| {
            (*level == "+" || !level.contains('+'))
                && (*level == "#" && i == levels.len() - 1 || !level.contains('#'))
        })
}
