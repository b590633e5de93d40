//! An order event, read and turned into the confirmed record. No WASI here.

use serde_json::{Value, json};
use shop_common::text::{id_field, kind};

/// The confirmed record of the order in event `body` (as `checkout`
/// published it), delivered as event `event_id`; or why it is not an order.
pub fn confirm(body: &[u8], event_id: Option<&str>) -> Result<(String, Value), String> {
    let mut order: Value =
        serde_json::from_slice(body).map_err(|err| format!("the event is not JSON: {err}"))?;
    if !order.is_object() {
        return Err(format!(
            "the event must be an order object, not {}",
            kind(&order)
        ));
    }
    let id = id_field(&order, "order", "order")?;
    if !order["items"].is_array() || !order["total_cents"].is_u64() {
        return Err(format!("order {id} has no items or total_cents"));
    }
    order["status"] = json!("confirmed");
    order["event"] = json!(event_id);
    Ok((id, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_confirmed() {
        let body = br#"{"order":"o-1","status":"placed","items":[{"sku":"mug","quantity":1}],"total_cents":1250}"#;
        let (id, record) = confirm(body, Some("o-1")).unwrap();
        assert_eq!(id, "o-1");
        assert_eq!(record["status"], "confirmed");
        assert_eq!(record["event"], "o-1");
        assert_eq!(record["total_cents"], 1250);
    }

    #[test]
    fn other_events_are_refused() {
        assert!(confirm(b"{", None).unwrap_err().contains("not JSON"));
        assert!(confirm(b"[]", None).unwrap_err().contains("not an array"));
        assert_eq!(
            confirm(br#"{"items":[]}"#, None).unwrap_err(),
            "order is missing"
        );
        assert!(
            confirm(br#"{"order":"o-1"}"#, None)
                .unwrap_err()
                .contains("no items")
        );
    }
}
