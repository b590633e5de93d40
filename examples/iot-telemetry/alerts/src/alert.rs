//! The pure part of `alerts`: parse the alert that `ingest` publishes, and
//! shape the log line and answer. No WASI here, so the unit tests run on the
//! host: `cargo test --manifest-path examples/Cargo.toml -p iot-alerts`.

use serde_json::{Value, json};

/// An alert as `ingest` publishes it:
///
/// ```text
/// {"device":"dev-7","max_temperature":31.2,"threshold":30.0,"readings":12,"source_event":"…"}
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub device: String,
    pub max_temperature: f64,
    pub threshold: f64,
    /// How many readings the batch had (optional).
    pub readings: Option<u64>,
    /// The `ce-id` of the telemetry event that raised it (optional).
    pub source_event: Option<String>,
}

/// Parses an alert, or says what is wrong with the body (answered as
/// `422 {"error":{"code":"invalid_alert","message":…}}`).
pub fn parse_alert(body: &[u8]) -> Result<Alert, String> {
    const EXAMPLE: &str = r#"{"device":"dev-7","max_temperature":31.2,"threshold":30}"#;
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        format!("the body is not valid JSON: {err}; expected an alert such as {EXAMPLE}")
    })?;
    let Value::Object(fields) = value else {
        return Err(format!("the body must be a JSON object such as {EXAMPLE}"));
    };
    let device = match fields.get("device") {
        Some(Value::String(device)) if !device.is_empty() => device.clone(),
        Some(Value::String(_)) => return Err("device is empty".to_string()),
        Some(other) => return Err(format!("device must be a string, not {other}")),
        None => {
            return Err(format!(
                "device is missing; expected an alert such as {EXAMPLE}"
            ));
        }
    };
    let number = |name: &str| match fields.get(name) {
        Some(value) => value
            .as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{name} must be a number, not {value}")),
        None => Err(format!(
            "{name} is missing; expected an alert such as {EXAMPLE}"
        )),
    };
    let max_temperature = number("max_temperature")?;
    let threshold = number("threshold")?;
    let readings = match fields.get("readings") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().ok_or_else(|| {
            format!("readings must be a count (a whole number of at least 0), not {value}")
        })?),
    };
    let source_event = match fields.get("source_event") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(format!(
                "source_event must be a string or null, not {other}"
            ));
        }
    };
    Ok(Alert {
        device,
        max_temperature,
        threshold,
        readings,
        source_event,
    })
}

impl Alert {
    /// `ALERT dev-7: 31.2 °C above 30 °C (event …)`, `event` being the
    /// `ce-id` of the alert's own delivery.
    pub fn log_line(&self, event: Option<&str>) -> String {
        format!(
            "ALERT {}: {} °C above {} °C (event {})",
            self.device,
            self.max_temperature,
            self.threshold,
            event.unwrap_or("without ce-id")
        )
    }

    /// The 200 answer's body.
    pub fn answer(&self, event: Option<&str>) -> Value {
        json!({ "alerted": self.device, "event": event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_from_ingest_is_parsed() {
        let body = br#"{"device":"dev-7","max_temperature":31.2,"threshold":30.0,"readings":12,"source_event":"ev-1"}"#;
        let alert = parse_alert(body).expect("valid");
        assert_eq!(
            alert,
            Alert {
                device: "dev-7".into(),
                max_temperature: 31.2,
                threshold: 30.0,
                readings: Some(12),
                source_event: Some("ev-1".into()),
            }
        );
        assert_eq!(
            alert.log_line(Some("alert-ev-1")),
            "ALERT dev-7: 31.2 °C above 30 °C (event alert-ev-1)"
        );
        assert_eq!(
            alert.answer(Some("alert-ev-1")),
            json!({"alerted": "dev-7", "event": "alert-ev-1"})
        );
        assert_eq!(
            alert.answer(None),
            json!({"alerted": "dev-7", "event": null})
        );
    }

    #[test]
    fn readings_and_source_event_are_optional() {
        let alert = parse_alert(
            br#"{"device":"d","max_temperature":40,"threshold":30,"source_event":null}"#,
        )
        .expect("valid");
        assert_eq!((alert.readings, alert.source_event), (None, None));
    }

    #[test]
    fn bodies_that_are_not_alerts_are_refused_with_a_reason() {
        let error = |body: &str| parse_alert(body.as_bytes()).expect_err(body);
        assert!(error("").contains("not valid JSON"));
        assert!(error("[]").contains("must be a JSON object"));
        assert!(error(r#"{"max_temperature":31,"threshold":30}"#).contains("device is missing"));
        assert!(
            error(r#"{"device":"","max_temperature":31,"threshold":30}"#)
                .contains("device is empty")
        );
        assert!(
            error(r#"{"device":7,"max_temperature":31,"threshold":30}"#)
                .contains("device must be a string")
        );
        assert!(error(r#"{"device":"d","threshold":30}"#).contains("max_temperature is missing"));
        assert!(
            error(r#"{"device":"d","max_temperature":"31","threshold":30}"#)
                .contains("max_temperature must be a number")
        );
        assert!(error(r#"{"device":"d","max_temperature":31}"#).contains("threshold is missing"));
        assert!(
            error(r#"{"device":"d","max_temperature":31,"threshold":30,"readings":-1}"#)
                .contains("readings must be a count")
        );
        assert!(
            error(r#"{"device":"d","max_temperature":31,"threshold":30,"source_event":1}"#)
                .contains("source_event must be a string")
        );
    }
}
