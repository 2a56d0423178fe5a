//! Argo Rollouts: the main host follows the active (blue-green) or stable (canary) Service,
//! and the preview or canary Service gets a host of its own.

use super::*;
use crate::model::{Object, RolloutRole, ServiceInfo};

/// A Rollout `web` in namespace `team` of `cluster` with Services `web-active` (2 ready)
/// and `web-preview` (1 ready), both selecting its pods.
fn blue_green(cluster: &str, preview: bool) -> Vec<Delta> {
    let mut rollout = workload("team", "web", "web", "prod");
    rollout.kind = WorkloadKind::Rollout;
    rollout.service = Some("web-active".into());
    rollout.rollout_role = preview.then(|| (RolloutRole::Preview, "web-preview".into()));
    let svc = |name: &str| ServiceInfo {
        pinned: true,
        ..service("team", name)
            .port("http", 80)
            .selector(&[("app", "web")])
    };
    vec![
        upsert(cluster, rollout),
        upsert(cluster, svc("web-active")),
        upsert(cluster, svc("web-preview")),
        upsert(
            cluster,
            slice(
                "team",
                "web-active-1",
                "web-active",
                &[("", "a"), ("", "b")],
            ),
        ),
        upsert(
            cluster,
            slice("team", "web-preview-1", "web-preview", &[("", "a")]),
        ),
    ]
}

fn backends(r: &Registry, h: &str) -> Vec<(String, u32)> {
    r.get(&host(h))
        .map(|s| {
            s.backends
                .values()
                .flatten()
                .map(|b| (b.service.name.to_string(), b.ready_count()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_blue_green_rollout_gets_its_active_service_and_a_preview_host() {
    let r = registry(blue_green("east", true));
    assert_eq!(backends(&r, "prod.web"), [("web-active".to_owned(), 2)]);
    assert_eq!(
        backends(&r, "preview.prod.web"),
        [("web-preview".to_owned(), 1)]
    );
    let preview = r.get(&host("preview.prod.web")).unwrap();
    assert!(preview.vip.is_some());
    assert_ne!(preview.vip, r.get(&host("prod.web")).unwrap().vip);
}

#[test]
fn the_preview_host_goes_with_the_preview_service_or_the_rollout() {
    let mut r = registry(blue_green("east", true));
    // The strategy no longer names a preview Service.
    r.apply(blue_green("east", false).remove(0));
    assert!(r.get(&host("preview.prod.web")).is_none());
    assert_eq!(backends(&r, "prod.web"), [("web-active".to_owned(), 2)]);
    // Back, then the Rollout deleted: both hosts go.
    r.apply(blue_green("east", true).remove(0));
    assert!(r.get(&host("preview.prod.web")).is_some());
    r.apply(remove(
        "east",
        ObjectRef::Workload(WorkloadKind::Rollout, ObjectKey::new("team", "web")),
    ));
    assert!(r.get(&host("preview.prod.web")).is_none());
    assert!(r.get(&host("prod.web")).is_none());
}

#[test]
fn a_canary_rollout_gets_a_canary_host_and_order_does_not_matter() {
    let mut deltas = blue_green("east", true);
    if let Delta::Upsert(_, Object::Workload(w)) = &mut deltas[0] {
        w.rollout_role = Some((RolloutRole::Canary, "web-preview".into()));
    }
    let forward = registry(deltas.clone());
    let backward = registry(deltas.into_iter().rev());
    for r in [&forward, &backward] {
        assert!(r.get(&host("preview.prod.web")).is_none());
        assert_eq!(
            backends(r, "canary.prod.web"),
            [("web-preview".to_owned(), 1)]
        );
        assert_eq!(backends(r, "prod.web"), [("web-active".to_owned(), 2)]);
    }
}

#[test]
fn a_deployment_a_rollout_borrows_its_template_from_gets_no_pinned_service() {
    // The Rollout (workloadRef) is not a workload; its Deployment carries the identity and
    // names no Service: Argo's pinned active and preview Services are not its backends.
    let mut deltas = blue_green("east", true);
    deltas[0] = upsert("east", workload("team", "web", "web", "prod"));
    let r = registry(deltas);
    assert!(backends(&r, "prod.web").is_empty());
    assert!(r.get(&host("preview.prod.web")).is_none());
}

/// `blue_green`'s Rollout made a canary with its preview Service as the canary one,
/// weighted `weight` by Argo.
fn canary(weight: Option<u32>) -> Vec<Delta> {
    let mut deltas = blue_green("east", true);
    if let Delta::Upsert(_, Object::Workload(w)) = &mut deltas[0] {
        w.rollout_role = Some((RolloutRole::Canary, "web-preview".into()));
        w.canary_weight = weight;
    }
    deltas
}

/// Each backend Service of `prod.web` with its weight.
fn shares(r: &Registry) -> Vec<(String, Option<u32>)> {
    r.get(&host("prod.web"))
        .unwrap()
        .backends
        .values()
        .flatten()
        .map(|b| (b.service.name.to_string(), b.weight))
        .collect()
}

#[test]
fn a_weighted_canary_splits_its_host_between_stable_and_canary_by_argos_weight() {
    let mut r = registry(canary(Some(20)));
    assert_eq!(
        shares(&r),
        [
            ("web-active".to_owned(), Some(80)),
            ("web-preview".to_owned(), Some(20))
        ]
    );
    // The canary host still carries the canary pods only, unweighted.
    assert_eq!(
        backends(&r, "canary.prod.web"),
        [("web-preview".to_owned(), 1)]
    );
    // Argo moves the weight: the split follows; at 0 (aborted or promoted) the stable alone.
    r.apply(canary(Some(100)).remove(0));
    assert_eq!(shares(&r), [("web-preview".to_owned(), Some(100))]);
    r.apply(canary(Some(0)).remove(0));
    assert_eq!(shares(&r), [("web-active".to_owned(), Some(100))]);
    // Without traffic routing: the stable Service, unweighted, as before.
    r.apply(canary(None).remove(0));
    assert_eq!(shares(&r), [("web-active".to_owned(), None)]);
}

#[test]
fn two_canaries_weighting_one_service_split_it_alike_in_any_order() {
    // Two Rollouts of one identity in one cluster (a hand-made duplicate), both weighting
    // the same stable and canary Services: the one last by name decides, whatever arrived
    // first.
    let named = |name: &str, weight: u32| {
        let mut deltas = canary(Some(weight));
        if let Delta::Upsert(_, Object::Workload(w)) = &mut deltas[0] {
            w.key = ObjectKey::new("team", name);
        }
        deltas
    };
    let (a, b) = (named("web-a", 20), named("web-b", 40));
    let forward = registry(a.iter().chain(&b).cloned());
    let backward = registry(b.iter().chain(&a).cloned());
    let expected = [
        ("web-active".to_owned(), Some(60)),
        ("web-preview".to_owned(), Some(40)),
    ];
    assert_eq!(shares(&forward), expected);
    assert_eq!(shares(&backward), expected);
}
