//! Cron schedules and time zones. They are parsed once, when a manifest is
//! checked or a stored spec is read, and kept parsed in
//! [`crate::TriggerSpec::Cron`], so the scheduler runs exactly what deployed
//! and never parses them again. Both are stored as the text the user wrote.

use std::fmt;

use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A six-field cron schedule (second, minute, hour, day of month, month, day
/// of week), with the text it was parsed from: croner normalises what it
/// keeps (upper case, names to numbers), and the user's text is what logs,
/// events and the stored spec show.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    text: String,
    // Boxed: croner's pattern is some 300 bytes, which would size every
    // `TriggerSpec`.
    cron: Box<Cron>,
}

impl Schedule {
    /// Parses a schedule such as `"0 */5 * * * *"` (every five minutes).
    /// The seconds field is required so a schedule never means two
    /// different things.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "it has {fields} fields; write six: second minute hour day-of-month month day-of-week, e.g. \"0 */5 * * * *\""
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| e.to_string())?;
        Ok(Schedule {
            text: text.to_owned(),
            cron: Box::new(cron),
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed schedule, to find its ticks.
    pub fn cron(&self) -> &Cron {
        &self.cron
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// Only the text: the parsed form is long and says nothing more.
impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.text).finish()
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Schedule::parse(&text).map_err(|why| {
            serde::de::Error::custom(format!("cron {text:?} is not a valid schedule: {why}"))
        })
    }
}

/// Parses an IANA time zone name such as `"Europe/Paris"`. chrono-tz
/// matches names exactly, so the zone's [`Tz::name`] is the text parsed.
pub(crate) fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "{name:?} is not a time zone name; use an IANA name such as \"Europe/Paris\" or \"UTC\""
        )
    })
}

/// A cron trigger's optional `timezone`, stored as its name.
pub(crate) mod zone {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(zone: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match zone {
            Some(zone) => s.serialize_some(zone.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|name| {
                super::parse_time_zone(&name)
                    .map_err(|why| serde::de::Error::custom(format!("timezone {why}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_schedule_keeps_its_text() {
        let schedule = Schedule::parse("0 30 9 * * mon-fri").unwrap();
        assert_eq!(schedule.as_str(), "0 30 9 * * mon-fri");
        assert_eq!(schedule.to_string(), "0 30 9 * * mon-fri");
        assert_eq!(
            serde_json::to_string(&schedule).unwrap(),
            "\"0 30 9 * * mon-fri\""
        );
    }

    #[test]
    fn every_zone_name_reads_back_as_itself() {
        for zone in chrono_tz::TZ_VARIANTS {
            assert_eq!(parse_time_zone(zone.name()), Ok(zone), "{}", zone.name());
        }
    }
}
