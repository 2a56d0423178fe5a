//! The fault suite (issue 10), writes: what others put in the sync namespace (an admission
//! policy, a user's object made after federator read, another installation) must never make
//! federator overwrite, take over or delete something that is not its own, nor stall the rest.
//! Each test watches what the API servers saw.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use federator::istio::ServiceEntry;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::live::*;
use support::writes::*;

const SYNC: &str = "federator-sync";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_refused_by_an_admission_policy_stalls_nothing_else() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let east = env.cluster("east");
    east.apply_json(&json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "reserved-hosts"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["networking.istio.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["serviceentries"],
            }]},
            "validations": [{
                "expression": "object.metadata.name != 'prod.blocked.global'",
                "message": "prod.blocked.global is reserved by the platform team",
                "reason": "Forbidden",
            }],
        },
    }))
    .await
    .unwrap();
    east.apply_json(&json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "reserved-hosts"},
        "spec": {"policyName": "reserved-hosts", "validationActions": ["Deny"]},
    }))
    .await
    .unwrap();
    east.create_namespace(SYNC).await.unwrap();
    let probe = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "prod.blocked.global", "namespace": SYNC},
        "spec": {"hosts": ["prod.blocked.global"]},
    });
    eventually("the policy is in force", || async {
        east.dry_run_create(&probe).await.is_err()
    })
    .await;

    let west = env.cluster("west");
    deploy(west, "blocked", 1, 0).await;
    deploy(west, "greeting", 1, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("the other host flows into east", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
    })
    .await;
    // An object that does not exist gets its Event on the sync namespace (a cluster-scoped
    // object: its Events are in `default`).
    eventually("the refusal reported on the sync namespace", || {
        has_event(
            east,
            "default",
            SYNC,
            "WriteRejected",
            "reserved by the platform team",
        )
    })
    .await;
    eventually("and counted by reason", || async {
        federator
            .metric(
                "federator_write_rejections_total",
                &[
                    ("cluster", "east"),
                    ("kind", "ServiceEntry"),
                    ("reason", "Forbidden"),
                ],
            )
            .await
            >= 1.0
    })
    .await;
    assert!(service_entry(east, "prod.blocked.global").await.is_none());
    // Later changes still flow while the refused object keeps resting.
    let weight = || async {
        service_entry(east, "prod.greeting.global")
            .await
            .and_then(|se| se.spec.endpoints.first().and_then(|e| e.weight))
    };
    assert_eq!(weight().await, Some(1));
    let (region, _) = topology("west");
    scale(west, "greeting", 2, 0, region).await;
    eventually("a change after the refusal reaches east", || async {
        weight().await == Some(2)
            && federator
                .metric("federator_writes_held", &[("cluster", "east")])
                .await
                >= 1.0
    })
    .await;
    // The other cluster, with no policy, has both.
    eventually("west has both hosts", || async {
        service_entry(west, "prod.blocked.global").await.is_some()
            && service_entry(west, "prod.greeting.global").await.is_some()
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_made_or_relabelled_after_the_last_read_is_never_taken_over_or_deleted() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(west, "greeting", 1, 0).await;
    deploy(west, "leaving", 1, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("east gets west's hosts", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
            && service_entry(east, "prod.leaving.global").await.is_some()
    })
    .await;

    // A user's object, made after federator's last full read, under a name federator is
    // about to want: the create fails, and it is a conflict.
    let theirs = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "prod.latecomer.global", "namespace": SYNC,
                     "labels": {"team": "payments"}},
        "spec": {"hosts": ["prod.latecomer.global"], "location": "MESH_EXTERNAL",
                 "resolution": "DNS"},
    });
    let stored = east.apply_json(&theirs).await.unwrap();
    let events = record_objects(east).await;
    deploy(west, "latecomer", 1, 0).await;
    eventually("the conflict reported on the user's object", || {
        has_event(
            east,
            SYNC,
            "prod.latecomer.global",
            "OwnershipConflict",
            "not labelled",
        )
    })
    .await;

    // federator's own objects, relabelled by a user since federator read them: one it now
    // wants to update, one it no longer wants. Neither is written nor deleted.
    let api: Api<ServiceEntry> = Api::namespaced(east.client(), SYNC);
    let relabel =
        json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "platform-team"}}});
    for name in ["prod.greeting.global", "prod.leaving.global"] {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&relabel))
            .await
            .unwrap();
    }
    let (region, _) = topology("west");
    scale(west, "greeting", 2, 0, region).await;
    scale(west, "leaving", 0, 0, region).await;
    // The update was tried at the version read, refused, read again and found not ours.
    eventually("the relabelled object reported as a conflict", || {
        has_event(
            east,
            SYNC,
            "prod.greeting.global",
            "OwnershipConflict",
            "not labelled",
        )
    })
    .await;
    // The delete went out in the same pass as the (still federator's) DestinationRule's.
    let leaving_rule = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "prod.leaving.global", "namespace": SYNC},
    });
    eventually("leaving's DestinationRule deleted", || async {
        east.get_json(&leaving_rule).await.unwrap().is_none()
    })
    .await;
    let now = east.get_json(&theirs).await.unwrap().unwrap();
    assert_eq!(
        now["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"],
        "the user's object was written to"
    );
    for name in ["prod.greeting.global", "prod.leaving.global"] {
        let se = api.get_opt(name).await.unwrap();
        assert!(se.is_some(), "{name} was deleted");
        let se = se.unwrap();
        assert_eq!(
            label(&se, "app.kubernetes.io/managed-by").as_deref(),
            Some("platform-team")
        );
        assert_eq!(se.spec.endpoints[0].weight, Some(1), "{name} was updated");
    }
    let seen = events.lock().unwrap().clone();
    let touched: Vec<_> = seen
        .iter()
        .filter(|(kind, o)| {
            let name = o.metadata.name.as_deref().unwrap_or_default();
            let ours_now =
                label(o, "app.kubernetes.io/managed-by").as_deref() != Some("platform-team");
            match name {
                "prod.latecomer.global" => true,
                "prod.greeting.global" | "prod.leaving.global" => kind == "DELETED" || ours_now,
                _ => false,
            }
        })
        .map(|(t, o)| (t.clone(), o.metadata.name.clone()))
        .collect();
    assert!(touched.is_empty(), "federator wrote: {touched:?}");
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_installations_on_the_same_clusters_never_touch_each_others_objects() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(west, "greeting", 1, 0).await;
    let production =
        Federator::start_with(&env, |o| o.instance = "federator.production".into()).await;
    eventually("production writes east", || async {
        service_entry(east, "prod.greeting.global")
            .await
            .is_some_and(|se| {
                label(&se, "federator.io/instance").as_deref() == Some("federator.production")
            })
    })
    .await;
    let events = record_objects(east).await;
    // A staging installation pointed at the same clusters, with the same Secrets.
    let staging = Federator::start_with(&env, |o| o.instance = "federator.staging".into()).await;
    eventually("staging reports the name as production's", || {
        has_event(
            east,
            SYNC,
            "prod.greeting.global",
            "OwnershipConflict",
            "federator.production",
        )
    })
    .await;
    // A new name both want: whichever creates it first keeps it.
    deploy(west, "second", 1, 0).await;
    eventually("production writes the new host", || async {
        service_entry(east, "prod.second.global").await.is_some()
    })
    .await;
    // Production goes away for good; staging must not take over or delete its objects,
    // while it writes the names that are free.
    production.stop().await;
    let (region, _) = topology("west");
    scale(west, "greeting", 2, 0, region).await;
    deploy(west, "third", 1, 0).await;
    eventually("staging writes a free name", || async {
        service_entry(east, "prod.third.global")
            .await
            .is_some_and(|se| {
                label(&se, "federator.io/instance").as_deref() == Some("federator.staging")
            })
    })
    .await;
    // No interference: every object keeps the installation that created it (a free name
    // goes to whichever creates it first), and nothing is deleted.
    let seen = events.lock().unwrap().clone();
    let mut owners: std::collections::BTreeMap<String, Option<String>> = Default::default();
    for (kind, o) in &seen {
        let name = o.metadata.name.clone().unwrap_or_default();
        let instance = label(o, "federator.io/instance");
        assert_ne!(kind, "DELETED", "{name} was deleted");
        let first = owners
            .entry(name.clone())
            .or_insert_with(|| instance.clone());
        assert_eq!(*first, instance, "{name} changed hands: {seen:?}");
    }
    for host in ["prod.greeting.global"] {
        let se = service_entry(east, host).await.unwrap();
        assert_eq!(
            label(&se, "federator.io/instance").as_deref(),
            Some("federator.production")
        );
    }
    staging.stop().await;
}
