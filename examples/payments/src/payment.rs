//! The pure part of `payments`: the idempotency key, validation, the
//! deterministic transaction id and the (simulated) card processor. No WASI
//! here, so the unit tests run on the host:
//!
//! ```text
//! cargo test --manifest-path examples/Cargo.toml -p payments
//! ```

use serde_json::{Value, json};

/// Largest amount, in minor units (1 000 000.00 EUR; for JPY, which has no
/// minor unit, 100 000 000 yen).
pub const MAX_AMOUNT: u64 = 100_000_000;
/// Accepted currencies (ISO 4217 codes).
pub const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
/// Longest account id, in characters.
pub const MAX_ACCOUNT_CHARS: usize = 64;
/// Longest idempotency key, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// The account the simulated processor always declines.
pub const DECLINED_ACCOUNT: &str = "acc-declined";
/// The account for which the simulated processor is always unavailable.
pub const FLAKY_ACCOUNT: &str = "acc-flaky";

/// Why a payment was not charged; each kind is one HTTP status and
/// `{"error":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 400: no usable idempotency key.
    BadKey { code: &'static str, message: String },
    /// 422 `invalid_payment`: the body is not a valid payment.
    Invalid(String),
    /// 402 `card_declined`: the processor refused the charge. Stratus
    /// retries every non-2xx delivery, this one too, although a decline is
    /// not going to change by itself; it is not retried forever because the
    /// trigger's `max_attempts` (3) bounds the deliveries, after which the
    /// event is dead and kept in the dead-letter queue with this answer as
    /// its last error (`stratus dlq ls payments`), where an operator can
    /// look at it and redrive it (`stratus dlq redrive payments`) once the
    /// customer has sorted the card out. Answering 2xx would settle the
    /// event and lose that trail.
    Declined(String),
    /// 503 `processor_unavailable`: a transient failure; a later delivery
    /// may succeed. (No `retry-after`: Stratus takes a 503 with one for a
    /// busy function and redelivers without using an attempt.)
    Unavailable(String),
}

impl Failure {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadKey { .. } => 400,
            Self::Invalid(_) => 422,
            Self::Declined(_) => 402,
            Self::Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadKey { code, .. } => code,
            Self::Invalid(_) => "invalid_payment",
            Self::Declined(_) => "card_declined",
            Self::Unavailable(_) => "processor_unavailable",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::BadKey { message, .. }
            | Self::Invalid(message)
            | Self::Declined(message)
            | Self::Unavailable(message) => message,
        }
    }

    /// The error answer's body.
    pub fn to_json(&self) -> Value {
        json!({ "error": { "code": self.code(), "message": self.message() } })
    }
}

/// The idempotency key: the event's `ce-id` (the same on every delivery of
/// an event), or for a direct HTTP call the `idempotency-key` header. Blank
/// values count as absent.
pub fn idempotency_key(ce_id: Option<&[u8]>, header: Option<&[u8]>) -> Result<String, Failure> {
    fn present(value: Option<&[u8]>) -> Option<&[u8]> {
        value.filter(|v| !v.trim_ascii().is_empty())
    }
    let (name, raw) = match (present(ce_id), present(header)) {
        (Some(raw), _) => ("ce-id", raw),
        (None, Some(raw)) => ("idempotency-key", raw),
        (None, None) => {
            return Err(Failure::BadKey {
                code: "missing_idempotency_key",
                message: "an idempotency key is needed so that a retried payment is not \
                          charged twice: send an `idempotency-key` header (for example \
                          `idempotency-key: order-42`), or deliver the payment as an event, \
                          whose `ce-id` is the key"
                    .to_string(),
            });
        }
    };
    let bad = |why: String| Failure::BadKey {
        code: "invalid_idempotency_key",
        message: format!("the {name} header cannot be the idempotency key: {why}"),
    };
    let key = std::str::from_utf8(raw.trim_ascii())
        .map_err(|_| bad("it is not valid UTF-8".to_string()))?;
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(bad(format!("it is longer than {MAX_KEY_CHARS} characters")));
    }
    if key.chars().any(char::is_control) {
        return Err(bad("it has control characters".to_string()));
    }
    Ok(key.to_string())
}

/// A validated payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Minor units (cents); yen for JPY.
    pub amount: u64,
    pub currency: &'static str,
    pub account: String,
}

/// Parses `{"amount": 1250, "currency": "EUR", "account": "acc-1"}`.
/// Other fields are ignored.
pub fn parse_payment(body: &[u8]) -> Result<Payment, Failure> {
    const EXAMPLE: &str = r#"{"amount":1250,"currency":"EUR","account":"acc-1"}"#;
    let invalid = |message: String| Failure::Invalid(message);
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        invalid(format!(
            "the body is not valid JSON: {err}; send a payment such as {EXAMPLE}"
        ))
    })?;
    let Value::Object(fields) = value else {
        return Err(invalid(format!(
            "the body must be a JSON object such as {EXAMPLE}"
        )));
    };
    let field = |name: &str| {
        fields.get(name).filter(|v| !v.is_null()).ok_or_else(|| {
            invalid(format!(
                "{name} is missing; send a payment such as {EXAMPLE}"
            ))
        })
    };

    let amount = match field("amount")? {
        Value::Number(n) => match n.as_u64() {
            Some(0) => return Err(invalid("amount must be positive, not 0".to_string())),
            Some(amount) if amount <= MAX_AMOUNT => amount,
            Some(amount) => {
                return Err(invalid(format!(
                    "amount {amount} is above the limit of {MAX_AMOUNT} minor units"
                )));
            }
            None if n.is_i64() => {
                return Err(invalid(format!("amount must be positive, not {n}")));
            }
            None if n.as_f64().is_some_and(|f| f > MAX_AMOUNT as f64) => {
                return Err(invalid(format!(
                    "amount {n} is above the limit of {MAX_AMOUNT} minor units"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "amount must be a whole number of minor units (1250 for 12.50 EUR), not {n}"
                )));
            }
        },
        other => {
            return Err(invalid(format!(
                "amount must be a whole number of minor units (1250 for 12.50 EUR), not {other}"
            )));
        }
    };

    let currency = match field("currency")? {
        Value::String(code) => CURRENCIES
            .iter()
            .copied()
            .find(|c| c == code)
            .ok_or_else(|| {
                invalid(format!(
                    "currency {code:?} is not supported; use one of {}",
                    CURRENCIES.join(", ")
                ))
            })?,
        other => {
            return Err(invalid(format!(
                "currency must be a string, one of {}, not {other}",
                CURRENCIES.join(", ")
            )));
        }
    };

    let account = match field("account")? {
        Value::String(account) if valid_account(account) => account.clone(),
        other => {
            return Err(invalid(format!(
                "account {other} is not an account id; use 1 to {MAX_ACCOUNT_CHARS} \
                 of A-Z, a-z, 0-9, '-' and '_'"
            )));
        }
    };

    Ok(Payment {
        amount,
        currency,
        account,
    })
}

fn valid_account(account: &str) -> bool {
    (1..=MAX_ACCOUNT_CHARS).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 64-bit FNV-1a: a simple, stable (same on every platform and version)
/// hash. Not cryptographic, which an id derived from a key does not need.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The transaction id for an idempotency key: `txn-` and 16 hex digits of
/// its FNV-1a hash. Every delivery of the same event (same `ce-id`) gets the
/// same transaction, so the downstream processor sees a repeat as a repeat
/// and does not charge twice. (A real processor would also refuse a known
/// key arriving with a different amount or account.)
pub fn transaction_id(key: &str) -> String {
    format!("txn-{:016x}", fnv1a64(key.as_bytes()))
}

/// A completed charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub transaction: String,
    pub payment: Payment,
    pub idempotency_key: String,
}

/// Charges `payment` with the simulated processor: `acc-declined` is always
/// declined, `acc-flaky` always finds the processor unavailable, any other
/// account is charged.
pub fn charge(payment: Payment, key: &str) -> Result<Charge, Failure> {
    let transaction = transaction_id(key);
    match payment.account.as_str() {
        DECLINED_ACCOUNT => Err(Failure::Declined(format!(
            "the card of account {DECLINED_ACCOUNT} was declined for {} {} ({transaction})",
            payment.amount, payment.currency
        ))),
        FLAKY_ACCOUNT => Err(Failure::Unavailable(format!(
            "the payment processor is unavailable for account {FLAKY_ACCOUNT} ({transaction}); \
             try again later"
        ))),
        _ => Ok(Charge {
            transaction,
            payment,
            idempotency_key: key.to_string(),
        }),
    }
}

impl Charge {
    /// The 200 answer's body.
    pub fn to_json(&self) -> Value {
        json!({
            "transaction": self.transaction,
            "status": "charged",
            "amount": self.payment.amount,
            "currency": self.payment.currency,
            "account": self.payment.account,
            "idempotency_key": self.idempotency_key,
        })
    }

    /// `charged 1250 EUR to acc-1: txn-… (key order-42)`.
    pub fn log_line(&self) -> String {
        format!(
            "charged {} {} to {}: {} (key {})",
            self.payment.amount,
            self.payment.currency,
            self.payment.account,
            self.transaction,
            self.idempotency_key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(body: &str) -> Result<Payment, Failure> {
        parse_payment(body.as_bytes())
    }

    fn invalid(body: &str) -> String {
        match payment(body) {
            Err(Failure::Invalid(message)) => message,
            other => panic!("{body}: expected invalid_payment, got {other:?}"),
        }
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_transaction_is_derived_from_the_key_alone() {
        let txn = transaction_id("order-42");
        assert_eq!(txn, format!("txn-{:016x}", fnv1a64(b"order-42")));
        assert_eq!(txn.len(), 4 + 16);
        assert_eq!(transaction_id("order-42"), txn, "stable");
        assert_ne!(transaction_id("order-43"), txn);
        assert_eq!(transaction_id(""), "txn-cbf29ce484222325");
    }

    #[test]
    fn the_key_is_the_ce_id_else_the_idempotency_key_header() {
        assert_eq!(
            idempotency_key(Some(b"ev-1"), Some(b"order-42")),
            Ok("ev-1".into())
        );
        assert_eq!(
            idempotency_key(None, Some(b" order-42 ")),
            Ok("order-42".into())
        );
        assert_eq!(
            idempotency_key(Some(b"  "), Some(b"order-42")),
            Ok("order-42".into())
        );
    }

    #[test]
    fn no_key_is_a_400_that_says_one_is_needed() {
        let failure = idempotency_key(None, None).expect_err("no key");
        assert_eq!(failure.status(), 400);
        assert_eq!(failure.code(), "missing_idempotency_key");
        assert!(
            failure.message().contains("idempotency-key"),
            "{}",
            failure.message()
        );
        assert_eq!(idempotency_key(Some(b""), Some(b" ")), Err(failure));
    }

    #[test]
    fn unusable_keys_are_a_400() {
        let long = "k".repeat(MAX_KEY_CHARS + 1);
        for (raw, why) in [
            (&b"\xff\xfe"[..], "UTF-8"),
            (long.as_bytes(), "longer than 255"),
            (&b"a\x01b"[..], "control characters"),
        ] {
            let failure = idempotency_key(None, Some(raw)).expect_err(why);
            assert_eq!(
                (failure.status(), failure.code()),
                (400, "invalid_idempotency_key")
            );
            assert!(failure.message().contains(why), "{}", failure.message());
        }
        assert!(idempotency_key(None, Some("k".repeat(MAX_KEY_CHARS).as_bytes())).is_ok());
    }

    #[test]
    fn a_valid_payment_is_parsed() {
        assert_eq!(
            payment(r#"{"amount":1250,"currency":"EUR","account":"acc-1","note":"ignored"}"#),
            Ok(Payment {
                amount: 1250,
                currency: "EUR",
                account: "acc-1".into()
            })
        );
        let max = format!(r#"{{"amount":{MAX_AMOUNT},"currency":"JPY","account":"A_z-09"}}"#);
        assert_eq!(payment(&max).map(|p| p.amount), Ok(MAX_AMOUNT));
    }

    #[test]
    fn invalid_payments_say_what_is_wrong() {
        assert!(invalid("").contains("not valid JSON"));
        assert!(invalid("[1]").contains("must be a JSON object"));
        assert!(invalid(r#"{"currency":"EUR","account":"a"}"#).contains("amount is missing"));
        assert!(
            invalid(r#"{"amount":null,"currency":"EUR","account":"a"}"#)
                .contains("amount is missing")
        );
        assert!(
            invalid(r#"{"amount":0,"currency":"EUR","account":"a"}"#)
                .contains("amount must be positive, not 0")
        );
        assert!(
            invalid(r#"{"amount":-5,"currency":"EUR","account":"a"}"#)
                .contains("amount must be positive, not -5")
        );
        assert!(
            invalid(r#"{"amount":12.5,"currency":"EUR","account":"a"}"#)
                .contains("whole number of minor units")
        );
        assert!(
            invalid(r#"{"amount":"1250","currency":"EUR","account":"a"}"#).contains("whole number")
        );
        assert!(
            invalid(r#"{"amount":100000001,"currency":"EUR","account":"a"}"#)
                .contains("above the limit of 100000000")
        );
        assert!(
            invalid(r#"{"amount":1e30,"currency":"EUR","account":"a"}"#)
                .contains("above the limit")
        );
        assert!(
            invalid(r#"{"amount":1,"currency":"eur","account":"a"}"#)
                .contains(r#"currency "eur" is not supported; use one of EUR, USD, GBP, JPY"#)
        );
        assert!(
            invalid(r#"{"amount":1,"currency":978,"account":"a"}"#)
                .contains("currency must be a string")
        );
        assert!(invalid(r#"{"amount":1,"currency":"EUR"}"#).contains("account is missing"));
        assert!(
            invalid(r#"{"amount":1,"currency":"EUR","account":""}"#).contains("not an account id")
        );
        assert!(
            invalid(r#"{"amount":1,"currency":"EUR","account":"acc 1"}"#)
                .contains("not an account id")
        );
        assert!(
            invalid(r#"{"amount":1,"currency":"EUR","account":"acc/1"}"#)
                .contains("not an account id")
        );
        let long = format!(
            r#"{{"amount":1,"currency":"EUR","account":"{}"}}"#,
            "a".repeat(65)
        );
        assert!(invalid(&long).contains("not an account id"));
        let failure = payment("{}").expect_err("invalid");
        assert_eq!((failure.status(), failure.code()), (422, "invalid_payment"));
    }

    #[test]
    fn a_charge_answers_and_logs_with_its_transaction() {
        let charge = charge(
            payment(r#"{"amount":1250,"currency":"EUR","account":"acc-1"}"#).expect("valid"),
            "order-42",
        )
        .expect("charged");
        let txn = transaction_id("order-42");
        assert_eq!(
            charge.to_json(),
            json!({
                "transaction": txn,
                "status": "charged",
                "amount": 1250,
                "currency": "EUR",
                "account": "acc-1",
                "idempotency_key": "order-42",
            })
        );
        assert_eq!(
            charge.log_line(),
            format!("charged 1250 EUR to acc-1: {txn} (key order-42)")
        );
    }

    #[test]
    fn declined_and_flaky_accounts_fail() {
        let declined =
            payment(r#"{"amount":1,"currency":"USD","account":"acc-declined"}"#).expect("valid");
        let failure = charge(declined, "k").expect_err("declined");
        assert_eq!((failure.status(), failure.code()), (402, "card_declined"));
        assert_eq!(
            failure.to_json()["error"]["code"],
            "card_declined",
            "{}",
            failure.to_json()
        );

        let flaky =
            payment(r#"{"amount":1,"currency":"USD","account":"acc-flaky"}"#).expect("valid");
        let failure = charge(flaky, "k").expect_err("unavailable");
        assert_eq!(
            (failure.status(), failure.code()),
            (503, "processor_unavailable")
        );
    }
}
