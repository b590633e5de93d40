//! The W3C Trace Context (level 1) of a request, read strictly: the one
//! grammar for what an invocation continues and what an event keeps.
//!
//! An event keeps the trace context of whoever published it (the
//! CloudEvents distributed-tracing extension's `traceparent` and
//! `tracestate`), so the invocation that handles it, later and perhaps on
//! another node, continues the publisher's trace. What a publisher sends
//! is stored and later handed to a function as headers, so only values
//! that follow the specification are kept: anything else is dropped, and
//! the event is published as one without a trace context, never refused
//! (a tracing header must not decide whether an event is accepted).
//!
//! Only version `00` of `traceparent` is kept. The specification lets a
//! receiver read a later version by its first 55 characters, but what
//! follows them is not yet defined, and this value is passed on as it
//! is: one that cannot be checked whole is not passed on. Such an event
//! starts a trace of its own, as one published without a context does.

use http::{HeaderMap, HeaderValue};

/// `version-traceid-parentid-flags` at version `00`: 2 + 1 + 32 + 1 + 16 + 1 + 2.
const TRACEPARENT_LEN: usize = 55;

/// The most of `tracestate` kept: the specification's limit for what a
/// vendor must propagate, and a bound on what a publisher can make every
/// delivery of its event carry.
const TRACESTATE_MAX: usize = 512;

/// The request's `traceparent` and `tracestate`, each `None` unless valid.
///
/// `traceparent` must be one header whose value is exactly
/// `00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>`, the trace
/// and parent ids not all zeros. `tracestate` is kept only with a valid
/// `traceparent` (the specification: a receiver that cannot read
/// `traceparent` must not read `tracestate`); several header lines are one
/// list, joined with `,`; it is dropped when it is longer than 512 bytes or
/// holds anything but visible ASCII, space and tab.
pub fn trace_context(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let mut parents = headers.get_all("traceparent").iter();
    // Two values would leave which trace the event belongs to unknown.
    let (Some(parent), None) = (parents.next(), parents.next()) else {
        return (None, None);
    };
    let Some(parent) = parent
        .to_str()
        .ok()
        .filter(|value| valid_traceparent(value))
    else {
        return (None, None);
    };
    (Some(parent.to_owned()), tracestate(headers))
}

/// Whether `value` is a version `00` `traceparent`.
fn valid_traceparent(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != TRACEPARENT_LEN {
        return false;
    }
    let [version, trace_id, parent_id, flags] =
        [&bytes[..2], &bytes[3..35], &bytes[36..52], &bytes[53..]];
    let dashes = [bytes[2], bytes[35], bytes[52]] == [b'-'; 3];
    dashes
        && version == b"00"
        && [trace_id, parent_id, flags]
            .iter()
            .all(|part| lower_hex(part))
        && !all_zeros(trace_id)
        && !all_zeros(parent_id)
}

fn lower_hex(part: &[u8]) -> bool {
    part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn all_zeros(part: &[u8]) -> bool {
    part.iter().all(|&b| b == b'0')
}

/// The request's `tracestate` lines as one list, if there is a valid one.
fn tracestate(headers: &HeaderMap) -> Option<String> {
    let mut joined = String::new();
    for line in headers.get_all("tracestate") {
        // Bytes beyond ASCII (which a header may hold) are no tracestate.
        let line = line.to_str().ok()?.trim_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        let comma = usize::from(!joined.is_empty());
        // Checked before copying, so a hostile request's many or long
        // lines are not gathered first.
        if joined.len() + comma + line.len() > TRACESTATE_MAX {
            return None;
        }
        if comma == 1 {
            joined.push(',');
        }
        joined.push_str(line);
    }
    valid_tracestate(&joined).then_some(joined)
}

/// Whether `value` may be kept as `tracestate`: not empty, at most 512
/// bytes, visible ASCII, space and tab only, and a header value (it is
/// handed to functions as one).
fn valid_tracestate(value: &str) -> bool {
    let allowed = |c: char| c.is_ascii_graphic() || c == ' ' || c == '\t';
    !value.is_empty()
        && value.len() <= TRACESTATE_MAX
        && value.chars().all(allowed)
        && HeaderValue::from_str(value).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_valid_context_is_kept_as_sent() {
        let got = trace_context(&headers(&[
            ("traceparent", PARENT.as_bytes()),
            ("tracestate", b"rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"),
        ]));
        assert_eq!(
            got,
            (
                Some(PARENT.to_owned()),
                Some("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE".to_owned())
            )
        );
        // Without tracestate, and with any flags (unknown ones are kept).
        let flags = PARENT.replace("-01", "-ff");
        let got = trace_context(&headers(&[("traceparent", flags.as_bytes())]));
        assert_eq!(got, (Some(flags), None));
    }

    #[test]
    fn no_traceparent_is_no_context_whatever_tracestate_says() {
        assert_eq!(trace_context(&HeaderMap::new()), (None, None));
        let got = trace_context(&headers(&[("tracestate", b"rojo=1")]));
        assert_eq!(got, (None, None));
    }

    #[test]
    fn a_malformed_traceparent_is_dropped_with_its_tracestate() {
        let hostile = [
            // Uppercase hex.
            PARENT.to_uppercase(),
            PARENT.replace("4bf92f", "4BF92F"),
            // All-zero ids.
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", "0".repeat(16)),
            // Wrong lengths: short, long, a longer id, a version-00 tail.
            PARENT[..54].to_owned(),
            format!("{PARENT}0"),
            format!("{PARENT}-what"),
            "00-4bf92f3577b34da6a3ce929d0e0e47360-0f067aa0ba902b7-01".to_owned(),
            // The forbidden version, and a later one (not kept, see above).
            PARENT.replacen("00", "ff", 1),
            PARENT.replacen("00", "01", 1),
            // Not hex, other separators, whitespace, empty.
            PARENT.replace("4bf92f", "4bg92f"),
            PARENT.replace('-', "_"),
            format!(" {}", &PARENT[1..]),
            String::new(),
        ];
        for parent in hostile {
            let got = trace_context(&headers(&[
                ("traceparent", parent.as_bytes()),
                ("tracestate", b"rojo=1"),
            ]));
            assert_eq!(got, (None, None), "{parent:?}");
        }
        // Not even text (obs-text bytes a header may hold).
        let got = trace_context(&headers(&[(
            "traceparent",
            b"00-4bf92f3577b34da6a3ce929d0e0e47\xe9-00f067aa0ba902b7-01",
        )]));
        assert_eq!(got, (None, None));
        // Two traceparents: which one is meant is unknown.
        let got = trace_context(&headers(&[
            ("traceparent", PARENT.as_bytes()),
            ("traceparent", PARENT.as_bytes()),
        ]));
        assert_eq!(got, (None, None));
    }

    #[test]
    fn control_characters_are_never_kept() {
        // No header map holds them; the checks refuse them all the same.
        for bad in ["\n", "\r\n", "\x00", "\x01", "\x1b", "\x7f"] {
            let parent = format!("{}{bad}", &PARENT[..55 - bad.len()]);
            assert!(!valid_traceparent(&parent), "{parent:?}");
            assert!(!valid_tracestate(&format!("rojo=1{bad}")), "{bad:?}");
        }
        assert!(!valid_tracestate("rojo=é"));
        assert!(valid_tracestate("rojo=1,\tcongo=2"));
    }

    #[test]
    fn tracestate_lines_are_one_list_within_its_limit() {
        let with = |states: &[&[u8]]| {
            let mut pairs: Vec<(&str, &[u8])> = vec![("traceparent", PARENT.as_bytes())];
            pairs.extend(states.iter().map(|s| ("tracestate", *s)));
            trace_context(&headers(&pairs)).1
        };
        assert_eq!(
            with(&[b"rojo=1", b"", b" congo=2\t"]).as_deref(),
            Some("rojo=1,congo=2")
        );
        let at_limit = format!("a={}", "x".repeat(TRACESTATE_MAX - 2));
        assert_eq!(with(&[at_limit.as_bytes()]), Some(at_limit.clone()));
        // One byte over, in one line or across two.
        let over = format!("{at_limit}y");
        assert_eq!(with(&[over.as_bytes()]), None);
        assert_eq!(with(&[at_limit.as_bytes(), b"b=1"]), None);
        // 10 KB, in one line or in many.
        let huge = format!("a={}", "x".repeat(10 * 1024));
        assert_eq!(with(&[huge.as_bytes()]), None);
        let lines: Vec<&[u8]> = (0..2048).map(|_| &b"k=v"[..]).collect();
        assert_eq!(with(&lines), None);
        // Bytes beyond ASCII; blank is none.
        assert_eq!(with(&[b"rojo=\xff"]), None);
        assert_eq!(with(&[b"  "]), None);
        // The traceparent is kept whatever happens to tracestate.
        let got = trace_context(&headers(&[
            ("traceparent", PARENT.as_bytes()),
            ("tracestate", huge.as_bytes()),
        ]));
        assert_eq!(got, (Some(PARENT.to_owned()), None));
    }
}
