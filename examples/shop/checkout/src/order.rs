//! A checkout request and the order summary. No WASI here.

use serde_json::{Value, json};
use shop_common::text::{id_field, kind, quantity};

/// Most lines one order may have.
pub const MAX_ITEMS: usize = 50;
/// Most units of one SKU per order.
pub const MAX_QUANTITY: u64 = 1000;

/// A checkout request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub items: Vec<Item>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub sku: String,
    pub quantity: u64,
}

/// Reads `{"order":"o-1","items":[{"sku":"…","quantity":2}, …]}`, or says
/// what is wrong, naming the field (`items[1].quantity`).
pub fn parse(body: &Value) -> Result<Order, String> {
    if !body.is_object() {
        return Err(format!(
            "the body must be a JSON object such as \
             {{\"order\":\"o-1\",\"items\":[{{\"sku\":\"mug-stratus\",\"quantity\":2}}]}}, not {}",
            kind(body)
        ));
    }
    let id = id_field(body, "order", "order")?;
    let lines = match body.get("items") {
        Some(Value::Array(lines)) => lines,
        None | Some(Value::Null) => return Err("items is missing".into()),
        Some(other) => return Err(format!("items must be an array, not {}", kind(other))),
    };
    if lines.is_empty() || lines.len() > MAX_ITEMS {
        return Err(format!(
            "items has {} entries; an order has 1 to {MAX_ITEMS}",
            lines.len()
        ));
    }
    let mut items: Vec<Item> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if !line.is_object() {
            return Err(format!(
                "items[{i}] must be an object such as {{\"sku\":\"mug-stratus\",\"quantity\":2}}, \
                 not {}",
                kind(line)
            ));
        }
        let sku = id_field(line, "sku", &format!("items[{i}].sku"))?;
        let quantity = quantity(
            line.get("quantity"),
            &format!("items[{i}].quantity"),
            MAX_QUANTITY,
        )?;
        // Reservations are per order and SKU, so one line per SKU.
        if items.iter().any(|item| item.sku == sku) {
            return Err(format!(
                "items[{i}].sku {sku:?} is already in the order; send one line per SKU"
            ));
        }
        items.push(Item { sku, quantity });
    }
    Ok(Order { id, items })
}

impl Order {
    /// Whether `record` (a stored order summary) has the same items, in any
    /// order: a repeat of this checkout rather than another order.
    pub fn same_items(&self, record: &Value) -> bool {
        let Some(lines) = record["items"].as_array() else {
            return false;
        };
        lines.len() == self.items.len()
            && self.items.iter().all(|item| {
                lines.iter().any(|line| {
                    line["sku"] == item.sku.as_str() && line["quantity"] == item.quantity
                })
            })
    }

    /// The order summary (stored, published and answered) from the quote
    /// of each item (`pricing`'s answers, in item order).
    pub fn summary(&self, quotes: &[Value]) -> Result<Value, String> {
        let mut lines = Vec::with_capacity(self.items.len());
        let mut total: u64 = 0;
        let mut currency = None;
        for (item, quote) in self.items.iter().zip(quotes) {
            let (Some(unit), Some(line_total), Some(this_currency)) = (
                quote["unit_price_cents"].as_u64(),
                quote["total_cents"].as_u64(),
                quote["currency"].as_str(),
            ) else {
                return Err(format!("the quote for {} is incomplete: {quote}", item.sku));
            };
            if *currency.get_or_insert(this_currency) != this_currency {
                return Err(format!("the quotes mix currencies: {quote}"));
            }
            total += line_total;
            lines.push(json!({
                "sku": item.sku,
                "name": quote["name"],
                "quantity": item.quantity,
                "unit_price_cents": unit,
                "markup_percent": quote["markup_percent"],
                "total_cents": line_total,
            }));
        }
        if lines.len() != self.items.len() {
            return Err("a quote is missing".into());
        }
        Ok(json!({
            "order": self.id,
            "status": "placed",
            "currency": currency,
            "items": lines,
            "total_cents": total,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: Value) -> String {
        parse(&body).expect_err("accepted")
    }

    #[test]
    fn a_valid_order_is_parsed() {
        let order = parse(&json!({"order":"o-1","items":[
            {"sku":"mug-stratus","quantity":2},{"sku":"tee-black","quantity":1}]}))
        .unwrap();
        assert_eq!(order.id, "o-1");
        assert_eq!(
            order.items,
            vec![
                Item {
                    sku: "mug-stratus".into(),
                    quantity: 2
                },
                Item {
                    sku: "tee-black".into(),
                    quantity: 1
                },
            ]
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert!(error(json!([1])).contains("must be a JSON object"));
        assert_eq!(error(json!({"items":[]})), "order is missing");
        assert!(error(json!({"order":"a b","items":[]})).contains("order \"a b\" is not valid"));
        assert_eq!(error(json!({"order":"o-1"})), "items is missing");
        assert_eq!(
            error(json!({"order":"o-1","items":{}})),
            "items must be an array, not an object"
        );
        assert!(error(json!({"order":"o-1","items":[]})).contains("1 to 50"));
        assert!(
            error(json!({"order":"o-1","items":["mug"]})).contains("items[0] must be an object")
        );
        assert_eq!(
            error(json!({"order":"o-1","items":[{"sku":"mug","quantity":1},{"quantity":1}]})),
            "items[1].sku is missing"
        );
        assert!(
            error(json!({"order":"o-1","items":[{"sku":"mug","quantity":0}]}))
                .starts_with("items[0].quantity is 0")
        );
        assert!(
            error(json!({"order":"o-1","items":[{"sku":"mug"}]}))
                .starts_with("items[0].quantity is missing")
        );
        assert!(
            error(json!({"order":"o-1","items":[{"sku":"mug","quantity":1},{"sku":"mug","quantity":2}]}))
                .contains("one line per SKU")
        );
    }

    fn quote(unit: u64, quantity: u64, markup: u64) -> Value {
        json!({"name":"x","currency":"EUR","unit_price_cents":unit,
               "total_cents":unit * quantity,"markup_percent":markup})
    }

    #[test]
    fn the_summary_adds_the_lines() {
        let order = parse(&json!({"order":"o-1","items":[
            {"sku":"mug-stratus","quantity":2},{"sku":"sticker-pack","quantity":1}]}))
        .unwrap();
        let summary = order
            .summary(&[quote(1250, 2, 0), quote(600, 1, 20)])
            .unwrap();
        assert_eq!(summary["total_cents"], 3100);
        assert_eq!(summary["status"], "placed");
        assert_eq!(summary["currency"], "EUR");
        assert_eq!(summary["items"][1]["markup_percent"], 20);
        assert!(order.same_items(&summary));
        assert!(
            order.summary(&[quote(1250, 2, 0)]).is_err(),
            "a quote missing"
        );
        assert!(order.summary(&[quote(1250, 2, 0), json!({})]).is_err());

        let other = parse(&json!({"order":"o-1","items":[
            {"sku":"sticker-pack","quantity":1},{"sku":"mug-stratus","quantity":3}]}))
        .unwrap();
        assert!(!other.same_items(&summary));
        let reordered = parse(&json!({"order":"o-1","items":[
            {"sku":"sticker-pack","quantity":1},{"sku":"mug-stratus","quantity":2}]}))
        .unwrap();
        assert!(reordered.same_items(&summary));
    }
}
