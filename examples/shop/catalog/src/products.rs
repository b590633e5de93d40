//! The catalog's data and its JSON. No WASI here.

use serde_json::{Value, json};

/// Every price is in cents of this currency.
pub const CURRENCY: &str = "EUR";

/// A product the shop sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub sku: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// The base price, before any markup `pricing` applies.
    pub price_cents: u64,
}

/// The catalog, in display order.
pub const PRODUCTS: &[Product] = &[
    Product {
        sku: "mug-stratus",
        name: "Stratus mug",
        description: "A 330 ml ceramic mug with the Stratus cloud.",
        price_cents: 1250,
    },
    Product {
        sku: "tee-black",
        name: "Black T-shirt",
        description: "Organic cotton, printed with `stratus deploy`.",
        price_cents: 2400,
    },
    Product {
        sku: "hoodie-grey",
        name: "Grey hoodie",
        description: "Warm enough for a cold start.",
        price_cents: 4900,
    },
    Product {
        sku: "sticker-pack",
        name: "Sticker pack",
        description: "Ten vinyl stickers for your laptop.",
        price_cents: 500,
    },
    Product {
        sku: "cap-navy",
        name: "Navy cap",
        description: "One size; adjustable strap.",
        price_cents: 1900,
    },
];

/// The product with `sku`, if the catalog has it.
pub fn find(sku: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|product| product.sku == sku)
}

impl Product {
    pub fn to_json(&self) -> Value {
        json!({
            "sku": self.sku,
            "name": self.name,
            "description": self.description,
            "price_cents": self.price_cents,
            "currency": CURRENCY,
        })
    }
}

/// The answer to `GET /shop/products`.
pub fn list_json() -> Value {
    let products: Vec<Value> = PRODUCTS.iter().map(Product::to_json).collect();
    json!({ "currency": CURRENCY, "products": products })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_unique_and_valid() {
        for (i, product) in PRODUCTS.iter().enumerate() {
            assert!(shop_common::text::valid_id(product.sku), "{}", product.sku);
            assert!(product.price_cents > 0, "{}", product.sku);
            assert!(
                PRODUCTS[i + 1..].iter().all(|p| p.sku != product.sku),
                "{} twice",
                product.sku
            );
        }
    }

    #[test]
    fn products_are_found_by_sku() {
        assert_eq!(find("mug-stratus").map(|p| p.price_cents), Some(1250));
        assert_eq!(find("nope"), None);
        let list = list_json();
        assert_eq!(
            list["products"].as_array().map(Vec::len),
            Some(PRODUCTS.len())
        );
        assert_eq!(list["products"][0]["sku"], "mug-stratus");
        assert_eq!(list["products"][0]["currency"], "EUR");
    }
}
