//! How invocation ids and times are keyed on disk.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use stratus_sqlite::{from_unix_micros, unix_micros};

/// An invocation id as stored: a UUID's 16 bytes when the id is one in
/// simple form (as the gateway's are), its text bytes otherwise.
pub(crate) fn id_key(id: &str) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = id.as_bytes();
    if bytes.len() == 32 {
        let decoded: Option<Vec<u8>> = bytes
            .chunks(2)
            .map(|pair| Some(hex(pair[0])? << 4 | hex(pair[1])?))
            .collect();
        if let Some(decoded) = decoded {
            return decoded;
        }
    }
    bytes.to_vec()
}

/// The id back as text.
pub(crate) fn id_text(key: &[u8]) -> String {
    if key.len() == 16 {
        key.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        String::from_utf8_lossy(key).into_owned()
    }
}

/// The smallest UUIDv7 key of an invocation that arrived at or after `t`:
/// UUIDv7 begins with its 48-bit Unix millisecond timestamp.
pub(crate) fn time_key(t: SystemTime) -> Vec<u8> {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut key = ms.to_be_bytes()[2..].to_vec();
    key.resize(16, 0);
    key
}
