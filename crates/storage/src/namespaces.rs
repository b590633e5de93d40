//! Namespaces' quotas and money budgets: what a team may deploy and run,
//! set by the node's operators (never by the team itself).

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// What a namespace may have and use; `None` is no limit of that kind.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Apps at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u32))]
    pub max_apps: Option<u32>,
    /// Functions over all its apps' live versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u32))]
    pub max_functions: Option<u32>,
    /// Linear memory of any one function, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18446744073709551615_u64)
    )]
    pub max_memory: Option<u64>,
    /// Invocations running at once over all its functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u32))]
    pub max_concurrency: Option<u32>,
    /// Requests per second through the gateway (a token bucket holding one
    /// second's worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u32))]
    pub requests_per_second: Option<u32>,
    /// What it may spend in a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// A spending limit per period, in GB-seconds or in the price sheet's
/// currency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// At least [`Budget::MIN_AMOUNT`].
    #[cfg_attr(feature = "openapi", schema(minimum = 0.000001))]
    pub amount: f64,
    pub unit: BudgetUnit,
    pub period: BudgetPeriod,
    /// At 100 %: refuse its functions' invocations (429 `budget_exhausted`)
    /// or keep serving and only warn.
    pub on_exhausted: OnExhausted,
}

impl Budget {
    /// The smallest budget: a millionth of a GB-second or of the currency.
    /// Any less is no budget (and its share of a spend, a division by next
    /// to nothing, would overflow).
    pub const MIN_AMOUNT: f64 = 0.000_001;
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    GbSeconds,
    /// The price sheet's currency.
    Money,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    Month,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    Reject,
    Alert,
}

/// Why the namespace store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceStoreError {
    /// The backend is out of reach for now (a cluster's NATS); try again.
    #[error("the namespace store is unavailable: {0}")]
    Unavailable(String),
    #[error("the namespace store failed: {0}")]
    Backend(String),
}

pub type NamespaceFuture<T> = Pin<Box<dyn Future<Output = Result<T, NamespaceStoreError>> + Send>>;

/// Where a node keeps namespaces' quotas: `stratus.db`, or a bucket in a
/// cluster, so every node enforces the same ones.
pub trait NamespaceStore: Send + Sync + std::fmt::Debug + 'static {
    /// The namespace's quotas (all `None` when none were set).
    fn quotas(&self, namespace: &str) -> NamespaceFuture<Quotas>;

    /// Replaces the namespace's quotas whole.
    fn set_quotas(&self, namespace: &str, quotas: Quotas) -> NamespaceFuture<()>;

    /// Every namespace that has quotas, by name.
    fn all(&self) -> NamespaceFuture<Vec<(String, Quotas)>>;
}

/// Where a namespace stands against its budget in the current period.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    pub budget: Budget,
    /// The start of the current period (RFC 3339, UTC).
    pub period_start: String,
    /// Spent so far in the period, in the budget's unit.
    pub used: f64,
    /// `used` as a share of the budget, in percent.
    pub percent: f64,
    /// Spent whole: with `reject`, its functions answer 429.
    pub exhausted: bool,
    /// Said from 80 % on.
    pub warning: Option<String>,
}

/// From what share of a budget the usage report warns.
pub const BUDGET_WARNING: f64 = 0.8;

impl BudgetUnit {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetUnit::GbSeconds => "gb_seconds",
            BudgetUnit::Money => "money",
        }
    }
}

impl OnExhausted {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnExhausted::Reject => "reject",
            OnExhausted::Alert => "alert",
        }
    }
}

impl BudgetPeriod {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        }
    }

    /// When the period holding `now` began: midnight UTC, or midnight UTC
    /// of the month's first day.
    pub fn start(self, now: std::time::SystemTime) -> std::time::SystemTime {
        use chrono::{DateTime, Datelike, NaiveDate, Utc};
        let now: DateTime<Utc> = now.into();
        let day = match self {
            BudgetPeriod::Day => now.date_naive(),
            BudgetPeriod::Month => {
                NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or(now.date_naive())
            }
        };
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        midnight.into()
    }
}

impl BudgetStatus {
    /// The node's usage (every app's) since `period` began: what
    /// [`BudgetStatus::of`] reads a namespace's spending from. One read
    /// serves every namespace budgeted over that period.
    pub async fn usage(
        ledger: &crate::Ledger,
        period: BudgetPeriod,
    ) -> Result<crate::UsageReport, crate::LedgerError> {
        ledger
            .usage(crate::UsageQuery {
                app: None,
                since: Some(period.start(std::time::SystemTime::now())),
            })
            .await
    }

    /// The status of `namespace`'s `budget` (whose apps `owns` tells apart)
    /// from the ledger's usage since the period began.
    pub async fn read(
        ledger: &crate::Ledger,
        namespace: &str,
        budget: &Budget,
        owns: impl Fn(&str) -> bool,
    ) -> Result<BudgetStatus, crate::LedgerError> {
        let usage = Self::usage(ledger, budget.period).await?;
        Ok(Self::of(&usage, namespace, budget, owns))
    }

    /// The status of `namespace`'s `budget` from `usage`, the node's usage
    /// since the budget's period began ([`BudgetStatus::usage`]).
    pub fn of(
        usage: &crate::UsageReport,
        namespace: &str,
        budget: &Budget,
        owns: impl Fn(&str) -> bool,
    ) -> BudgetStatus {
        let start = budget.period.start(std::time::SystemTime::now());
        let report = usage.clone().retain_apps(owns);
        let used = match budget.unit {
            BudgetUnit::GbSeconds => report.total.gb_seconds,
            BudgetUnit::Money => report.total.cost,
        };
        let share = if budget.amount > 0.0 {
            used / budget.amount
        } else {
            1.0
        };
        let unit = match budget.unit {
            BudgetUnit::GbSeconds => "GB-s".to_owned(),
            BudgetUnit::Money => report.prices.currency.clone(),
        };
        let warning = (share >= BUDGET_WARNING).then(|| {
            format!(
                "namespace \"{namespace}\" has used {:.0} % of its budget of {} {unit} this {}",
                share * 100.0,
                budget.amount,
                match budget.period {
                    BudgetPeriod::Day => "day",
                    BudgetPeriod::Month => "month",
                }
            )
        });
        BudgetStatus {
            budget: budget.clone(),
            period_start: crate::format_time(start),
            used,
            // Finite whatever budget a store holds, so it stays a number
            // in JSON.
            percent: (share * 100.0).min(f64::MAX),
            exhausted: share >= 1.0,
            warning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let at = |text: &str| -> std::time::SystemTime {
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&chrono::Utc)
                .into()
        };
        let now = at("2026-12-04T03:58:10Z");
        assert_eq!(BudgetPeriod::Day.start(now), at("2026-12-04T00:00:00Z"));
        assert_eq!(BudgetPeriod::Month.start(now), at("2026-12-01T00:00:00Z"));
        let first = at("2027-01-01T00:00:00Z");
        assert_eq!(BudgetPeriod::Month.start(first), first);
    }
}
