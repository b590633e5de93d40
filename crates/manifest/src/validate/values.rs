//! Checks of single values: types, units and ranges, each with a message
//! that names the key, the function and what to write instead.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::{Spanned, Value};

use super::{NAME_RULE, Source};
use crate::error::ManifestError;
use crate::model::MAX_TIMEOUT;
use crate::outbound::OutboundRule;

use crate::raw::RawEnv;
use crate::units::{ByteSize, SizeError};

impl Source<'_> {
    /// `prefix` names the owner and ends with a separator ("app ",
    /// "function \"x\": "), so messages read "app name ..." and
    /// "function \"x\": memory ...".
    pub(super) fn wrong_type(
        &self,
        value: &Spanned<Value>,
        prefix: &str,
        key: &str,
        want: &str,
    ) -> ManifestError {
        let span = value.span();
        let message = format!(
            "{prefix}{key} must be {want}, not {} ({})",
            with_article(value.get_ref().type_str()),
            self.written(&span)
        );
        self.invalid(span, key, message)
    }

    pub(super) fn string<'v>(
        &self,
        value: &'v Spanned<Value>,
        prefix: &str,
        key: &str,
    ) -> Result<&'v str, ManifestError> {
        match value.get_ref() {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong_type(value, prefix, key, "a string")),
        }
    }

    pub(super) fn name(
        &self,
        value: &Spanned<Value>,
        prefix: &str,
    ) -> Result<String, ManifestError> {
        let name = self.string(value, prefix, "name")?;
        let problem = if name.is_empty() {
            Some("is empty".to_owned())
        } else if name.len() > 63 {
            Some("is longer than 63 characters".to_owned())
        } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            Some("does not start with a lowercase letter".to_owned())
        } else {
            name.chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
                .map(|c| format!("contains {c:?}"))
        };
        match problem {
            None => Ok(name.to_owned()),
            Some(problem) => Err(self.invalid(
                value.span(),
                "name",
                format!(
                    "{prefix}name {} {problem}; {NAME_RULE}",
                    self.written(&value.span())
                ),
            )),
        }
    }

    pub(super) fn size(
        &self,
        value: &Spanned<Value>,
        p: &str,
        key: &str,
        min: ByteSize,
        max: ByteSize,
    ) -> Result<ByteSize, ManifestError> {
        let span = value.span();
        let written = self.written(&span);
        let size = match value.get_ref() {
            Value::Integer(n) => u64::try_from(*n).map(ByteSize).map_err(|_| {
                format!("{p}{key} {written} is not a size; use e.g. \"64MiB\" or \"1GiB\"")
            }),
            Value::String(s) => ByteSize::parse(s).map_err(|e| match e {
                SizeError::MissingUnit(_) => format!(
                    "{p}{key} {written} has no unit; use e.g. \"64MiB\", or an integer for a number of bytes"
                ),
                SizeError::TooLarge(_) => format!("{p}{key} {written} is too large; the maximum is {max}"),
                SizeError::NotANumber(_) | SizeError::UnknownUnit { .. } => {
                    format!("{p}{key} {written} is not a size; use e.g. \"64MiB\" or \"1GiB\"")
                }
            }),
            _ => {
                return Err(self.wrong_type(value, p, key, "a size such as \"64MiB\" or an integer number of bytes"));
            }
        }
        .map_err(|message| self.invalid(span.clone(), key, message))?;
        if size < min {
            let message = match value.get_ref() {
                // `memory = 16` meant 16MiB far more often than 16 bytes.
                Value::Integer(n) => {
                    let meant = u64::try_from(*n)
                        .ok()
                        .and_then(|n| n.checked_mul(ByteSize::mib(1).bytes()))
                        .filter(|b| (min.bytes()..=max.bytes()).contains(b))
                        .map_or("e.g. \"64MiB\"".to_owned(), |_| format!("\"{n}MiB\""));
                    format!(
                        "{p}{key} {written} means {n} bytes, below the minimum of {min}; a bare number is a count of bytes: write {meant}"
                    )
                }
                _ => format!("{p}{key} {written} is below the minimum of {min}"),
            };
            return Err(self.invalid(span, key, message));
        }
        if size > max {
            return Err(self.invalid(
                span,
                key,
                format!("{p}{key} {written} is above the maximum of {max}"),
            ));
        }
        Ok(size)
    }

    pub(super) fn timeout(
        &self,
        value: &Spanned<Value>,
        p: &str,
    ) -> Result<Duration, ManifestError> {
        self.duration(value, p, "timeout")
    }

    /// A duration key (`timeout`, `outbound_timeout`): a string with a unit,
    /// above zero and at most [`MAX_TIMEOUT`].
    pub(super) fn duration(
        &self,
        value: &Spanned<Value>,
        p: &str,
        key: &str,
    ) -> Result<Duration, ManifestError> {
        let span = value.span();
        let written = self.written(&span);
        let fail = |message: String| Err(self.invalid(span.clone(), key, message));
        let text = match value.get_ref() {
            Value::String(text) => text,
            Value::Integer(n) => {
                return fail(format!(
                    "{p}{key} {written} has no unit; write e.g. \"{n}s\" or \"{n}ms\""
                ));
            }
            _ => return Err(self.wrong_type(value, p, key, "a duration such as \"2s\"")),
        };
        let Ok(timeout) = humantime::parse_duration(text) else {
            return fail(format!(
                "{p}{key} {written} is not a duration; use e.g. \"500ms\", \"2s\" or \"1m\""
            ));
        };
        if timeout.is_zero() {
            return fail(format!("{p}{key} {written} must be greater than zero"));
        }
        if timeout > MAX_TIMEOUT {
            return fail(format!(
                "{p}{key} {written} is above the maximum of {}",
                humantime::format_duration(MAX_TIMEOUT)
            ));
        }
        if !timeout.subsec_nanos().is_multiple_of(1_000_000) {
            return fail(format!(
                "{p}{key} {written} is finer than a millisecond; use whole milliseconds"
            ));
        }
        Ok(timeout)
    }

    /// A whole number from `min` to `max` for `key`.
    pub(super) fn integer(
        &self,
        value: &Spanned<Value>,
        p: &str,
        key: &'static str,
        min: u32,
        max: u32,
    ) -> Result<u32, ManifestError> {
        let Value::Integer(n) = value.get_ref() else {
            return Err(self.wrong_type(value, p, key, "an integer"));
        };
        u32::try_from(*n)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                self.invalid(
                    value.span(),
                    key,
                    format!("{p}{key} {n} is out of range; use an integer from {min} to {max}"),
                )
            })
    }

    /// `allowed_outbound = ["https://api.example.com", …]`.
    pub(super) fn allowed_outbound(
        &self,
        value: &Spanned<Value>,
        p: &str,
    ) -> Result<Vec<OutboundRule>, ManifestError> {
        let key = "allowed_outbound";
        let Value::Array(items) = value.get_ref() else {
            return Err(self.wrong_type(value, p, key, "an array of strings"));
        };
        let mut patterns = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::String(pattern) = item else {
                let message = format!("{p}{key}[{i}] must be a string, not {}", item.type_str());
                return Err(self.invalid(value.span(), key, message));
            };
            let rule = OutboundRule::parse(pattern).map_err(|why| {
                let message =
                    format!("{p}{key}[{i}] {pattern:?} is not an outbound pattern: {why}");
                self.invalid(value.span(), key, message)
            })?;
            patterns.push(rule);
        }
        Ok(patterns)
    }

    pub(super) fn env(
        &self,
        env: &Spanned<RawEnv>,
        p: &str,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let mut vars = BTreeMap::new();
        for (key, value) in &env.get_ref().0 {
            let name = key.get_ref();
            let problem = if name.is_empty() {
                Some("an empty variable name")
            } else if name.contains('=') {
                Some("'=' in a variable name")
            } else if name.contains('\0') {
                Some("a NUL character in a variable name")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(self.invalid(
                    key.span(),
                    "env",
                    format!("{p}env has {problem} ({name:?})"),
                ));
            }
            let Value::String(text) = value.get_ref() else {
                let message = format!(
                    "{p}env variable {name} must be a string (quote it), not {} ({})",
                    with_article(value.get_ref().type_str()),
                    self.written(&value.span())
                );
                return Err(self.invalid(value.span(), "env", message));
            };
            if text.contains('\0') {
                return Err(self.invalid(
                    value.span(),
                    "env",
                    format!("{p}env variable {name} has a NUL character in its value"),
                ));
            }
            vars.insert(name.clone(), text.clone());
        }
        Ok(vars)
    }
}

/// "an integer", "a string": for messages about a value of the wrong type.
pub(super) fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}
