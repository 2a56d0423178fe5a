//! The selector indexes find exactly what scanning the whole namespace finds, and the
//! namespace's index lives exactly while it holds something, whatever Services and
//! workloads come, change and go.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{ClusterState, WorkloadId, selects};
use crate::fixtures::{service, workload};
use crate::model::{ClusterInfo, Labels, ObjectKey};

const NS: &str = "shop";
const SUFFIX: &str = "global";

/// One change to the namespace: a Service or a workload (by number) set to these labels,
/// or removed.
#[derive(Clone, Debug)]
enum Step {
    Service(u8, Option<Vec<(u8, u8)>>),
    Workload(u8, Option<Vec<(u8, u8)>>),
}

fn labels(pairs: &[(u8, u8)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (format!("k{k}"), format!("v{v}")))
        .collect()
}

fn step() -> impl Strategy<Value = Step> {
    // Few keys and values, so selectors often match and often share pairs.
    let pairs = proptest::collection::vec((0u8..3, 0u8..3), 0..4);
    prop_oneof![
        (0u8..6, proptest::option::weighted(0.8, pairs.clone()))
            .prop_map(|(n, p)| Step::Service(n, p)),
        (0u8..6, proptest::option::weighted(0.8, pairs)).prop_map(|(n, p)| Step::Workload(n, p)),
    ]
}

fn apply(state: &mut ClusterState, step: &Step) {
    match step {
        Step::Service(n, Some(pairs)) => {
            let mut s = service(NS, &format!("s{n}")).port("http", 80);
            s.selector = labels(pairs);
            state.upsert_service(s);
        }
        Step::Service(n, None) => {
            state.remove_service(&ObjectKey::new(NS, format!("s{n}")));
        }
        Step::Workload(n, Some(pairs)) => {
            let mut w = workload(NS, &format!("w{n}"), &format!("id{n}"), "prod");
            w.pod_labels = labels(pairs);
            state.upsert_workload(w);
        }
        Step::Workload(n, None) => {
            let w = workload(NS, &format!("w{n}"), "x", "prod");
            let id: WorkloadId = (w.kind, w.key);
            state.remove_workload(&id, None);
        }
    }
}

proptest! {
    #[test]
    fn indexes_match_a_full_scan(steps in proptest::collection::vec(step(), 1..40)) {
        let info = ClusterInfo::new("east");
        let mut state = ClusterState::new(info, true);
        for step in &steps {
            apply(&mut state, step);
            // The namespace's index lives while it holds anything, counting its Services.
            let ns = state.namespaces.get(NS);
            prop_assert_eq!(ns.map_or(0, |ns| ns.services), state.services.len());
            prop_assert_eq!(ns.map_or(0, |ns| ns.workloads.len()), state.workloads.len());
            prop_assert_eq!(
                ns.is_some(),
                !state.services.is_empty() || !state.workloads.is_empty()
            );
        }
        let services: Vec<_> = state.services.values().collect();
        for w in state.workloads.values() {
            let found: Vec<&ObjectKey> =
                state.services_selecting(w).into_iter().map(|s| &s.key).collect();
            let mut scanned: Vec<&ObjectKey> = services
                .iter()
                .filter(|s| !s.ports.is_empty() && selects(&s.selector, &w.pod_labels))
                .map(|s| &s.key)
                .collect();
            scanned.sort();
            prop_assert_eq!(found, scanned, "Services selecting {:?}", w.key);
        }
        for s in &services {
            let mut found = BTreeSet::new();
            state.hosts_selected_by(NS, &s.selector, SUFFIX, &mut found);
            let scanned: BTreeSet<_> = state
                .workloads
                .values()
                .filter(|w| selects(&s.selector, &w.pod_labels))
                .filter_map(|w| w.host(SUFFIX).ok())
                .collect();
            prop_assert_eq!(found, scanned, "hosts selected by {:?}", s.key);
        }
    }
}
