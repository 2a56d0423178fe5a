//! Argo Rollouts on real API servers (issue 13): a blue-green Rollout's preview Service and a
//! canary Rollout's canary Service get hosts of their own, with VIPs and DNS answers like any
//! host, while the main host stays on the active or stable Service; a canary that Argo weights
//! through Istio traffic routing splits its main host by that weight. What each cluster's API
//! server holds is read back; `dig` asks federator's DNS server.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::live::*;
use testenv::TestCluster;
use testenv::objects::{self, Ep};

fn rollout(name: &str, strategy: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "sample"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name, "identity": name, "env": "prod"}},
                "spec": {"containers": [{"name": name, "image": format!("registry.example.com/{name}:2")}]},
            },
        },
    })
}

/// A Service Argo manages for `rollout` (pinned to one ReplicaSet by its hash) and the
/// EndpointSlice the controller would write for it.
async fn rollout_service(
    cluster: &TestCluster,
    rollout: &str,
    service: &str,
    hash: &str,
    ips: &[&str],
) {
    let mut svc = objects::service("sample", service, &[("http", 8080)]);
    if let Some(spec) = svc.spec.as_mut() {
        spec.selector = Some(
            [
                ("app".to_owned(), rollout.to_owned()),
                ("rollouts-pod-template-hash".to_owned(), hash.to_owned()),
            ]
            .into(),
        );
    }
    cluster.apply(&svc).await.unwrap();
    let (region, _) = topology(cluster.name());
    let zone = format!("{region}a");
    let eps: Vec<Ep<'_>> = ips
        .iter()
        .map(|ip| Ep {
            ip,
            node: "node-1",
            zone: &zone,
            ready: true,
        })
        .collect();
    cluster
        .apply(&objects::endpoint_slice(
            "sample",
            service,
            &[("http", 8080)],
            &eps,
        ))
        .await
        .unwrap();
}

async fn install(cluster: &TestCluster, object: &Value) {
    eventually("the Rollout CRD is served", || async {
        cluster.apply_json(object).await.is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_get_preview_and_canary_hosts() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    for cluster in [east, west] {
        cluster
            .apply_json(&foreign_crd("argoproj.io", "Rollout", "rollouts", true))
            .await
            .unwrap();
        cluster.create_namespace("sample").await.unwrap();
    }
    let blue_green = json!({"blueGreen": {"activeService": "reviews", "previewService": "reviews-preview", "autoPromotionEnabled": false}});
    install(east, &rollout("reviews", blue_green)).await;
    rollout_service(
        east,
        "reviews",
        "reviews",
        "aaa111",
        &["10.1.0.10", "10.1.0.11"],
    )
    .await;
    rollout_service(east, "reviews", "reviews-preview", "bbb222", &["10.1.0.20"]).await;
    let canary = json!({"canary": {"stableService": "search", "canaryService": "search-canary", "steps": [{"setWeight": 20}]}});
    install(west, &rollout("search", canary)).await;
    rollout_service(
        west,
        "search",
        "search",
        "ccc333",
        &["10.1.0.30", "10.1.0.31"],
    )
    .await;
    rollout_service(west, "search", "search-canary", "ddd444", &["10.1.0.40"]).await;

    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;

    // Where each Rollout runs: the main host on the active/stable pods only, the extra host
    // on the preview/canary pods only.
    eventually("the four hosts in their own clusters", || async {
        endpoints(east, "prod.reviews.global").await == ["10.1.0.10", "10.1.0.11"]
            && endpoints(east, "preview.prod.reviews.global").await == ["10.1.0.20"]
            && endpoints(west, "prod.search.global").await == ["10.1.0.30", "10.1.0.31"]
            && endpoints(west, "canary.prod.search.global").await == ["10.1.0.40"]
    })
    .await;
    // Elsewhere, through the gateway; each host with a VIP of its own that DNS answers.
    let (_, east_gateway) = topology("east");
    eventually(
        "west reaches the preview through east's gateway",
        || async { endpoints(west, "preview.prod.reviews.global").await == [east_gateway] },
    )
    .await;
    let mut vips = Vec::new();
    for host in [
        "prod.reviews.global",
        "preview.prod.reviews.global",
        "prod.search.global",
        "canary.prod.search.global",
    ] {
        let vip = support::live::service_entry(west, host)
            .await
            .unwrap()
            .spec
            .addresses[0]
            .clone();
        let (status, answers) = dig(federator.dns, host, &[]).await;
        assert_eq!(
            (status.as_str(), answers),
            ("NOERROR", vec![vip.clone()]),
            "{host}"
        );
        vips.push(vip);
    }
    vips.sort();
    vips.dedup();
    assert_eq!(vips.len(), 4, "every host has a VIP of its own");

    // Promoted and without a preview Service any more: the preview host goes everywhere;
    // the main host stays.
    east.apply_json(&rollout(
        "reviews",
        json!({"blueGreen": {"activeService": "reviews"}}),
    ))
    .await
    .unwrap();
    eventually("the preview host removed from both clusters", || async {
        support::live::service_entry(east, "preview.prod.reviews.global")
            .await
            .is_none()
            && support::live::service_entry(west, "preview.prod.reviews.global")
                .await
                .is_none()
    })
    .await;
    assert_eq!(
        endpoints(east, "prod.reviews.global").await,
        ["10.1.0.10", "10.1.0.11"]
    );
    let (status, _) = dig(federator.dns, "preview.prod.reviews.global", &[]).await;
    assert_eq!(status, "NXDOMAIN");

    // Argo weights the canary through Istio traffic routing (20 %): the main host goes to
    // the stable and canary pods in that proportion, as Argo's VirtualService does.
    let routed = json!({"canary": {
        "stableService": "search", "canaryService": "search-canary",
        "trafficRouting": {"istio": {"virtualService": {"name": "search"}}},
        "steps": [{"setWeight": 20}],
    }});
    west.apply_json(&rollout("search", routed)).await.unwrap();
    let rollouts = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        west.client(),
        "sample",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "argoproj.io",
            "v1alpha1",
            "Rollout",
        )),
    );
    let status = json!({"status": {"canary": {"weights": {
        "canary": {"serviceName": "search-canary", "podTemplateHash": "ddd444", "weight": 20},
        "stable": {"serviceName": "search", "podTemplateHash": "ccc333", "weight": 80},
    }}}});
    rollouts
        .patch_status(
            "search",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await
        .unwrap();
    let weights = |se: Option<federator::istio::ServiceEntry>| -> Vec<(String, Option<u32>)> {
        se.map(|se| {
            se.spec
                .endpoints
                .into_iter()
                .map(|e| (e.address, e.weight))
                .collect()
        })
        .unwrap_or_default()
    };
    // Three pods, so 300 hundredths: 120 and 120 for the stable pods, 60 for the canary.
    eventually("the stable and canary pods weighted 80 to 20", || async {
        weights(support::live::service_entry(west, "prod.search.global").await)
            == [
                ("10.1.0.30".to_owned(), Some(120)),
                ("10.1.0.31".to_owned(), Some(120)),
                ("10.1.0.40".to_owned(), Some(60)),
            ]
    })
    .await;
    // East reaches them through west's gateway, on the same scale: three pods' worth.
    let (_, west_gateway) = topology("west");
    eventually("east's gateway entry weighs three pods", || async {
        weights(support::live::service_entry(east, "prod.search.global").await)
            == [(west_gateway.to_owned(), Some(300))]
    })
    .await;
    federator.stop().await;
}
