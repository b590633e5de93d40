//! The namespace store conformance suite: what every [`NamespaceStore`]
//! must do, the same way. A backend's crate runs it with
//! [`namespaces_conformance!`](crate::namespaces_conformance).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::namespaces::{Budget, BudgetPeriod, BudgetUnit, NamespaceStore, OnExhausted, Quotas};

/// Opens a fresh backend, with whatever must live as long as it.
pub type Open = dyn Fn() -> super::Opened<Arc<dyn NamespaceStore>>;

fn full() -> Quotas {
    Quotas {
        max_apps: Some(3),
        max_functions: Some(10),
        max_memory: Some(64 << 20),
        max_concurrency: Some(20),
        requests_per_second: Some(100),
        budget: Some(Budget {
            amount: 12.5,
            unit: BudgetUnit::Money,
            period: BudgetPeriod::Month,
            on_exhausted: OnExhausted::Reject,
        }),
    }
}

pub async fn quotas_read_back_whole_and_are_replaced_whole(open: &Open) {
    let (store, _guard) = open().await;
    let ns = super::unique("ns");
    assert_eq!(store.quotas(&ns).await.unwrap(), Quotas::default());
    store.set_quotas(&ns, full()).await.unwrap();
    assert_eq!(store.quotas(&ns).await.unwrap(), full());
    let fewer = Quotas {
        max_apps: Some(1),
        ..Quotas::default()
    };
    store.set_quotas(&ns, fewer.clone()).await.unwrap();
    assert_eq!(store.quotas(&ns).await.unwrap(), fewer);
}

pub async fn all_lists_every_namespace_with_quotas(open: &Open) {
    let (store, _guard) = open().await;
    let (a, b) = (super::unique("a"), super::unique("b"));
    store.set_quotas(&a, full()).await.unwrap();
    let small = Quotas {
        requests_per_second: Some(1),
        ..Quotas::default()
    };
    store.set_quotas(&b, small.clone()).await.unwrap();
    let all = store.all().await.unwrap();
    assert!(all.contains(&(a.clone(), full())), "{all:?}");
    assert!(all.contains(&(b.clone(), small)), "{all:?}");
    let names: Vec<&String> = all.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "by name");
}

/// One test per check of the namespace store suite.
#[macro_export]
macro_rules! namespaces_conformance {
    ($open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn quotas_read_back_whole_and_are_replaced_whole() {
            $crate::conformance::namespaces::quotas_read_back_whole_and_are_replaced_whole(&$open)
                .await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn all_lists_every_namespace_with_quotas() {
            $crate::conformance::namespaces::all_lists_every_namespace_with_quotas(&$open).await;
        }
    };
}
