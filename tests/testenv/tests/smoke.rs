//! The test environment starts real, independent clusters and leaves nothing behind.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;
use testenv::{TestEnv, is_listening, objects};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_independent_clusters_start_and_stop_cleanly() {
    let started = Instant::now();
    let mut env = TestEnv::start(&["config", "east", "west"]).await.unwrap();
    eprintln!("three clusters ready in {:?}", started.elapsed());

    // An object written through east's kubeconfig exists in east only.
    let east = env.cluster("east");
    east.create_namespace("sample").await.unwrap();
    east.apply(&objects::service("sample", "greeting", &[("http", 8080)]))
        .await
        .unwrap();
    let listed = |cluster: &str| {
        let client = env.cluster(cluster).client();
        async move {
            let api: Api<Service> = Api::all(client);
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|s| s.metadata.name)
                .filter(|n| n == "greeting")
                .count()
        }
    };
    assert_eq!(listed("east").await, 1);
    assert_eq!(listed("config").await, 0);
    assert_eq!(listed("west").await, 0);

    // The kubeconfig file alone is enough to talk to the cluster, as federator will.
    let kubeconfig = kube::config::Kubeconfig::read_from(env.cluster("west").kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let west = kube::Client::try_from(config).unwrap();
    let version = west.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, testenv::KUBERNETES_VERSION);

    // Federator's CRDs and the Istio ones it writes are established everywhere.
    for cluster in env.clusters() {
        let client = cluster.client();
        for resource in [
            kube::api::ApiResource::erase::<federator_crd_probe::GlobalTrafficPolicy>(&()),
            kube::api::ApiResource::erase::<federator_crd_probe::ServiceEntry>(&()),
            kube::api::ApiResource::erase::<federator_crd_probe::DestinationRule>(&()),
        ] {
            let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
            api.list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("{} in {}: {e}", resource.kind, cluster.name()));
        }
    }

    // Dropping (or stopping) the environment leaves no process and no listener.
    let ports = env.ports();
    let pids = env.pids();
    assert!(ports.iter().all(|p| is_listening(*p)));
    env.stop();
    drop(env);
    for port in ports {
        assert!(!is_listening(port), "port {port} still listening");
    }
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still running"
        );
    }
}

/// The resource coordinates of the CRDs the environment installs, spelled out here so the
/// test does not depend on federator's types.
mod federator_crd_probe {
    use kube::CustomResource;
    use serde::{Deserialize, Serialize};

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kube(
        group = "federator.io",
        version = "v1alpha1",
        kind = "GlobalTrafficPolicy",
        namespaced,
        schema = "disabled"
    )]
    pub struct GtpSpec {}

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kube(
        group = "networking.istio.io",
        version = "v1",
        kind = "ServiceEntry",
        namespaced,
        schema = "disabled"
    )]
    pub struct SeSpec {}

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kube(
        group = "networking.istio.io",
        version = "v1",
        kind = "DestinationRule",
        namespaced,
        schema = "disabled"
    )]
    pub struct DrSpec {}
}

#[tokio::test]
async fn a_server_that_dies_while_starting_is_reported_with_its_log() {
    let real = testenv::Binaries::locate().unwrap();
    let broken = testenv::Binaries::check("/bin/false".into(), real.etcd.clone()).unwrap();
    let dir = std::env::temp_dir().join(format!("federator-testenv-broken-{}", std::process::id()));
    let err = TestEnv::start_with(&broken, &dir, &["east"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("kube-apiserver of cluster east exited during start-up (exit status: 1)"),
        "{err}"
    );
    assert!(err.contains("east-apiserver.log"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
