//! Traffic scoping by Dependency on real API servers (issue 13): a Dependency gives its
//! source's workloads a Sidecar that follows it; `--export-scope dependents` sends a host
//! only where it or its callers run. Each test watches what the API servers saw: a Sidecar
//! or ServiceEntry written where it does not belong, or a user's Sidecar touched, fails it.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use federator::crd::{Dependency, DependencySpec};
use federator::istio::{IstioEgressListener, Sidecar, SidecarSpec, WorkloadSelector};
use federator::render::ExportScope;
use kube::Api;
use support::live::*;
use support::writes::*;

const GREETING: &str = "prod.greeting.global";
const WEB: &str = "prod.web.global";
const SIDECAR: &str = "federator-deployment-web";

fn dependency(destinations: &[&str]) -> Dependency {
    let mut d = Dependency::new(
        "web",
        DependencySpec {
            source: "web".into(),
            destinations: destinations.iter().map(|s| s.to_string()).collect(),
        },
    );
    d.metadata.namespace = Some("sample".into());
    d
}

async fn sidecar(cluster: &testenv::TestCluster) -> Option<Sidecar> {
    let api: Api<Sidecar> = Api::namespaced(cluster.client(), "sample");
    api.get_opt(SIDECAR).await.unwrap()
}

fn egress(sidecar: &Sidecar) -> Vec<String> {
    sidecar.spec.egress[0].hosts.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_scopes_sidecars_and_exports() {
    let env = fleet(
        &["config", "east", "west", "north"],
        &["east", "west", "north"],
    )
    .await;
    let (east, west, north) = (
        env.cluster("east"),
        env.cluster("west"),
        env.cluster("north"),
    );
    deploy(east, "greeting", 2, 0).await;
    deploy(west, "web", 1, 0).await;
    // A user's own Sidecar beside federator's: never listed, changed or deleted.
    let user_sidecar = Sidecar {
        metadata: kube::api::ObjectMeta {
            name: Some("team-default".into()),
            namespace: Some("sample".into()),
            ..Default::default()
        },
        spec: SidecarSpec {
            workload_selector: WorkloadSelector {
                labels: BTreeMap::from([("app".into(), "batch".into())]),
            },
            egress: vec![IstioEgressListener {
                hosts: vec!["*/*".into()],
            }],
        },
    };
    let user_sidecar = west.apply(&user_sidecar).await.unwrap();
    west.apply(&dependency(&["greeting"])).await.unwrap();
    let west_sidecars = record_names(Api::<Sidecar>::all(west.client())).await;
    let east_sidecars = record_names(Api::<Sidecar>::all(east.client())).await;
    let north_writes = record_writes(north).await;
    let east_writes = record_writes(east).await;

    let federator = Federator::start_with(&env, |o| {
        o.settings.render.export_scope = ExportScope::Dependents;
    })
    .await;

    // web's Sidecar, in its namespace in west, admits its namespace, Istio's, greeting and the
    // clusterset services.
    eventually("web's Sidecar in west", || async {
        sidecar(west).await.is_some()
    })
    .await;
    let written = sidecar(west).await.unwrap();
    assert_eq!(
        egress(&written),
        [
            "./*",
            "istio-system/*",
            "federator-sync/*.greeting.global",
            "federator-sync/*.svc.clusterset.local"
        ]
    );
    assert_eq!(
        written.spec.workload_selector.labels,
        BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("env".to_owned(), "prod".to_owned()),
            ("identity".to_owned(), "web".to_owned()),
        ]),
        "it selects web's pods"
    );
    let labels = written.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "federator");

    // greeting goes where it runs (east) and where its caller runs (west), not to north.
    eventually("greeting in east and west", || async {
        service_entry(east, GREETING).await.is_some()
            && service_entry(west, GREETING).await.is_some()
    })
    .await;
    // web, which nobody calls, stays in west.
    eventually("web in west", || async {
        service_entry(west, WEB).await.is_some()
    })
    .await;
    federator.settled("north").await;
    federator.settled("east").await;
    assert!(service_entry(north, GREETING).await.is_none());
    assert!(service_entry(north, WEB).await.is_none());
    assert!(service_entry(east, WEB).await.is_none());

    // The Sidecar follows the Dependency.
    west.apply(&dependency(&["greeting", "payments"]))
        .await
        .unwrap();
    eventually("the Sidecar admits payments too", || async {
        sidecar(west)
            .await
            .is_some_and(|s| egress(&s).contains(&"federator-sync/*.payments.global".to_owned()))
    })
    .await;

    // Its status names the identity nothing runs; the rest applies.
    eventually("the Dependency reports payments as unknown", || async {
        let api: Api<Dependency> = Api::namespaced(west.client(), "sample");
        let status = api.get("web").await.unwrap().status.unwrap_or_default();
        let resolved = status.conditions.iter().find(|c| c.type_ == "ResolvedRefs");
        let accepted = status.conditions.iter().find(|c| c.type_ == "Accepted");
        status.unknown_identities == ["payments"]
            && resolved.is_some_and(|c| c.status == "False" && c.reason == "UnknownIdentities")
            && accepted.is_some_and(|c| c.status == "True")
    })
    .await;

    // A caller starting in north brings greeting there (and not before).
    let before = north_writes.lock().unwrap().clone();
    assert!(
        before.is_empty(),
        "nothing was written in north before a caller ran there: {before:?}"
    );
    deploy(north, "web", 1, 0).await;
    eventually("greeting in north, and web's Sidecar there", || async {
        service_entry(north, GREETING).await.is_some() && sidecar(north).await.is_some()
    })
    .await;

    // The Dependency gone: the Sidecars go, and greeting, which nothing calls any more,
    // leaves west and north and stays where it runs.
    west.delete(&dependency(&[])).await.unwrap();
    eventually(
        "Sidecars removed, greeting back to where it runs",
        || async {
            sidecar(west).await.is_none()
                && sidecar(north).await.is_none()
                && service_entry(west, GREETING).await.is_none()
                && service_entry(north, GREETING).await.is_none()
        },
    )
    .await;
    assert!(service_entry(east, GREETING).await.is_some());

    // What the API servers saw: federator's Sidecar created, updated, deleted in west;
    // never one in east; the user's Sidecar untouched; east never lost greeting.
    let seen = west_sidecars.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(_, name)| name == "sample/federator-deployment-web"),
        "only federator's Sidecar was written in west: {seen:?}"
    );
    assert_eq!(
        seen.first().map(|(t, _)| t.as_str()),
        Some("ADDED"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|(t, _)| t == "MODIFIED"), "{seen:?}");
    assert_eq!(
        seen.last().map(|(t, _)| t.as_str()),
        Some("DELETED"),
        "{seen:?}"
    );
    let api: Api<Sidecar> = Api::namespaced(west.client(), "sample");
    let user_now = api.get("team-default").await.unwrap();
    assert_eq!(
        user_now.metadata.resource_version, user_sidecar.metadata.resource_version,
        "the user's Sidecar was not touched"
    );
    assert!(
        east_sidecars.lock().unwrap().is_empty(),
        "no Sidecar in east"
    );
    assert!(
        !east_writes
            .lock()
            .unwrap()
            .iter()
            .any(|(t, name)| t == "DELETED" && name == GREETING),
        "east, where greeting runs, never lost it"
    );
    federator.stop().await;
}
