//! The capability grants of a `[[function]]`: `keyvalue`, `config` and
//! `secrets`. Names are checked here so the node can use them as storage
//! keys as they are.

use std::collections::BTreeMap;

use toml::{Spanned, Value};

use super::Source;
use super::values::with_article;
use crate::error::ManifestError;

/// Most buckets, config values or secrets one function may name.
pub const MAX_GRANTS: usize = 64;
/// Longest config value, in bytes.
pub const MAX_CONFIG_VALUE: usize = 64 * 1024;

/// Accepted bucket names, appended to every bucket-name error.
const BUCKET_RULE: &str = "bucket names are 1-64 characters of ASCII letters, digits, '-', '_' and '.', starting with a letter or digit";
/// Accepted config keys and secret names, appended to their errors.
pub const CONFIG_KEY_RULE: &str = "config keys and secret names are 1-128 characters of ASCII letters, digits, '-', '_' and '.', starting with a letter or digit";

fn is_name(name: &str, max: usize) -> bool {
    name.len() <= max
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A bucket name the node accepts.
pub fn valid_bucket_name(name: &str) -> bool {
    is_name(name, 64)
}

/// A config key or secret name the node accepts.
pub fn valid_config_key(name: &str) -> bool {
    is_name(name, 128)
}

impl Source<'_> {
    /// A list of unique names, each passing `valid`.
    fn names(
        &self,
        value: &Spanned<Value>,
        p: &str,
        key: &str,
        valid: fn(&str) -> bool,
        rule: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let Value::Array(items) = value.get_ref() else {
            return Err(self.wrong_type(value, p, key, "an array of strings"));
        };
        if items.len() > MAX_GRANTS {
            let message = format!(
                "{p}{key} names {} entries; at most {MAX_GRANTS} are allowed",
                items.len()
            );
            return Err(self.invalid(value.span(), key, message));
        }
        let mut names: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::String(name) = item else {
                let message = format!(
                    "{p}{key}[{i}] must be a string, not {}",
                    with_article(item.type_str())
                );
                return Err(self.invalid(value.span(), key, message));
            };
            if !valid(name) {
                let message = format!("{p}{key}[{i}] {name:?} is not a valid name: {rule}");
                return Err(self.invalid(value.span(), key, message));
            }
            if names.contains(name) {
                let message = format!("{p}{key} names {name:?} twice");
                return Err(self.invalid(value.span(), key, message));
            }
            names.push(name.clone());
        }
        Ok(names)
    }

    /// `keyvalue = ["default", "sessions"]`: the buckets the function may open.
    pub(super) fn keyvalue(
        &self,
        value: &Spanned<Value>,
        p: &str,
    ) -> Result<Vec<String>, ManifestError> {
        self.names(value, p, "keyvalue", valid_bucket_name, BUCKET_RULE)
    }

    /// `secrets = ["stripe-key"]`: the app's secrets the function may read.
    pub(super) fn secrets(
        &self,
        value: &Spanned<Value>,
        p: &str,
    ) -> Result<Vec<String>, ManifestError> {
        self.names(value, p, "secrets", valid_config_key, CONFIG_KEY_RULE)
    }

    /// `config = { currency = "EUR" }`: values read through `wasi:config`.
    /// A secret's value does not belong here, where anyone who reads the
    /// manifest sees it: `secrets` exists for that.
    pub(super) fn config(
        &self,
        value: &Spanned<Value>,
        p: &str,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let key = "config";
        let Value::Table(table) = value.get_ref() else {
            return Err(self.wrong_type(
                value,
                p,
                key,
                "a table of strings, e.g. config = { currency = \"EUR\" }",
            ));
        };
        if table.len() > MAX_GRANTS {
            let message = format!(
                "{p}config has {} keys; at most {MAX_GRANTS} are allowed",
                table.len()
            );
            return Err(self.invalid(value.span(), key, message));
        }
        let mut values = BTreeMap::new();
        for (name, item) in table {
            if !valid_config_key(name) {
                let message =
                    format!("{p}config key {name:?} is not a valid name: {CONFIG_KEY_RULE}");
                return Err(self.invalid(value.span(), key, message));
            }
            let Value::String(text) = item else {
                let message = format!(
                    "{p}config value {name} must be a string (quote it), not {}",
                    with_article(item.type_str())
                );
                return Err(self.invalid(value.span(), key, message));
            };
            if text.len() > MAX_CONFIG_VALUE {
                let message = format!(
                    "{p}config value {name} has {} bytes; at most {MAX_CONFIG_VALUE} are allowed",
                    text.len()
                );
                return Err(self.invalid(value.span(), key, message));
            }
            values.insert(name.clone(), text.clone());
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert!(valid_bucket_name("default"));
        assert!(valid_bucket_name("Sessions.v2_a-b"));
        assert!(!valid_bucket_name(""));
        assert!(!valid_bucket_name("-x"));
        assert!(!valid_bucket_name("a/b"));
        assert!(!valid_bucket_name("a:b"));
        assert!(!valid_bucket_name(&"a".repeat(65)));
        assert!(valid_config_key(&"a".repeat(128)));
        assert!(!valid_config_key(&"a".repeat(129)));
    }
}
