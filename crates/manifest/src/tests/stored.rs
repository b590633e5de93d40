//! The JSON the node stores for a function: validated values that are kept
//! typed in the model (outbound patterns, cron schedules, time zones) are
//! stored as the text the user wrote, so specs stored by earlier versions
//! read back unchanged and new ones read the same way.

use super::*;

const TYPED: &str = r#"[app]
name = "shop"

[[function]]
name = "ticker"
component = "t.wasm"
allowed_outbound = ["https://API.Example.com/", "http://*.svc:*", "http://127.0.0.1:8080"]
triggers = [
  { cron = "0 30 9 * * mon-fri", timezone = "Europe/Paris" },
  { cron = "*/10 * * * * *", max_attempts = 5 },
  { queue = "orders" },
]
"#;

/// What the version before typed values stored for [`TYPED`].
const TYPED_JSON: &str = r#"{"name":"ticker","component":"t.wasm","routes":[],"memory":134217728,"timeout_ms":30000,"max_body":10485760,"max_concurrency":100,"min_warm":false,"env":{},"triggers":[{"kind":"cron","schedule":"0 30 9 * * mon-fri","timezone":"Europe/Paris","max_attempts":3},{"kind":"cron","schedule":"*/10 * * * * *","max_attempts":5},{"kind":"queue","queue":"orders","max_attempts":3}],"allowed_outbound":["https://API.Example.com/","http://*.svc:*","http://127.0.0.1:8080"],"max_outbound_requests":50,"max_outbound_bytes":16777216,"outbound_timeout_ms":10000}"#;

#[test]
fn typed_values_are_stored_as_written() {
    let spec = &parse(TYPED).unwrap().functions[0];
    let json = serde_json::to_string(spec).unwrap();
    assert_eq!(json, TYPED_JSON);
}

#[test]
fn a_stored_spec_reads_back_typed_and_stores_the_same() {
    let spec = &parse(TYPED).unwrap().functions[0];
    let back: FunctionSpec = serde_json::from_str(TYPED_JSON).unwrap();
    assert_eq!(&back, spec);
    assert_eq!(serde_json::to_string(&back).unwrap(), TYPED_JSON);

    // Read as the consumers use them, without parsing again.
    assert!(back.allowed_outbound[0].allows(true, "api.example.com", 443));
    assert_eq!(
        back.allowed_outbound[0].as_str(),
        "https://API.Example.com/"
    );
    let TriggerSpec::Cron {
        schedule, timezone, ..
    } = &back.triggers[0]
    else {
        panic!("not a cron trigger: {:?}", back.triggers[0]);
    };
    assert_eq!(schedule.as_str(), "0 30 9 * * mon-fri");
    assert_eq!(*timezone, Some(chrono_tz::Europe::Paris));
    assert_eq!(
        back.triggers[0].to_string(),
        "cron \"0 30 9 * * mon-fri\" (Europe/Paris)"
    );
    assert_eq!(
        back.triggers[1].to_string(),
        "cron \"*/10 * * * * *\" (UTC)"
    );
}

#[test]
fn a_stored_value_that_does_not_parse_is_an_error_not_dropped() {
    for (from, to, why) in [
        (
            "\"http://*.svc:*\"",
            "\"ftp://files.org\"",
            "\"ftp://files.org\" is not an outbound pattern: the scheme must be http or https, not \"ftp\"",
        ),
        (
            "\"*/10 * * * * *\"",
            "\"*/10 * * * *\"",
            "cron \"*/10 * * * *\" is not a valid schedule: it has 5 fields",
        ),
        (
            "\"Europe/Paris\"",
            "\"Mars/Olympus\"",
            "timezone \"Mars/Olympus\" is not a time zone name",
        ),
        ("\"Europe/Paris\"", "5", "invalid type: integer `5`"),
    ] {
        let stored = TYPED_JSON.replacen(from, to, 1);
        assert_ne!(stored, TYPED_JSON, "{from} is in the stored spec");
        let err = serde_json::from_str::<FunctionSpec>(&stored)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{to}: {err}");
    }
}
