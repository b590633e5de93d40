//! Checks and JSON shapes shared by the shop's functions. No WASI here.

use serde_json::{Value, json};

/// Longest SKU or order id, in bytes. Both end up in key-value keys, which
/// the node limits to 256 bytes.
pub const MAX_ID_BYTES: usize = 64;

/// Whether `id` can name a product (SKU) or an order: 1 to 64 of
/// `A-Z a-z 0-9 - _ .`, so it is safe in a URL path and a key-value key.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why `id` is not a valid SKU or order id (`what` names it), if it is not.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(format!(
            "{what} {id:?} is not valid: use 1 to {MAX_ID_BYTES} of A-Z a-z 0-9 - _ ."
        ))
    }
}

/// The body of every error answer: `{"error":{"code":…,"message":…}}`.
pub fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

/// The `message` of an error answer's body, if it has one (to pass on what
/// another function said).
pub fn error_message(body: &Value) -> Option<&str> {
    body["error"]["message"].as_str()
}

/// "a string", "an array", …: for messages about a value of the wrong type.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value of `name` in a query string (`a=1&b=2`), undecoded.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A quantity: a whole number in `1..=max`, or why not (naming the field
/// as `at`).
pub fn quantity(value: Option<&Value>, at: &str, max: u64) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{at} is missing"))?;
    match value.as_u64() {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ if value.is_number() => Err(format!(
            "{at} is {value}; it must be a whole number from 1 to {max}"
        )),
        _ => Err(format!(
            "{at} must be a whole number from 1 to {max}, not {}",
            kind(value)
        )),
    }
}

/// Field `name` of `object` as a valid SKU or order id, or why not.
pub fn id_field(object: &Value, name: &str, at: &str) -> Result<String, String> {
    match object.get(name) {
        None | Some(Value::Null) => Err(format!("{at} is missing")),
        Some(Value::String(id)) => check_id(at, id).map(|()| id.clone()),
        Some(other) => Err(format!("{at} must be a string, not {}", kind(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_plain() {
        assert!(valid_id("mug-stratus"));
        assert!(valid_id("o_1.2"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(valid_id(&"x".repeat(64)));
        assert!(check_id("sku", "a/b").unwrap_err().contains("sku \"a/b\""));
    }

    #[test]
    fn query_params_are_found_by_name() {
        assert_eq!(query_param("quantity=3", "quantity"), Some("3"));
        assert_eq!(query_param("a=1&quantity=", "quantity"), Some(""));
        assert_eq!(query_param("flag&b=2", "flag"), Some(""));
        assert_eq!(query_param("a=1", "quantity"), None);
        assert_eq!(query_param("", "quantity"), None);
    }

    #[test]
    fn quantities_are_whole_and_bounded() {
        let q = |v: Value| quantity(Some(&v), "items[0].quantity", 10);
        assert_eq!(q(json!(3)), Ok(3));
        assert_eq!(q(json!(10)), Ok(10));
        assert!(q(json!(0)).unwrap_err().contains("is 0"));
        assert!(q(json!(11)).unwrap_err().contains("from 1 to 10"));
        assert!(q(json!(1.5)).unwrap_err().contains("is 1.5"));
        assert!(q(json!(-1)).unwrap_err().contains("is -1"));
        assert!(q(json!("2")).unwrap_err().contains("not a string"));
        assert_eq!(
            quantity(None, "quantity", 10),
            Err("quantity is missing".into())
        );
    }

    #[test]
    fn id_fields_name_what_is_wrong() {
        let body = json!({"order": "o-1", "sku": 7, "bad": "a b"});
        assert_eq!(id_field(&body, "order", "order"), Ok("o-1".into()));
        assert_eq!(
            id_field(&body, "sku", "sku"),
            Err("sku must be a string, not a number".into())
        );
        assert!(
            id_field(&body, "bad", "x")
                .unwrap_err()
                .contains("not valid")
        );
        assert_eq!(
            id_field(&body, "none", "items[2].sku"),
            Err("items[2].sku is missing".into())
        );
    }
}
