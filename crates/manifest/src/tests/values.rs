//! Single values: sizes, timeouts, concurrency, env, routes and names.

use std::time::Duration;

use super::*;

#[test]
fn accepts_sizes_in_every_form() {
    let table = [
        ("memory = \"64MiB\"", ByteSize::mib(64)),
        ("memory = \"1GiB\"", ByteSize::gib(1)),
        ("memory = \"4GiB\"", ByteSize::gib(4)),
        ("memory = 1048576", ByteSize::mib(1)),
        ("memory = \"2MB\"", ByteSize(2_000_000)),
        ("memory = \"2048KiB\"", ByteSize::mib(2)),
        ("memory = \"1 GB\"", ByteSize(1_000_000_000)),
        ("max_body = 1000000", ByteSize(1_000_000)),
        ("max_body = \"1MB\"", ByteSize(1_000_000)),
        ("max_body = 0", ByteSize(0)),
        ("max_body = \"1GiB\"", ByteSize::gib(1)),
    ];
    for (line, want) in table {
        let m = parse(&one_function(&format!("component = \"f.wasm\"\n{line}"))).unwrap();
        let f = &m.functions[0];
        let got = if line.starts_with("memory") {
            f.memory
        } else {
            f.max_body
        };
        assert_eq!(got, want, "{line}");
    }
}

#[test]
fn refuses_bad_sizes_naming_file_line_column_and_key() {
    let table = [
        (
            "memory = \"12XB\"",
            "6:10: function \"f\": memory \"12XB\" is not a size; use e.g. \"64MiB\" or \"1GiB\"",
        ),
        (
            "memory = \"64\"",
            "6:10: function \"f\": memory \"64\" has no unit; use e.g. \"64MiB\", or an integer for a number of bytes",
        ),
        (
            "memory = -5",
            "6:10: function \"f\": memory -5 is not a size; use e.g. \"64MiB\" or \"1GiB\"",
        ),
        (
            "memory = 1.5",
            "6:10: function \"f\": memory must be a size such as \"64MiB\" or an integer number of bytes, not a float (1.5)",
        ),
        (
            "memory = \"512KiB\"",
            "6:10: function \"f\": memory \"512KiB\" is below the minimum of 1MiB",
        ),
        (
            "memory = 16",
            "6:10: function \"f\": memory 16 means 16 bytes, below the minimum of 1MiB; a bare number is a count of bytes: write \"16MiB\"",
        ),
        (
            "memory = 0",
            "6:10: function \"f\": memory 0 means 0 bytes, below the minimum of 1MiB; a bare number is a count of bytes: write e.g. \"64MiB\"",
        ),
        (
            "memory = \"5GiB\"",
            "6:10: function \"f\": memory \"5GiB\" is above the maximum of 4GiB",
        ),
        (
            "max_body = \"2GiB\"",
            "6:12: function \"f\": max_body \"2GiB\" is above the maximum of 1GiB",
        ),
        (
            "max_body = \"99999999999999GiB\"",
            "6:12: function \"f\": max_body \"99999999999999GiB\" is too large; the maximum is 1GiB",
        ),
    ];
    for (line, want) in table {
        assert_eq!(function_error(line), format!("{FILE}:{want}"), "{line}");
    }
}

#[test]
fn checks_timeouts() {
    for (line, want) in [
        ("timeout = \"500ms\"", Duration::from_millis(500)),
        ("timeout = \"1m\"", Duration::from_secs(60)),
        ("timeout = \"15m\"", Duration::from_secs(900)),
    ] {
        let m = parse(&one_function(&format!("component = \"f.wasm\"\n{line}"))).unwrap();
        assert_eq!(m.functions[0].timeout, want, "{line}");
    }
    let table = [
        (
            "timeout = \"0s\"",
            "6:11: function \"f\": timeout \"0s\" must be greater than zero",
        ),
        (
            "timeout = \"16m\"",
            "6:11: function \"f\": timeout \"16m\" is above the maximum of 15m",
        ),
        (
            "timeout = 30",
            "6:11: function \"f\": timeout 30 has no unit; write e.g. \"30s\" or \"30ms\"",
        ),
        (
            "timeout = \"soon\"",
            "6:11: function \"f\": timeout \"soon\" is not a duration; use e.g. \"500ms\", \"2s\" or \"1m\"",
        ),
        (
            "timeout = \"1500us\"",
            "6:11: function \"f\": timeout \"1500us\" is finer than a millisecond; use whole milliseconds",
        ),
    ];
    for (line, want) in table {
        assert_eq!(function_error(line), format!("{FILE}:{want}"), "{line}");
    }
}

#[test]
fn checks_max_concurrency() {
    let m = parse(&one_function(
        "component = \"f.wasm\"\nmax_concurrency = 10000",
    ))
    .unwrap();
    assert_eq!(m.functions[0].max_concurrency, 10_000);
    for n in ["0", "10001", "-1", "99999999999"] {
        assert_eq!(
            function_error(&format!("max_concurrency = {n}")),
            format!(
                "{FILE}:6:19: function \"f\": max_concurrency {n} is out of range; use an integer from 1 to 10000"
            )
        );
    }
    assert_eq!(
        function_error("max_concurrency = \"50\""),
        format!(
            "{FILE}:6:19: function \"f\": max_concurrency must be an integer, not a string (\"50\")"
        )
    );
}

#[test]
fn checks_min_warm() {
    let m = parse(&one_function("component = \"f.wasm\"\nmin_warm = true")).unwrap();
    assert!(m.functions[0].min_warm);
    let m = parse(&one_function("component = \"f.wasm\"")).unwrap();
    assert!(!m.functions[0].min_warm, "off by default");
    let err = function_error("min_warm = \"yes\"");
    assert!(
        err.starts_with(&format!(
            "{FILE}:6:12: function \"f\": min_warm must be true or false"
        )),
        "{err}"
    );
}

#[test]
fn checks_env() {
    let table = [
        (
            "env = { \"A=B\" = \"x\" }",
            "6:9: function \"f\": env has '=' in a variable name (\"A=B\")",
        ),
        (
            "env = { \"\" = \"x\" }",
            "6:9: function \"f\": env has an empty variable name (\"\")",
        ),
        (
            "env = { PORT = 80 }",
            "6:16: function \"f\": env variable PORT must be a string (quote it), not an integer (80)",
        ),
        (
            "env = \"A=B\"",
            "6:7: invalid type: string \"A=B\", expected a table of environment variables, e.g. env = { KEY = \"value\" }",
        ),
    ];
    for (line, want) in table {
        assert_eq!(function_error(line), format!("{FILE}:{want}"), "{line}");
    }
}

#[test]
fn refuses_bad_routes_at_their_position() {
    assert_eq!(
        function_error("routes = [\"/ok\", \"price\"]"),
        format!(
            "{FILE}:6:18: function \"f\": route \"price\" must start with '/' (or with a host and then '/'); use \"/x\" for an exact path, \"/x/...\" for a path and everything below it, or \"/...\" for everything, each optionally after a host (\"api.example.com/x/...\")"
        )
    );
    assert_eq!(
        function_error("routes = \"/x\""),
        format!(
            "{FILE}:6:10: invalid type: string \"/x\", expected a list of routes, e.g. routes = [\"/x\", \"/x/...\"]"
        )
    );
    assert_eq!(
        function_error("routes = [1]"),
        format!("{FILE}:6:11: function \"f\": routes must be a string, not an integer (1)")
    );
}

#[test]
fn checks_reuse() {
    let m = parse(&one_function("component = \"f.wasm\"\nreuse = 128")).unwrap();
    assert_eq!(m.functions[0].reuse, 128);
    let m = parse(&one_function("component = \"f.wasm\"")).unwrap();
    assert_eq!(
        m.functions[0].reuse, 1,
        "a fresh instance per request by default"
    );
    assert_eq!(
        function_error("reuse = 0"),
        format!(
            "{FILE}:6:9: function \"f\": reuse 0 is out of range; use an integer from 1 to 1000000"
        )
    );
    assert_eq!(
        function_error("reuse = true"),
        format!("{FILE}:6:9: function \"f\": reuse must be an integer, not a boolean (true)")
    );
}

#[test]
fn checks_triggers() {
    let m = parse(&one_function(
        "component = \"f.wasm\"\ntriggers = [{ queue = \"orders\" }, { queue = \"audit.log\", max_attempts = 5, from = [\"billing\", \"front-2\"] },
          { cron = \"*/10 * * * * *\" }, { cron = \"0 30 9 * * MON-FRI\", timezone = \"Europe/Paris\" },
          { nats = \"orders.*.created\" }, { nats = \"audit.>\", queue_group = \"auditors\" },
          { jetstream = { stream = \"ORDERS\", consumer = \"restock\" }, max_attempts = 7 },
          { mqtt = \"sensors/+/temperature\" }, { mqtt = \"#\" }]",
    ))
    .unwrap();
    let max_attempts = 3;
    assert_eq!(
        m.functions[0].triggers,
        [
            TriggerSpec::Queue {
                queue: "orders".into(),
                from: Vec::new(),
                max_attempts
            },
            TriggerSpec::Queue {
                queue: "audit.log".into(),
                from: vec!["billing".into(), "front-2".into()],
                max_attempts: 5
            },
            TriggerSpec::Cron {
                schedule: Schedule::parse("*/10 * * * * *").unwrap(),
                timezone: None,
                max_attempts
            },
            TriggerSpec::Cron {
                schedule: Schedule::parse("0 30 9 * * MON-FRI").unwrap(),
                timezone: Some(chrono_tz::Europe::Paris),
                max_attempts
            },
            TriggerSpec::Nats {
                subject: "orders.*.created".into(),
                queue_group: None,
                max_attempts
            },
            TriggerSpec::Nats {
                subject: "audit.>".into(),
                queue_group: Some("auditors".into()),
                max_attempts
            },
            TriggerSpec::JetStream {
                stream: "ORDERS".into(),
                consumer: "restock".into(),
                max_attempts: 7
            },
            TriggerSpec::Mqtt {
                topic: "sensors/+/temperature".into(),
                max_attempts
            },
            TriggerSpec::Mqtt {
                topic: "#".into(),
                max_attempts
            },
        ]
    );
    for (triggers, message) in [
        (
            "[{ cron = \"0 * * * *\" }]",
            "function \"f\": triggers[0]: cron \"0 * * * *\" is not a valid schedule: it has 5 fields; write six: second minute hour day-of-month month day-of-week, e.g. \"0 */5 * * * *\"",
        ),
        (
            "[{ queue = \"a\" }, { cron = \"0 61 * * * *\" }]",
            "function \"f\": triggers[1]: cron \"0 61 * * * *\" is not a valid schedule: ",
        ),
        (
            "[{ cron = \"0 0 * * * *\", timezone = \"Mars/Olympus\" }]",
            "function \"f\": triggers[0]: timezone \"Mars/Olympus\" is not a time zone name; use an IANA name such as \"Europe/Paris\" or \"UTC\"",
        ),
        (
            "[{ nats = \"orders..created\" }]",
            "function \"f\": triggers[0]: nats subject \"orders..created\" is not valid; use '.'-separated tokens without spaces, where `*` matches one token and a last `>` the rest, e.g. \"orders.created\"",
        ),
        (
            "[{ nats = \"a.>.b\" }]",
            "function \"f\": triggers[0]: nats subject \"a.>.b\" is not valid;",
        ),
        (
            "[{ mqtt = \"sensors/#/x\" }]",
            "function \"f\": triggers[0]: mqtt topic filter \"sensors/#/x\" is not valid; use '/'-separated levels where `+` matches one level and a last `#` the rest, e.g. \"sensors/+/temperature\"",
        ),
        (
            "[{ jetstream = \"ORDERS\" }]",
            "function \"f\": triggers[0]: jetstream must be a table such as { stream = \"ORDERS\", consumer = \"restock\" }, not string",
        ),
        (
            "[{ jetstream = { stream = \"ORDERS\" } }]",
            "function \"f\": triggers[0]: jetstream has no `consumer`; write { stream = \"ORDERS\", consumer = \"restock\" }",
        ),
        (
            "[{ jetstream = { stream = \"OR.DERS\", consumer = \"c\" } }]",
            "function \"f\": triggers[0]: jetstream stream \"OR.DERS\" is not valid; use 1 to 64 of A-Z, a-z, 0-9, '-', '_'",
        ),
        (
            "[{ nats = \"a\", timezone = \"UTC\" }]",
            "function \"f\": triggers[0] has an unknown key `timezone`; a nats trigger takes `nats`, `queue_group`, `max_attempts`",
        ),
        (
            "[{ queue = \"Orders!\" }]",
            "function \"f\": triggers[0]: queue \"Orders!\" is not a queue name; use 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a letter or digit",
        ),
        (
            "[{ queue = \"a\", mqtt = \"t\" }]",
            "function \"f\": triggers[0] names queue and mqtt; use one per trigger",
        ),
        (
            "[{ queue = \"a\", max_attempts = 0 }]",
            "function \"f\": triggers[0]: max_attempts 0 is out of range; use an integer from 1 to 100",
        ),
        (
            "[{ queue = \"a\", retries = 2 }]",
            "function \"f\": triggers[0] has an unknown key `retries`; a queue trigger takes `queue`, `from`, `max_attempts`",
        ),
        (
            "[{ queue = \"a\", from = \"shop\" }]",
            "function \"f\": triggers[0]: from must be an array of app names such as [\"shop\"], not string",
        ),
        (
            "[{ queue = \"a\" }, { queue = \"b\", from = [\"shop\", \"*\"] }]",
            "function \"f\": triggers[1]: from[1] \"*\" is not an app name (names are 1-63 characters of lowercase ASCII letters, digits and '-', starting with a letter); list each app whose functions may publish here by its name",
        ),
        (
            "[{ queue = \"a\", from = [\"shop\", 7] }]",
            "function \"f\": triggers[0]: from[1] must be a string, not integer",
        ),
        (
            "[{ queue = \"a\", from = [\"billing\", \"billing\"] }]",
            "function \"f\": triggers[0]: from lists \"billing\" twice; list each app once",
        ),
        (
            "[{ cron = \"0 0 * * * *\", from = [\"shop\"] }]",
            "function \"f\": triggers[0] has an unknown key `from`; a cron trigger takes `cron`, `timezone`, `max_attempts`",
        ),
        (
            "[\"orders\"]",
            "function \"f\": triggers[0] must be a table such as { queue = \"orders\" }, not string",
        ),
        (
            "[{ cron = \"0 0 * * * *\", timezon = \"UTC\" }]",
            "function \"f\": triggers[0] has an unknown key `timezon`; a cron trigger takes `cron`, `timezone`, `max_attempts`; did you mean `timezone`?",
        ),
        (
            "[{ queu = \"orders\" }]",
            "function \"f\": triggers[0] names no event source; use one of queue, cron, nats, jetstream, mqtt; did you mean `queue`?",
        ),
    ] {
        let error = function_error(&format!("triggers = {triggers}"));
        let expected = format!("{FILE}:6:12: {message}");
        assert!(
            error.starts_with(&expected),
            "{triggers}:\n  got  {error}\n  want {expected}"
        );
    }
}

#[test]
fn a_queue_trigger_stored_before_grants_grants_no_one() {
    let stored = r#"{"kind":"queue","queue":"orders","max_attempts":3}"#;
    let trigger: TriggerSpec = serde_json::from_str(stored).unwrap();
    assert_eq!(
        trigger,
        TriggerSpec::Queue {
            queue: "orders".into(),
            from: Vec::new(),
            max_attempts: 3
        }
    );
    // And a trigger without grants is stored as before.
    assert_eq!(serde_json::to_string(&trigger).unwrap(), stored);
    let granted = TriggerSpec::Queue {
        queue: "orders".into(),
        from: vec!["shop".into()],
        max_attempts: 3,
    };
    let json = serde_json::to_string(&granted).unwrap();
    assert_eq!(serde_json::from_str::<TriggerSpec>(&json).unwrap(), granted);
    assert_eq!(granted.to_string(), "queue \"orders\" (from shop)");
}

#[test]
fn checks_allowed_outbound_patterns() {
    let m = parse(&one_function(
        "component = \"f.wasm\"\nallowed_outbound = [\"https://api.example.com\", \"http://*.svc.local:*\"]",
    ))
    .unwrap();
    let patterns: Vec<&str> = m.functions[0]
        .allowed_outbound
        .iter()
        .map(OutboundRule::as_str)
        .collect();
    assert_eq!(
        patterns,
        ["https://api.example.com", "http://*.svc.local:*"]
    );
    let error = function_error("allowed_outbound = [\"https://ok.org\", \"ftp://files.org\"]");
    assert_eq!(
        error,
        format!(
            "{FILE}:6:20: function \"f\": allowed_outbound[1] \"ftp://files.org\" is not an outbound pattern: the scheme must be http or https, not \"ftp\""
        )
    );
}
