//! federator with only the rights the Helm chart and `cluster add --create-service-account`
//! give it, on API servers that enforce RBAC, in clusters with real controllers: the
//! federation works, and the remote credentials cannot do more than federator needs.
//!
//! The config cluster gets the chart's ServiceAccount and Role (rendered by the real helm,
//! applied by the real kubectl); federator runs with a token of that ServiceAccount. The
//! dependent clusters are registered with `federator cluster add --create-service-account`;
//! their workloads are applied with kubectl from `examples/multicluster/workloads/`, and the
//! real EndpointSlice controller writes their endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use federator::access::{REMOTE_ACCOUNT, REMOTE_TOKEN_SECRET};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{DynamicObject, ListParams, PostParams};
use support::live::{self, NAMESPACE, eventually};
use support::replica::Replica;
use support::tools::{documents, federator_output, helm_template, kubectl};
use testenv::{TestCluster, TestEnv};

/// The east-west gateway address each cluster publishes.
fn gateway(cluster: &str) -> &'static str {
    if cluster == "east" {
        "203.0.113.10"
    } else {
        "203.0.113.20"
    }
}

/// Applies the chart's ServiceAccount and Role (and binding) to the config cluster, as
/// `helm install` would; returns the ServiceAccount's name.
fn install_chart_rbac(config: &TestCluster) -> String {
    let rendered = helm_template("federator", NAMESPACE, &[]).unwrap();
    let wanted: Vec<serde_json::Value> = documents(&rendered)
        .into_iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("ServiceAccount" | "Role" | "RoleBinding")
            )
        })
        .collect();
    let kinds: Vec<&str> = wanted.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds.len(),
        3,
        "the chart renders one ServiceAccount, Role and RoleBinding: {kinds:?}"
    );
    let account = wanted
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .unwrap()
        .to_owned();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": wanted});
    kubectl(
        config.kubeconfig(),
        &["apply", "-f", "-"],
        &list.to_string(),
    );
    account
}

/// Publishes the cluster's infrastructure (Istio's namespace, the gateway, kwok Nodes) and
/// the gateway's load-balancer address, from `examples/multicluster/clusters/`.
fn prepare(cluster: &TestCluster) {
    let examples = support::repo_root().join("examples/multicluster");
    let file = examples.join(format!("clusters/{}.yaml", cluster.name()));
    kubectl(
        cluster.kubeconfig(),
        &["apply", "-f", &file.to_string_lossy()],
        "",
    );
    let status = format!(
        r#"{{"status":{{"loadBalancer":{{"ingress":[{{"ip":"{}"}}]}}}}}}"#,
        gateway(cluster.name())
    );
    kubectl(
        cluster.kubeconfig(),
        &[
            "-n",
            "istio-system",
            "patch",
            "service",
            "istio-eastwestgateway",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
        "",
    );
}

/// `federator cluster add --create-service-account` for `cluster`: its printed Secret.
fn cluster_add(cluster: &TestCluster, sync_namespace: &str) -> std::process::Output {
    let kubeconfig = cluster.kubeconfig().to_string_lossy().into_owned();
    federator_output(&[
        "cluster",
        "add",
        "--kubeconfig",
        &kubeconfig,
        "--context",
        cluster.name(),
        "--namespace",
        NAMESPACE,
        "--sync-namespace",
        sync_namespace,
        "--create-service-account",
    ])
}

/// Registers `cluster` in the config cluster with a `federator-remote` token.
fn register(config: &TestCluster, cluster: &TestCluster) -> String {
    let output = cluster_add(cluster, "federator-sync");
    assert!(
        output.status.success(),
        "cluster add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secret = String::from_utf8(output.stdout).unwrap();
    assert!(
        !secret.contains(&live::admin_token(cluster)),
        "the registered Secret must not carry the admin's token"
    );
    kubectl(config.kubeconfig(), &["apply", "-f", "-"], &secret);
    secret
}

/// Writes `text` to a kubeconfig file in the environment's folder.
fn kubeconfig_file(env: &TestEnv, name: &str, text: &str) -> PathBuf {
    let path = env.dir().join(format!("{name}.kubeconfig"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federates_with_only_the_rights_of_the_chart_and_the_remote_accounts() {
    let env = TestEnv::start_with_controllers(&["config", "east", "west"])
        .await
        .unwrap();
    let config = env.cluster("config");
    config.create_namespace(NAMESPACE).await.unwrap();
    let account = install_chart_rbac(config);
    for name in ["east", "west"] {
        let cluster = env.cluster(name);
        prepare(cluster);
        register(config, cluster);
        let workloads =
            support::repo_root().join(format!("examples/multicluster/workloads/{name}.yaml"));
        kubectl(
            cluster.kubeconfig(),
            &["apply", "-f", &workloads.to_string_lossy()],
            "",
        );
    }
    let token_config = live::token_kubeconfig(config, NAMESPACE, &account).await;
    let path = kubeconfig_file(&env, "federator-sa", &token_config);
    let replica = Replica::start_as(&path, "federator-0", &[]);

    // greeting runs in both clusters: each cluster reaches its own two pods (addresses from
    // its Nodes' podCIDRs, written by the EndpointSlice controller) and the other cluster's
    // gateway.
    for (name, pods, other) in [("east", "10.1.", "west"), ("west", "10.2.", "east")] {
        let cluster = env.cluster(name);
        eventually(
            &format!("{name}'s ServiceEntry for prod.greeting.global"),
            || async {
                let found = live::endpoints(cluster, "prod.greeting.global").await;
                let local = found.iter().filter(|a| a.starts_with(pods)).count();
                local == 2 && found.iter().any(|a| a == gateway(other)) && found.len() == 3
            },
        )
        .await;
    }
    // catalog runs only in east: west reaches it through east's gateway.
    eventually("west's ServiceEntry for prod.catalog.global", || async {
        live::endpoints(env.cluster("west"), "prod.catalog.global").await
            == vec![gateway("east").to_owned()]
    })
    .await;

    // Every watch of every cluster is readable: /readyz lists no degraded kind.
    let (status, body) = replica.get("/readyz").await;
    assert_eq!((status, body.trim()), (200, "ok"), "{}", replica.log_text());
    let log = replica.log_text();
    // (Not "403": resource versions and addresses contain it.)
    let lower = log.to_lowercase();
    for refused in ["forbidden", "no read access", "grant "] {
        assert!(!lower.contains(refused), "a request was refused:\n{log}");
    }
    // Events, each through its token's rights: on a broken registration in the config
    // cluster, and on a shadowed policy in east.
    let broken = r#"{"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cluster-broken", "labels": {"federator.io/cluster": "true"}},
        "stringData": {"broken": "not a kubeconfig"}}"#;
    kubectl(
        config.kubeconfig(),
        &["-n", NAMESPACE, "apply", "-f", "-"],
        broken,
    );
    let policies: Vec<String> = ["greeting-a", "greeting-b"]
        .iter()
        .map(|name| {
            format!(
                r#"{{"apiVersion": "federator.io/v1alpha1", "kind": "GlobalTrafficPolicy",
                "metadata": {{"name": "{name}", "namespace": "shop"}},
                "spec": {{"identity": "greeting", "env": "prod"}}}}"#
            )
        })
        .collect();
    let east = env.cluster("east");
    for policy in &policies {
        kubectl(east.kubeconfig(), &["apply", "-f", "-"], policy);
    }
    eventually("an Event on the broken registration", || async {
        live::has_event(
            config,
            NAMESPACE,
            "cluster-broken",
            "InvalidClusterKubeconfig",
            "",
        )
        .await
    })
    .await;
    eventually("an Event on the shadowed policy in east", || async {
        let on = |name| live::has_event(east, "shop", name, "PolicyShadowed", "takes precedence");
        on("greeting-a").await || on("greeting-b").await
    })
    .await;

    // federator holds the lease (as the API server has it) and the state through the
    // chart's Role.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(config.client(), NAMESPACE);
    let lease = leases.get("federator-leader").await.unwrap();
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("federator-0")
    );
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(config.client(), NAMESPACE);
    assert!(
        maps.get_opt("federator-state").await.unwrap().is_some(),
        "the VIP table was stored"
    );
}

/// A client acting with `kubeconfig_text`'s credentials.
async fn client_for(text: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The status code of a refused request (0 when it was allowed).
fn refused<T>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Ok(_) => 0,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("not an API answer: {other}"),
    }
}

fn service_entry(namespace: &str) -> DynamicObject {
    let resource = kube::api::ApiResource::erase::<federator::istio::ServiceEntry>(&());
    let mut object = DynamicObject::new("probe", &resource).within(namespace);
    object.data = serde_json::json!({"spec": {"hosts": ["probe.example"], "resolution": "DNS", "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}});
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_and_chart_tokens_cannot_do_more_than_federator_needs() {
    let env = TestEnv::start_with_controllers(&["config", "east"])
        .await
        .unwrap();
    let (config, east) = (env.cluster("config"), env.cluster("east"));
    config.create_namespace(NAMESPACE).await.unwrap();
    let account = install_chart_rbac(config);

    // The remote token, from the Secret `cluster add` printed.
    let printed = register(config, east);
    let secret: Secret = serde_saphyr::from_str(&printed).unwrap();
    let remote_config = secret.string_data.unwrap().remove("east").unwrap();
    let remote = client_for(&remote_config).await;
    let resource = kube::api::ApiResource::erase::<federator::istio::ServiceEntry>(&());
    let in_ns = |ns: &str| Api::<DynamicObject>::namespaced_with(remote.clone(), ns, &resource);
    // Allowed: an Istio object in the sync namespace (the control that the token works).
    let created = in_ns("federator-sync")
        .create(&PostParams::default(), &service_entry("federator-sync"))
        .await;
    assert_eq!(
        refused(created),
        0,
        "writing in the sync namespace is what federator does"
    );
    // Refused: the same anywhere else, any Secret, and writes to what it only reads.
    east.create_namespace("shop").await.unwrap();
    assert_eq!(
        refused(
            in_ns("shop")
                .create(&PostParams::default(), &service_entry("shop"))
                .await
        ),
        403
    );
    let secrets = |ns: &str| Api::<Secret>::namespaced(remote.clone(), ns);
    assert_eq!(
        refused(secrets("federator-sync").list(&ListParams::default()).await),
        403
    );
    assert_eq!(
        refused(secrets("federator-sync").get(REMOTE_TOKEN_SECRET).await),
        403
    );
    assert_eq!(
        refused(
            Api::<Secret>::all(remote.clone())
                .list(&ListParams::default())
                .await
        ),
        403
    );
    let namespaces: Api<Namespace> = Api::all(remote.clone());
    assert_eq!(
        refused(namespaces.delete("shop", &Default::default()).await),
        403
    );
    let roles: Api<ClusterRole> = Api::all(remote.clone());
    assert_eq!(
        refused(
            roles
                .create(&PostParams::default(), &ClusterRole::default())
                .await
        ),
        403
    );

    // With the account already there (the chart's remote mode), `--use-service-account`
    // registers with the same token and creates nothing.
    let kubeconfig = east.kubeconfig().to_string_lossy().into_owned();
    let again = federator_output(&[
        "cluster",
        "add",
        "--kubeconfig",
        &kubeconfig,
        "--context",
        "east",
        "--use-service-account",
    ]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let again: Secret = serde_saphyr::from_str(&String::from_utf8(again.stdout).unwrap()).unwrap();
    assert_eq!(
        again.string_data.unwrap().remove("east").unwrap(),
        remote_config
    );

    // The chart's token on the config cluster: Secrets of its own namespace only.
    let chart_config = live::token_kubeconfig(config, NAMESPACE, &account).await;
    let chart = client_for(&chart_config).await;
    assert_eq!(
        refused(
            Api::<Secret>::namespaced(chart.clone(), NAMESPACE)
                .list(&ListParams::default())
                .await
        ),
        0
    );
    assert_eq!(
        refused(
            Api::<Secret>::namespaced(chart.clone(), "default")
                .list(&ListParams::default())
                .await
        ),
        403
    );
    assert_eq!(
        refused(
            Api::<Secret>::all(chart.clone())
                .list(&ListParams::default())
                .await
        ),
        403
    );
    assert_eq!(
        refused(
            Api::<Secret>::namespaced(chart.clone(), NAMESPACE)
                .create(&PostParams::default(), &Secret::default())
                .await
        ),
        403
    );

    // `cluster add` by someone without rights: every missing permission named, nothing made.
    let path = kubeconfig_file(&env, "east-remote", &remote_config);
    let output = federator_output(&[
        "cluster",
        "add",
        "--kubeconfig",
        &path.to_string_lossy(),
        "--context",
        "east",
        "--sync-namespace",
        "other-sync",
        "--create-service-account",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for missing in [
        "create namespaces (cluster-wide)",
        "create serviceaccounts in namespace other-sync",
        "create clusterroles.rbac.authorization.k8s.io (cluster-wide)",
        "nothing was changed",
    ] {
        assert!(stderr.contains(missing), "{missing:?} not in:\n{stderr}");
    }
    assert!(output.stdout.is_empty(), "no Secret printed");
    let admin_namespaces: Api<Namespace> = Api::all(east.client());
    assert!(
        admin_namespaces
            .get_opt("other-sync")
            .await
            .unwrap()
            .is_none(),
        "the namespace was not created"
    );
    // A name that cannot be a cluster name is refused before anything is created.
    let output = federator_output(&[
        "cluster",
        "add",
        "--kubeconfig",
        &east.kubeconfig().to_string_lossy(),
        "--context",
        "east",
        "--name",
        "Not_A_Label",
        "--sync-namespace",
        "named-sync",
        "--create-service-account",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pass --name"));
    assert!(
        admin_namespaces
            .get_opt("named-sync")
            .await
            .unwrap()
            .is_none(),
        "nothing was created for a registration that cannot happen"
    );
    let accounts: Api<ServiceAccount> = Api::all(east.client());
    let remote_accounts = accounts
        .list(&ListParams::default().fields(&format!("metadata.name={REMOTE_ACCOUNT}")))
        .await
        .unwrap();
    assert_eq!(
        remote_accounts.items.len(),
        1,
        "only the first registration's account exists"
    );
}
