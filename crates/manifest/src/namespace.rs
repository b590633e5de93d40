//! Namespaces: the teams sharing one platform.
//!
//! Every app belongs to one namespace, and everything an app owns — its
//! versions, key-value buckets, queues, secrets, logs, usage and dead
//! letters — is kept under the app's *key*, which names the namespace too:
//! `<namespace>/<app>`. The stores, the live set and the ledger see only
//! keys, so two namespaces' apps of one name are two apps, and nothing an
//! app owns can be reached through a neighbour's name.
//!
//! The namespace `default` keys its apps by their name alone. That is how
//! apps were keyed before namespaces existed, so a node's existing data is
//! already the `default` namespace's, with nothing rewritten (sealed secrets
//! name their app in their associated data, so rewriting them would mean
//! re-encrypting every one).
//!
//! A key is made only from a checked namespace and a checked app name
//! ([`Namespace::app_key`]), both of which exclude `/`: an app name that
//! arrives with a `/` in it (a percent-encoded path segment, a query value)
//! is refused, never taken as another namespace's key.

use std::fmt;
use std::sync::Arc;

use crate::validate::{NAME_RULE, valid_name};

/// The separator between a namespace and an app name in a key; excluded
/// from both by [`NAME_RULE`].
const SEPARATOR: char = '/';

/// A namespace whose name was checked ([`NAME_RULE`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Arc<str>);

/// A namespace or app name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("\"{0}\" is not a namespace name ({NAME_RULE})")]
    Namespace(String),
    #[error("\"{0}\" is not an app name ({NAME_RULE})")]
    App(String),
}

impl Namespace {
    /// The namespace of apps deployed without naming one, and of every app
    /// deployed before namespaces existed.
    pub const DEFAULT: &'static str = "default";

    pub fn new(name: &str) -> Result<Namespace, NameError> {
        if valid_name(name) {
            Ok(Namespace(name.into()))
        } else {
            Err(NameError::Namespace(shown(name)))
        }
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        &*self.0 == Self::DEFAULT
    }

    /// The key of this namespace's app `app`, once `app` is checked to be
    /// an app name.
    pub fn app_key(&self, app: &str) -> Result<String, NameError> {
        if !valid_name(app) {
            return Err(NameError::App(shown(app)));
        }
        Ok(if self.is_default() {
            app.to_owned()
        } else {
            format!("{}{SEPARATOR}{app}", self.0)
        })
    }

    /// Whether the app with key `key` is this namespace's.
    pub fn owns(&self, key: &str) -> bool {
        split_key(key).0 == &*self.0
    }

    /// The namespace of the app with key `key`.
    pub fn of_key(key: &str) -> Namespace {
        Namespace(split_key(key).0.into())
    }
}

/// A refused name as an error shows it: whole when short, else its start,
/// so a hostile kilobyte of junk is not echoed back.
fn shown(name: &str) -> String {
    const SHOWN: usize = 64;
    match name.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

/// An app key's namespace and app name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once(SEPARATOR)
        .unwrap_or((Namespace::DEFAULT, key))
}

/// Whether `key` is an app key: an app name, or a namespace and an app
/// name, both following [`NAME_RULE`]. (`default/x` is not: that app's key
/// is `x`, and one app has one key.)
pub fn valid_app_key(key: &str) -> bool {
    match key.split_once(SEPARATOR) {
        None => valid_name(key),
        Some((ns, app)) => ns != Namespace::DEFAULT && valid_name(ns) && valid_name(app),
    }
}

impl Default for Namespace {
    fn default() -> Namespace {
        Namespace(Self::DEFAULT.into())
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_keys_apps_by_their_name_alone() {
        let default = Namespace::default();
        assert_eq!(default.app_key("shop").unwrap(), "shop");
        assert!(default.owns("shop"));
        assert!(!default.owns("team-a/shop"));
        assert_eq!(Namespace::of_key("shop"), default);
    }

    #[test]
    fn other_namespaces_key_apps_by_both_names() {
        let team = Namespace::new("team-a").unwrap();
        let key = team.app_key("shop").unwrap();
        assert_eq!(key, "team-a/shop");
        assert!(team.owns(&key));
        assert!(!team.owns("shop"));
        assert!(!Namespace::new("team").unwrap().owns(&key));
        assert_eq!(split_key(&key), ("team-a", "shop"));
        assert_eq!(Namespace::of_key(&key), team);
    }

    #[test]
    fn a_name_carrying_another_key_is_refused() {
        let team = Namespace::new("team-a").unwrap();
        for bad in ["team-b/shop", "", "Shop", "shop/", "../x", "a b"] {
            assert_eq!(team.app_key(bad), Err(NameError::App(bad.into())), "{bad}");
        }
        let long = "x".repeat(1000);
        let shown = team.app_key(&long).unwrap_err().to_string();
        assert!(shown.len() < 200 && shown.contains("…"), "{shown}");
        for bad in ["", "Team", "a/b", "-x"] {
            assert!(Namespace::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_checked_whole() {
        for good in ["shop", "team-a/shop"] {
            assert!(valid_app_key(good), "{good}");
        }
        for bad in ["default/shop", "a/b/c", "/shop", "team-a/", "A/shop"] {
            assert!(!valid_app_key(bad), "{bad}");
        }
    }
}
