//! Prices: the low-stock policy and a quote. No WASI here.

use serde_json::{Value, json};

/// Most units one quote is for.
pub const MAX_QUANTITY: u64 = 1000;
/// Highest markup accepted from the config, in percent.
pub const MAX_MARKUP_PERCENT: u64 = 1000;

/// When and by how much a low stock raises the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// At or below this stock, the markup applies.
    pub threshold: u64,
    pub markup_percent: u64,
}

impl Policy {
    /// The policy from the config values `low_stock_threshold` and
    /// `low_stock_markup_percent` (none: not set). Without a threshold
    /// there is no markup; a markup without a threshold, or a value that is
    /// not a whole number, is a configuration error.
    pub fn from_config(
        threshold: Option<&str>,
        markup: Option<&str>,
    ) -> Result<Option<Policy>, String> {
        let number = |key: &str, text: &str, max: u64| {
            text.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    format!(
                        "config value {key} is {text:?}; it must be a whole number from 0 to {max}"
                    )
                })
        };
        match (threshold, markup) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(
                "config value low_stock_markup_percent is set but low_stock_threshold is not"
                    .to_string(),
            ),
            (Some(threshold), markup) => Ok(Some(Policy {
                threshold: number("low_stock_threshold", threshold, u64::MAX)?,
                markup_percent: match markup {
                    Some(markup) => number("low_stock_markup_percent", markup, MAX_MARKUP_PERCENT)?,
                    None => 0,
                },
            })),
        }
    }

    /// The markup, in percent, at `stock`.
    pub fn markup_at(&self, stock: u64) -> u64 {
        if stock <= self.threshold {
            self.markup_percent
        } else {
            0
        }
    }
}

/// `base` cents raised by `markup_percent`, rounded half up to a cent.
pub fn unit_price(base: u64, markup_percent: u64) -> u64 {
    (base * (100 + markup_percent) + 50) / 100
}

/// A price for `quantity` units of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub sku: String,
    pub name: String,
    pub currency: String,
    pub quantity: u64,
    pub base_price_cents: u64,
    pub unit_price_cents: u64,
    pub total_cents: u64,
    pub stock: u64,
    pub markup_percent: u64,
}

/// What the catalog says of a product (its `GET /shop/products/<sku>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub name: String,
    pub price_cents: u64,
    pub currency: String,
}

impl Product {
    /// Reads the catalog's answer, or says what is missing.
    pub fn from_json(body: &Value) -> Result<Product, String> {
        match (
            body["name"].as_str(),
            body["price_cents"].as_u64(),
            body["currency"].as_str(),
        ) {
            (Some(name), Some(price_cents), Some(currency)) => Ok(Product {
                name: name.to_string(),
                price_cents,
                currency: currency.to_string(),
            }),
            _ => Err(format!("no name, price_cents and currency in {body}")),
        }
    }
}

/// The quote for `quantity` of `product` at `stock` under `policy`.
pub fn quote(
    sku: &str,
    product: &Product,
    stock: u64,
    quantity: u64,
    policy: Option<Policy>,
) -> Quote {
    let markup_percent = policy.map_or(0, |policy| policy.markup_at(stock));
    let unit_price_cents = unit_price(product.price_cents, markup_percent);
    Quote {
        sku: sku.to_string(),
        name: product.name.clone(),
        currency: product.currency.clone(),
        quantity,
        base_price_cents: product.price_cents,
        unit_price_cents,
        total_cents: unit_price_cents * quantity,
        stock,
        markup_percent,
    }
}

impl Quote {
    pub fn to_json(&self) -> Value {
        json!({
            "sku": self.sku,
            "name": self.name,
            "currency": self.currency,
            "quantity": self.quantity,
            "base_price_cents": self.base_price_cents,
            "unit_price_cents": self.unit_price_cents,
            "total_cents": self.total_cents,
            "stock": self.stock,
            "markup_percent": self.markup_percent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mug() -> Product {
        Product {
            name: "Stratus mug".into(),
            price_cents: 1250,
            currency: "EUR".into(),
        }
    }

    #[test]
    fn the_policy_comes_from_the_config() {
        let policy = Policy::from_config(Some("5"), Some("20")).unwrap();
        assert_eq!(
            policy,
            Some(Policy {
                threshold: 5,
                markup_percent: 20
            })
        );
        assert_eq!(Policy::from_config(None, None), Ok(None));
        assert_eq!(
            Policy::from_config(Some("5"), None)
                .unwrap()
                .map(|p| p.markup_percent),
            Some(0)
        );
        assert!(
            Policy::from_config(None, Some("20"))
                .unwrap_err()
                .contains("low_stock_threshold")
        );
        assert!(
            Policy::from_config(Some("five"), Some("20"))
                .unwrap_err()
                .contains("low_stock_threshold is \"five\"")
        );
        assert!(Policy::from_config(Some("5"), Some("-3")).is_err());
        assert!(Policy::from_config(Some("5"), Some("1001")).is_err());
    }

    #[test]
    fn the_markup_applies_at_or_below_the_threshold() {
        let policy = Policy {
            threshold: 5,
            markup_percent: 20,
        };
        assert_eq!(policy.markup_at(6), 0);
        assert_eq!(policy.markup_at(5), 20);
        assert_eq!(policy.markup_at(0), 20);
    }

    #[test]
    fn prices_round_half_up_to_a_cent() {
        assert_eq!(unit_price(1250, 0), 1250);
        assert_eq!(unit_price(1250, 20), 1500);
        assert_eq!(unit_price(999, 15), 1149); // 1148.85
        assert_eq!(unit_price(10, 5), 11); // 10.5
    }

    #[test]
    fn a_quote_multiplies_the_unit_price() {
        let policy = Policy::from_config(Some("5"), Some("20")).unwrap();
        let plenty = quote("mug-stratus", &mug(), 10, 2, policy);
        assert_eq!(
            (
                plenty.unit_price_cents,
                plenty.total_cents,
                plenty.markup_percent
            ),
            (1250, 2500, 0)
        );
        let low = quote("mug-stratus", &mug(), 3, 2, policy);
        assert_eq!(
            (low.unit_price_cents, low.total_cents, low.markup_percent),
            (1500, 3000, 20)
        );
        assert_eq!(low.to_json()["base_price_cents"], 1250);
        assert_eq!(quote("mug-stratus", &mug(), 0, 1, None).markup_percent, 0);
    }

    #[test]
    fn the_catalog_answer_is_read() {
        let body =
            json!({"sku":"mug-stratus","name":"Stratus mug","price_cents":1250,"currency":"EUR"});
        assert_eq!(Product::from_json(&body), Ok(mug()));
        assert!(Product::from_json(&json!({"name":"x"})).is_err());
    }
}
