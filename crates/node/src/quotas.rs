//! Keeping namespaces' run-time quotas and budgets current on this node:
//! every [`PERIOD`] it reads every namespace's quotas (so a change made
//! through another node of a cluster applies here too) and, for each with a
//! budget, what it spent this period, marking a `reject` namespace that has
//! spent it all so its functions answer 429 `budget_exhausted`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use stratus_invoke::Invoker;
use stratus_manifest::Namespace;
use stratus_storage::{
    BudgetPeriod, BudgetStatus, Ledger, NamespaceStore, OnExhausted, UsageReport,
};

/// How often quotas are read again and budgets summed: how late a budget
/// stops a namespace, at most, and how late a cluster's other nodes apply a
/// change of quotas.
pub(crate) const PERIOD: Duration = Duration::from_secs(5);

/// Applies the stored quotas once, then keeps them and the budgets
/// current until the invoker is dropped.
pub(crate) async fn follow(
    store: Arc<dyn NamespaceStore>,
    invoker: &Arc<Invoker>,
    ledger: Option<Arc<Ledger>>,
) {
    let mut warned = HashSet::new();
    check(&*store, invoker, ledger.as_deref(), &mut warned).await;
    let invoker: Weak<Invoker> = Arc::downgrade(invoker);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(invoker) = invoker.upgrade() else {
                break;
            };
            check(&*store, &invoker, ledger.as_deref(), &mut warned).await;
        }
    });
}

async fn check(
    store: &dyn NamespaceStore,
    invoker: &Invoker,
    ledger: Option<&Ledger>,
    warned: &mut HashSet<String>,
) {
    let all = match store.all().await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("cannot read namespaces' quotas: {e}");
            return;
        }
    };
    // The node's usage since each period began, read once per period
    // whatever the number of namespaces budgeted over it.
    let mut usage: HashMap<BudgetPeriod, UsageReport> = HashMap::new();
    for (name, quotas) in all {
        invoker.tenancy().set(&name, &quotas);
        let (Some(budget), Some(ledger), Ok(namespace)) =
            (&quotas.budget, ledger, Namespace::new(&name))
        else {
            continue;
        };
        let spent = match usage.entry(budget.period) {
            Entry::Occupied(read) => Ok(read.into_mut()),
            Entry::Vacant(slot) => BudgetStatus::usage(ledger, budget.period)
                .await
                .map(|report| slot.insert(report)),
        };
        match spent.map(|report| BudgetStatus::of(report, &name, budget, |app| namespace.owns(app)))
        {
            Ok(status) => {
                let refuse = status.exhausted && budget.on_exhausted == OnExhausted::Reject;
                invoker.tenancy().set_exhausted(&name, refuse);
                match &status.warning {
                    // Said once per crossing, not every period.
                    Some(warning) if warned.insert(name.clone()) => {
                        tracing::warn!(namespace = %name, exhausted = status.exhausted, "{warning}");
                    }
                    Some(_) => {}
                    None => {
                        warned.remove(&name);
                    }
                }
            }
            Err(e) => tracing::warn!(namespace = %name, "cannot sum the namespace's spending: {e}"),
        }
    }
}
