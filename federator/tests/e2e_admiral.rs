//! Admiral's objects read as they are, on real API servers (issue 13): an `admiral.io`
//! GlobalTrafficPolicy changes the DestinationRules, what has no equivalent is reported on
//! it as an Event, a `federator.io` policy for the same host wins (and Admiral's is told so),
//! and an `admiral.io` Dependency scopes exports as Admiral did (`--export-scope dependents`)
//! without limiting its source's sidecars (Admiral never did).

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use federator::istio::{DestinationRule, LocalityLbSetting, Sidecar};
use kube::Api;
use serde_json::json;
use support::live::*;
use testenv::TestCluster;

const GREETING: &str = "prod.greeting.global";

async fn locality(cluster: &TestCluster) -> Option<LocalityLbSetting> {
    let api: Api<DestinationRule> = Api::namespaced(cluster.client(), "federator-sync");
    let rule = api.get_opt(GREETING).await.ok().flatten()?;
    rule.spec.traffic_policy?.load_balancer?.locality_lb_setting
}

fn distributes(setting: Option<LocalityLbSetting>, to: &[(&str, u32)]) -> bool {
    let want: BTreeMap<String, u32> = to.iter().map(|(r, w)| ((*r).to_owned(), *w)).collect();
    setting.is_some_and(|s| s.distribute.len() == 1 && s.distribute[0].to == want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admiral_objects_apply_as_they_are() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    for cluster in [east, west] {
        cluster
            .apply_json(&foreign_crd(
                "admiral.io",
                "GlobalTrafficPolicy",
                "globaltrafficpolicies",
                true,
            ))
            .await
            .unwrap();
        cluster
            .apply_json(&foreign_crd(
                "admiral.io",
                "Dependency",
                "dependencies",
                true,
            ))
            .await
            .unwrap();
    }
    deploy(east, "greeting", 2, 0).await;
    deploy(west, "web", 1, 0).await;
    let admiral_gtp = json!({
        "apiVersion": "admiral.io/v1alpha1", "kind": "GlobalTrafficPolicy",
        "metadata": {"name": "greeting-gtp", "namespace": "sample",
                     "labels": {"identity": "greeting"}, "annotations": {"admiral.io/env": "prod"}},
        "spec": {"policy": [
            {"dnsPrefix": "default", "lbType": 1,
             "target": [{"region": "us-east-1", "weight": 90}, {"region": "us-west-2", "weight": 10}]},
            {"dnsPrefix": "west", "lbType": 1, "target": [{"region": "us-west-2", "weight": 100}]},
        ]},
    });
    eventually("Admiral's policy created", || async {
        east.apply_json(&admiral_gtp).await.is_ok()
    })
    .await;
    let admiral_dependency = json!({
        "apiVersion": "admiral.io/v1alpha1", "kind": "Dependency",
        "metadata": {"name": "web", "namespace": "sample"},
        "spec": {"source": "web", "identityLabel": "identity", "destinations": ["greeting"]},
    });
    eventually("Admiral's Dependency created", || async {
        west.apply_json(&admiral_dependency).await.is_ok()
    })
    .await;

    let federator = Federator::start_with(&env, |o| {
        o.settings.render.export_scope = federator::render::ExportScope::Dependents;
    })
    .await;

    // The Admiral policy's weights, in both clusters' DestinationRules.
    let weights = [("us-east-1/*", 90), ("us-west-2/*", 10)];
    eventually("Admiral's weights in both DestinationRules", || async {
        distributes(locality(east).await, &weights) && distributes(locality(west).await, &weights)
    })
    .await;
    // Its extra dnsPrefix has no equivalent: said on the object.
    eventually("FieldIgnored on Admiral's policy", || async {
        has_event(
            east,
            "sample",
            "greeting-gtp",
            "FieldIgnored",
            "west.prod.greeting.global",
        )
        .await
    })
    .await;
    // Admiral's Dependency brought greeting to west, where its caller runs (the weights
    // above were read there), and wrote no Sidecar.
    let api: Api<Sidecar> = Api::namespaced(west.client(), "sample");
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    west.delete_json(&admiral_dependency).await.unwrap();
    eventually("greeting leaves west with Admiral's Dependency", || async {
        support::live::service_entry(west, GREETING).await.is_none()
    })
    .await;

    // A federator.io policy for the same host wins; Admiral's is told.
    west.apply_json(&json!({
        "apiVersion": "federator.io/v1alpha1", "kind": "GlobalTrafficPolicy",
        "metadata": {"name": "greeting", "namespace": "sample"},
        "spec": {"identity": "greeting", "mode": "failover", "failover": ["us-west-2", "us-east-1"]},
    }))
    .await
    .unwrap();
    eventually("federator's failover in force", || async {
        locality(east)
            .await
            .is_some_and(|s| s.distribute.is_empty() && s.failover.len() == 2)
    })
    .await;
    eventually("PolicyShadowed on Admiral's policy", || async {
        has_event(
            east,
            "sample",
            "greeting-gtp",
            "PolicyShadowed",
            "GlobalTrafficPolicy sample/greeting",
        )
        .await
    })
    .await;
    federator.stop().await;
}
