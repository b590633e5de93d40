//! Cron schedules and time zones, parsed by the same rules when a manifest
//! is checked and when the node's scheduler runs it, so a schedule that
//! deploys is one the scheduler understands.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Parses a six-field schedule: second, minute, hour, day of month, month,
/// day of week (e.g. `"0 */5 * * * *"`, every five minutes). The seconds
/// field is required so a schedule never means two different things.
pub fn parse_schedule(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "it has {fields} fields; write six: second minute hour day-of-month month day-of-week, e.g. \"0 */5 * * * *\""
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// Parses an IANA time zone name such as `"Europe/Paris"`.
pub fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "{name:?} is not a time zone name; use an IANA name such as \"Europe/Paris\" or \"UTC\""
        )
    })
}
