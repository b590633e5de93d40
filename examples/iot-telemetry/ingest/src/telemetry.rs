//! The pure part of `ingest`: parse and validate a batch of readings,
//! aggregate it, and shape the alert it may raise. Nothing here touches WASI,
//! so the unit tests run on the host:
//!
//! ```text
//! cargo test --manifest-path examples/Cargo.toml -p iot-ingest
//! ```

use std::ops::RangeInclusive;

use serde_json::{Map, Value, json};

/// Most readings one message may carry.
pub const MAX_READINGS: usize = 1000;
/// Accepted temperatures, °C.
pub const TEMPERATURE: RangeInclusive<f64> = -80.0..=150.0;
/// Accepted relative humidities, %.
pub const HUMIDITY: RangeInclusive<f64> = 0.0..=100.0;
/// Alert threshold (°C) when `ALERT_ABOVE` is not set.
pub const DEFAULT_THRESHOLD: f64 = 30.0;
/// Longest device name, in characters.
const MAX_DEVICE_CHARS: usize = 128;

/// Why a message was refused; the handler answers it as
/// `422 {"error":{"code":"invalid_reading","message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// One sensor reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub temperature: f64,
    pub humidity: Option<f64>,
}

/// A validated message: a device and 1 to [`MAX_READINGS`] readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    device: String,
    readings: Vec<Reading>,
}

/// What `ingest` answers (and logs) for a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub device: String,
    pub readings: usize,
    pub min_temperature: f64,
    pub max_temperature: f64,
    pub mean_temperature: f64,
    pub mean_humidity: Option<f64>,
}

/// Parses the MQTT payload `body`:
///
/// ```text
/// {"device":"dev-7","readings":[{"temperature":21.5,"humidity":40}, …]}
/// ```
///
/// `device` may be omitted (or null); it is then the second level of the
/// MQTT topic, which the node passes as the event's `ce-subject`
/// (`sensors/dev-7/telemetry` → `dev-7`). `humidity` may be omitted (or
/// null). Other fields are ignored.
pub fn parse_batch(body: &[u8], subject: Option<&str>) -> Result<Batch, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| Invalid(format!("the body is not valid JSON: {err}")))?;
    let Value::Object(object) = value else {
        return Err(Invalid(format!(
            "the body must be a JSON object such as \
             {{\"device\":\"dev-7\",\"readings\":[{{\"temperature\":21.5}}]}}, not {}",
            kind(&value)
        )));
    };
    let device = device(&object, subject)?;
    let readings = readings(&object)?;
    Ok(Batch { device, readings })
}

fn device(object: &Map<String, Value>, subject: Option<&str>) -> Result<String, Invalid> {
    match object.get("device") {
        Some(Value::String(name)) => {
            if valid_device(name) {
                Ok(name.clone())
            } else {
                Err(Invalid(format!(
                    "device {name:?} is not a device name; use 1 to {MAX_DEVICE_CHARS} \
                     characters without control characters"
                )))
            }
        }
        Some(Value::Null) | None => match subject {
            Some(topic) => device_from_topic(topic).map(str::to_owned).ok_or_else(|| {
                Invalid(format!(
                    "the body has no \"device\" and the event's subject {topic:?} is not \
                     an MQTT topic such as sensors/<device>/telemetry"
                ))
            }),
            None => Err(Invalid(
                "the body has no \"device\" and there is no ce-subject header (the MQTT \
                 topic) to take it from; add \"device\":\"dev-7\" to the body"
                    .to_string(),
            )),
        },
        Some(other) => Err(Invalid(format!(
            "device must be a string, not {}",
            kind(other)
        ))),
    }
}

/// The device named by the second level of an MQTT topic
/// (`sensors/dev-7/telemetry` → `dev-7`), if that level is a valid name.
pub fn device_from_topic(topic: &str) -> Option<&str> {
    let mut levels = topic.split('/');
    let _first = levels.next()?;
    levels.next().filter(|level| valid_device(level))
}

fn valid_device(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_DEVICE_CHARS
        && !name.chars().any(char::is_control)
}

fn readings(object: &Map<String, Value>) -> Result<Vec<Reading>, Invalid> {
    let items = match object.get("readings") {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Invalid(format!(
                "readings must be an array, not {}",
                kind(other)
            )));
        }
        None => {
            return Err(Invalid(format!(
                "readings is missing; send an array of 1 to {MAX_READINGS} readings \
                 such as [{{\"temperature\":21.5,\"humidity\":40}}]"
            )));
        }
    };
    if items.is_empty() {
        return Err(Invalid(format!(
            "readings is empty; send 1 to {MAX_READINGS} readings"
        )));
    }
    if items.len() > MAX_READINGS {
        return Err(Invalid(format!(
            "readings has {} entries; at most {MAX_READINGS} are allowed in one message",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| reading(i, item))
        .collect()
}

fn reading(i: usize, item: &Value) -> Result<Reading, Invalid> {
    let Value::Object(fields) = item else {
        return Err(Invalid(format!(
            "readings[{i}] must be an object such as {{\"temperature\":21.5,\"humidity\":40}}, \
             not {}",
            kind(item)
        )));
    };
    let temperature = match fields.get("temperature") {
        None | Some(Value::Null) => {
            return Err(Invalid(format!("readings[{i}].temperature is missing")));
        }
        Some(value) => number_in(
            value,
            &format!("readings[{i}].temperature"),
            &TEMPERATURE,
            "°C",
        )?,
    };
    let humidity = match fields.get("humidity") {
        None | Some(Value::Null) => None,
        Some(value) => Some(number_in(
            value,
            &format!("readings[{i}].humidity"),
            &HUMIDITY,
            "%",
        )?),
    };
    Ok(Reading {
        temperature,
        humidity,
    })
}

/// `value` as a finite number within `range`, or why not (naming `field`).
fn number_in(
    value: &Value,
    field: &str,
    range: &RangeInclusive<f64>,
    unit: &str,
) -> Result<f64, Invalid> {
    let Some(number) = value.as_f64() else {
        return Err(Invalid(format!(
            "{field} must be a number, not {} ({value})",
            kind(value)
        )));
    };
    if !number.is_finite() {
        return Err(Invalid(format!("{field} {value} is not a finite number")));
    }
    if !range.contains(&number) {
        return Err(Invalid(format!(
            "{field} {value} is out of range: it must be from {} to {} {unit}",
            range.start(),
            range.end()
        )));
    }
    Ok(number)
}

/// "a string", "an array", …: for messages about a value of the wrong type.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Batch {
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn readings(&self) -> &[Reading] {
        &self.readings
    }

    /// Count, min, max and mean temperature, and mean humidity over the
    /// readings that have one. Means are rounded to 2 decimal places.
    pub fn summarize(&self) -> Summary {
        // A batch always has at least one reading (see `parse_batch`).
        let count = self.readings.len();
        let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        let (mut humidity_sum, mut humidity_count) = (0.0, 0usize);
        for reading in &self.readings {
            min = min.min(reading.temperature);
            max = max.max(reading.temperature);
            sum += reading.temperature;
            if let Some(humidity) = reading.humidity {
                humidity_sum += humidity;
                humidity_count += 1;
            }
        }
        Summary {
            device: self.device.clone(),
            readings: count,
            min_temperature: min,
            max_temperature: max,
            mean_temperature: round2(sum / count.max(1) as f64),
            mean_humidity: (humidity_count > 0)
                .then(|| round2(humidity_sum / humidity_count as f64)),
        }
    }
}

/// Rounds to 2 decimal places (hiding noise such as `22.200000000000003`).
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0 + 0.0 // `+ 0.0` turns -0 into 0
}

/// The alert threshold from the value of `ALERT_ABOVE` (`None` when unset).
pub fn threshold(setting: Option<&str>) -> Result<f64, String> {
    match setting {
        None => Ok(DEFAULT_THRESHOLD),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .ok_or_else(|| format!("ALERT_ABOVE is {text:?}, not a number of °C such as \"30\"")),
    }
}

impl Summary {
    /// Whether the batch raises an alert: its hottest reading is above
    /// `threshold`.
    pub fn alerts(&self, threshold: f64) -> bool {
        self.max_temperature > threshold
    }

    /// The 200 answer's body.
    pub fn to_json(&self, alert: bool, event: Option<&str>) -> Value {
        json!({
            "device": self.device,
            "readings": self.readings,
            "min_temperature": self.min_temperature,
            "max_temperature": self.max_temperature,
            "mean_temperature": self.mean_temperature,
            "mean_humidity": self.mean_humidity,
            "alert": alert,
            "event": event,
        })
    }

    /// The alert published to `http://queue.svc/alerts` (the `alerts`
    /// function reads the same fields).
    pub fn alert_json(&self, threshold: f64, event: Option<&str>) -> Value {
        json!({
            "device": self.device,
            "max_temperature": self.max_temperature,
            "threshold": threshold,
            "readings": self.readings,
            "source_event": event,
        })
    }

    /// The log line for a handled batch (`outcome` such as "alert raised").
    pub fn log_line(&self, outcome: &str) -> String {
        format!(
            "{}: {} reading{}, max {} °C, {outcome}",
            self.device,
            self.readings,
            if self.readings == 1 { "" } else { "s" },
            self.max_temperature
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Batch, Invalid> {
        parse_batch(body.as_bytes(), Some("sensors/dev-7/telemetry"))
    }

    fn error(body: &str) -> String {
        match parse(body) {
            Ok(batch) => panic!("accepted {body}: {batch:?}"),
            Err(Invalid(message)) => message,
        }
    }

    #[test]
    fn a_valid_batch_is_parsed() {
        let batch =
            parse(r#"{"device":"dev-9","readings":[{"temperature":21.5,"humidity":40},{"temperature":-3}]}"#)
                .expect("valid");
        assert_eq!(
            batch.device(),
            "dev-9",
            "the body's device wins over the topic"
        );
        assert_eq!(
            batch.readings(),
            &[
                Reading {
                    temperature: 21.5,
                    humidity: Some(40.0)
                },
                Reading {
                    temperature: -3.0,
                    humidity: None
                },
            ]
        );
    }

    #[test]
    fn the_device_comes_from_the_topic_when_the_body_has_none() {
        let batch = parse(r#"{"readings":[{"temperature":31.2}]}"#).expect("valid");
        assert_eq!(batch.device(), "dev-7");
        let batch = parse(r#"{"device":null,"readings":[{"temperature":31.2}]}"#).expect("valid");
        assert_eq!(batch.device(), "dev-7");
    }

    #[test]
    fn no_device_anywhere_is_refused() {
        let body = br#"{"readings":[{"temperature":20}]}"#;
        let Err(Invalid(message)) = parse_batch(body, None) else {
            panic!("accepted")
        };
        assert!(message.contains("ce-subject"), "{message}");
        let Err(Invalid(message)) = parse_batch(body, Some("telemetry")) else {
            panic!("accepted")
        };
        assert!(message.contains("\"telemetry\""), "{message}");
        let Err(Invalid(message)) = parse_batch(body, Some("sensors//telemetry")) else {
            panic!("accepted")
        };
        assert!(message.contains("sensors/<device>/telemetry"), "{message}");
    }

    #[test]
    fn device_from_topic_takes_the_second_level() {
        assert_eq!(device_from_topic("sensors/dev-7/telemetry"), Some("dev-7"));
        assert_eq!(device_from_topic("sensors/dev-7"), Some("dev-7"));
        assert_eq!(device_from_topic("sensors"), None);
        assert_eq!(device_from_topic("sensors//telemetry"), None);
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        assert!(error("").contains("not valid JSON"));
        assert!(error("{").contains("not valid JSON"));
        assert!(error("[1,2]").contains("must be a JSON object"));
        assert!(
            error(r#"{"device":7,"readings":[]}"#)
                .contains("device must be a string, not a number")
        );
        assert!(
            error(r#"{"device":"","readings":[{"temperature":1}]}"#).contains("not a device name")
        );
        assert!(error(r#"{}"#).contains("readings is missing"));
        assert!(error(r#"{"readings":"hot"}"#).contains("readings must be an array, not a string"));
        assert!(error(r#"{"readings":[]}"#).contains("readings is empty"));
        assert!(
            error(r#"{"readings":[{"temperature":1},5]}"#)
                .contains("readings[1] must be an object")
        );
        assert!(
            error(r#"{"readings":[{"humidity":4}]}"#)
                .contains("readings[0].temperature is missing")
        );
        assert!(
            error(r#"{"readings":[{"temperature":"21.5"}]}"#)
                .contains(r#"readings[0].temperature must be a number, not a string ("21.5")"#)
        );
        assert_eq!(
            error(r#"{"readings":[{"temperature":20},{"temperature":150.5}]}"#),
            "readings[1].temperature 150.5 is out of range: it must be from -80 to 150 °C"
        );
        assert!(
            error(r#"{"readings":[{"temperature":-80.1}]}"#)
                .contains("readings[0].temperature -80.1 is out of range")
        );
        assert_eq!(
            error(r#"{"readings":[{"temperature":20,"humidity":101}]}"#),
            "readings[0].humidity 101 is out of range: it must be from 0 to 100 %"
        );
        assert!(
            error(r#"{"readings":[{"temperature":20,"humidity":-1}]}"#)
                .contains("humidity -1 is out of range")
        );
        assert!(
            error(r#"{"readings":[{"temperature":20,"humidity":true}]}"#)
                .contains("humidity must be a number, not a boolean")
        );
    }

    #[test]
    fn the_limits_are_inclusive() {
        let body =
            r#"{"readings":[{"temperature":-80,"humidity":0},{"temperature":150,"humidity":100}]}"#;
        assert!(parse(body).is_ok());
    }

    #[test]
    fn at_most_1000_readings() {
        let batch = |n: usize| {
            let readings = vec![r#"{"temperature":20}"#; n].join(",");
            format!(r#"{{"readings":[{readings}]}}"#)
        };
        assert_eq!(
            parse(&batch(MAX_READINGS)).expect("valid").readings().len(),
            1000
        );
        assert!(error(&batch(MAX_READINGS + 1)).contains("readings has 1001 entries"));
    }

    #[test]
    fn summarize_aggregates() {
        let batch = parse(
            r#"{"readings":[{"temperature":21.5,"humidity":40},{"temperature":23.1},{"temperature":22,"humidity":45}]}"#,
        )
        .expect("valid");
        let summary = batch.summarize();
        assert_eq!(
            summary,
            Summary {
                device: "dev-7".into(),
                readings: 3,
                min_temperature: 21.5,
                max_temperature: 23.1,
                mean_temperature: 22.2,
                mean_humidity: Some(42.5),
            }
        );
        assert!(!summary.alerts(30.0));
        assert!(summary.alerts(23.0));
        assert!(
            !summary.alerts(23.1),
            "the threshold itself raises no alert"
        );
    }

    #[test]
    fn without_humidity_the_mean_humidity_is_null() {
        let summary = parse(r#"{"readings":[{"temperature":31.2}]}"#)
            .expect("valid")
            .summarize();
        assert_eq!(summary.mean_humidity, None);
        assert_eq!(
            summary.to_json(true, Some("ev-1")),
            json!({
                "device": "dev-7",
                "readings": 1,
                "min_temperature": 31.2,
                "max_temperature": 31.2,
                "mean_temperature": 31.2,
                "mean_humidity": null,
                "alert": true,
                "event": "ev-1",
            })
        );
        assert_eq!(summary.to_json(false, None)["event"], Value::Null);
    }

    #[test]
    fn the_alert_names_the_source_event() {
        let summary = parse(r#"{"readings":[{"temperature":31.2},{"temperature":29}]}"#)
            .expect("valid")
            .summarize();
        assert_eq!(
            summary.alert_json(30.0, Some("ev-1")),
            json!({
                "device": "dev-7",
                "max_temperature": 31.2,
                "threshold": 30.0,
                "readings": 2,
                "source_event": "ev-1",
            })
        );
        assert_eq!(
            summary.log_line("alert raised"),
            "dev-7: 2 readings, max 31.2 °C, alert raised"
        );
    }

    #[test]
    fn the_threshold_defaults_to_30() {
        assert_eq!(threshold(None), Ok(30.0));
        assert_eq!(threshold(Some("30")), Ok(30.0));
        assert_eq!(threshold(Some(" -4.5 ")), Ok(-4.5));
        assert!(threshold(Some("hot")).is_err());
        assert!(threshold(Some("inf")).is_err());
        assert!(threshold(Some("")).is_err());
    }
}
