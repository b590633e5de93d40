//! `allowed_outbound`: the hosts a function may call over HTTP. Outbound
//! requests are denied unless one pattern allows them.
//!
//! A pattern is `scheme://host[:port]`: the scheme `http` or `https`; the
//! host a name, an IP address, or `*.` and a domain (any subdomain, not the
//! domain itself); the port a number or `*`, and when absent the scheme's
//! own (80 or 443), as a URL means it.
//!
//! Where a name resolves is checked when the request is sent (the runtime
//! refuses loopback, private and link-local addresses unless the node runs
//! with `--outbound-allow-private`); only a pattern that is an IP address
//! itself ([`OutboundRule::ip_literal`]) reaches such an address without it.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One parsed pattern, with the text it was parsed from: that text is what
/// the stored spec keeps and what messages show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    pattern: String,
    https: bool,
    host: HostPattern,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Subdomains(String),
}

impl OutboundRule {
    /// Parses a pattern, saying what is wrong with a bad one.
    pub fn parse(pattern: &str) -> Result<OutboundRule, String> {
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or("it has no scheme; write e.g. \"https://api.example.com\"")?;
        let https = match scheme {
            "https" => true,
            "http" => false,
            other => return Err(format!("the scheme must be http or https, not {other:?}")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(
                "a pattern names a scheme, host and port only, no path, query or user".into(),
            );
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, None),
            Some((host, port)) => {
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("the port {port:?} is not a port number or `*`"))?;
                (host, Some(port))
            }
            None => (rest, Some(if https { 443 } else { 80 })),
        };
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(domain) if valid_host(domain) => HostPattern::Subdomains(format!(".{domain}")),
            None if valid_host(&host) => HostPattern::Exact(host),
            _ => {
                return Err(format!(
                    "{host:?} is not a host name; use a name, an IP address or `*.` and a domain"
                ));
            }
        };
        Ok(OutboundRule {
            pattern: pattern.to_owned(),
            https,
            host,
            port,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The IP address this pattern names, when its host is one written out
    /// (`http://127.0.0.1:8080`) rather than a name or a wildcard: the
    /// operator who wrote it meant that address, private or not.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match &self.host {
            HostPattern::Exact(host) => host.parse().ok(),
            HostPattern::Subdomains(_) => None,
        }
    }

    /// Whether a request to `scheme://host:port` is allowed (`port` as the
    /// request would connect: the scheme's default when it names none).
    pub fn allows(&self, https: bool, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.https == https
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostPattern::Exact(exact) => *exact == host,
                HostPattern::Subdomains(suffix) => {
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                }
            }
    }
}

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl Serialize for OutboundRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.pattern)
    }
}

impl<'de> Deserialize<'de> for OutboundRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        OutboundRule::parse(&pattern).map_err(|why| {
            serde::de::Error::custom(format!("{pattern:?} is not an outbound pattern: {why}"))
        })
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::OutboundRule;

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let exact = OutboundRule::parse("https://api.example.com").unwrap();
        assert!(exact.allows(true, "API.example.com", 443));
        assert!(!exact.allows(false, "api.example.com", 80));
        assert!(!exact.allows(true, "api.example.com", 8443));
        let wild = OutboundRule::parse("http://*.example.com:*").unwrap();
        assert!(wild.allows(false, "a.b.example.com", 8080));
        assert!(
            !wild.allows(false, "example.com", 80),
            "the domain itself is not a subdomain"
        );
        assert!(!wild.allows(false, "badexample.com", 80));
        let ip = OutboundRule::parse("http://127.0.0.1:8080/").unwrap();
        assert!(ip.allows(false, "127.0.0.1", 8080));
    }

    #[test]
    fn only_a_written_out_address_is_an_ip_literal() {
        let literal = OutboundRule::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(literal.ip_literal(), Some([127, 0, 0, 1].into()));
        for pattern in [
            "http://localhost:*",
            "http://*.0.0.1:*",
            "https://api.example.com",
            // Not dotted-quad, so not a literal: resolvers may still read
            // it as 127.0.0.1, which is why the address is checked after
            // resolution.
            "http://2130706433",
        ] {
            let rule = OutboundRule::parse(pattern).unwrap();
            assert_eq!(rule.ip_literal(), None, "{pattern}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        for (pattern, why) in [
            (
                "api.example.com",
                "it has no scheme; write e.g. \"https://api.example.com\"",
            ),
            (
                "ftp://x.org",
                "the scheme must be http or https, not \"ftp\"",
            ),
            (
                "https://x.org/path",
                "a pattern names a scheme, host and port only, no path, query or user",
            ),
            (
                "https://x.org:99999",
                "the port \"99999\" is not a port number or `*`",
            ),
            (
                "https://*",
                "\"*\" is not a host name; use a name, an IP address or `*.` and a domain",
            ),
            (
                "https://a..b",
                "\"a..b\" is not a host name; use a name, an IP address or `*.` and a domain",
            ),
        ] {
            assert_eq!(OutboundRule::parse(pattern).unwrap_err(), why, "{pattern}");
        }
    }
}
