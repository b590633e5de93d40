//! Byte sizes and durations as written in a manifest.
//!
//! Sizes take binary units (`KiB`, `MiB`, `GiB`) and decimal ones (`KB`, `MB`,
//! `GB`), each meaning exactly what its name says, because both spellings
//! appear in real configurations and silently reading "MB" as "MiB" is how
//! limits end up 5% off. Units are case-sensitive for the same reason: `Mb`
//! (megabit) is not `MB`.
//!
//! In the stored (JSON) form sizes are plain integers of bytes and durations
//! integers of milliseconds, so the node's database never has to parse units.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The accepted units and their size in bytes.
const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", KIB),
    ("MiB", MIB),
    ("GiB", GIB),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// A number of bytes. Serialized as a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn b(n: u64) -> ByteSize {
        ByteSize(n)
    }

    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n * KIB)
    }

    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * MIB)
    }

    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n * GIB)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a size with a unit, such as `"64MiB"`, `"1 GiB"` or `"500KB"`.
    ///
    /// A bare number is refused: in a string it is more likely a forgotten
    /// unit than a deliberate count of bytes (write an integer for that).
    pub fn parse(text: &str) -> Result<ByteSize, SizeError> {
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(digits_end);
        let unit = unit.trim_start();
        if digits.is_empty() {
            return Err(SizeError::NotANumber(text.to_owned()));
        }
        if unit.is_empty() {
            return Err(SizeError::MissingUnit(text.to_owned()));
        }
        let Some(&(_, factor)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(SizeError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            });
        };
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(factor))
            .map(ByteSize)
            .ok_or_else(|| SizeError::TooLarge(text.to_owned()))
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ByteSize::parse(s)
    }
}

/// Shows the size in the largest unit that divides it exactly ("64MiB",
/// "1MB", "1000001B"), the form a user would write back into a manifest.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let best = ["GiB", "MiB", "KiB", "GB", "MB", "KB"]
            .iter()
            .filter_map(|name| UNITS.iter().find(|(u, _)| u == name))
            .find(|(_, factor)| n != 0 && n.is_multiple_of(*factor));
        match best {
            Some((name, factor)) => write!(f, "{}{name}", n / factor),
            None => write!(f, "{n}B"),
        }
    }
}

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("\"{0}\" does not start with a number; write e.g. \"64MiB\"")]
    NotANumber(String),
    #[error(
        "\"{0}\" has no unit; add one (B, KiB, MiB, GiB, KB, MB, GB) or write an integer number of bytes"
    )]
    MissingUnit(String),
    #[error("\"{text}\" has the unknown unit \"{unit}\"; use B, KiB, MiB, GiB, KB, MB or GB")]
    UnknownUnit { text: String, unit: String },
    #[error("\"{0}\" is too large")]
    TooLarge(String),
}

/// Serde for a [`Duration`] stored as whole milliseconds (the JSON form of
/// `timeout`). Validation guarantees timeouts are whole milliseconds, so the
/// round trip is exact.
pub(crate) mod duration_ms {
    use super::*;

    pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(d.as_millis())
            .map_err(|_| serde::ser::Error::custom("duration too long to store in milliseconds"))?;
        s.serialize_u64(ms)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 * 1024 * 1024)));
        assert_eq!(ByteSize::parse("1GiB"), Ok(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("4KiB"), Ok(ByteSize(4096)));
        assert_eq!(ByteSize::parse("1MB"), Ok(ByteSize(1_000_000)));
        assert_eq!(ByteSize::parse("2GB"), Ok(ByteSize(2_000_000_000)));
        assert_eq!(ByteSize::parse("3KB"), Ok(ByteSize(3_000)));
        assert_eq!(ByteSize::parse("512B"), Ok(ByteSize(512)));
        assert_eq!(ByteSize::parse(" 10 MiB "), Ok(ByteSize(10 << 20)));
    }

    #[test]
    fn refuses_bad_sizes_with_reasons() {
        assert_eq!(
            ByteSize::parse("12XB").unwrap_err().to_string(),
            "\"12XB\" has the unknown unit \"XB\"; use B, KiB, MiB, GiB, KB, MB or GB"
        );
        assert_eq!(
            ByteSize::parse("64mib"),
            Err(SizeError::UnknownUnit {
                text: "64mib".into(),
                unit: "mib".into()
            })
        );
        assert_eq!(
            ByteSize::parse("64"),
            Err(SizeError::MissingUnit("64".into()))
        );
        assert_eq!(
            ByteSize::parse("MiB"),
            Err(SizeError::NotANumber("MiB".into()))
        );
        assert_eq!(ByteSize::parse(""), Err(SizeError::NotANumber("".into())));
        assert_eq!(
            ByteSize::parse("-1MiB"),
            Err(SizeError::NotANumber("-1MiB".into()))
        );
        assert_eq!(
            ByteSize::parse("1.5GiB"),
            Err(SizeError::UnknownUnit {
                text: "1.5GiB".into(),
                unit: ".5GiB".into()
            })
        );
        assert_eq!(
            ByteSize::parse("99999999999999GiB"),
            Err(SizeError::TooLarge("99999999999999GiB".into()))
        );
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::mib(64).to_string(), "64MiB");
        assert_eq!(ByteSize::gib(1).to_string(), "1GiB");
        assert_eq!(ByteSize(1_000_000).to_string(), "1MB");
        assert_eq!(ByteSize(1_000_001).to_string(), "1000001B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }
}
