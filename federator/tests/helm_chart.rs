//! The Helm chart in `helm/federator/`: it lints, renders what an operator expects (a
//! hardened Deployment with leader election, least-privilege RBAC in one namespace, DNS on
//! port 53), passes only flags `federator run` has, is accepted by a real API server
//! (server-side dry run), refuses bad values with a message naming them, and ships the
//! repository's CRDs unchanged.
//!
//! helm and kubectl come from `tests/testenv/setup.sh` (`.cache/bin/`).

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

mod support;

use serde_json::{Value, json};
use support::tools::helm;
use testenv::{Binaries, KUBERNETES_VERSION, TestEnv};

/// The release name: the objects are then called `federator` (the release name contains the
/// chart name).
const RELEASE: &str = "federator";
/// The release namespace of controller mode.
const NAMESPACE: &str = "federator";
/// The sync namespace, where remote mode installs.
const SYNC_NAMESPACE: &str = "federator-sync";

/// One replica without an election, with a fixed ClusterIP for the DNS Service.
const SINGLE_REPLICA: &[&str] = &[
    "--set",
    "replicas=1",
    "--set",
    "leaderElection.enabled=false",
    "--set",
    "dns.service.clusterIP=10.96.0.53",
];

/// Every value changed from its default (and every optional object turned on or off).
const NON_DEFAULT_VALUES: &str = r#"
replicas: 3
logFormat: json
logFilter: info,federator=debug
image:
  repository: registry.example.com/platform/federator
  tag: 0.1.0-rc.1
  pullPolicy: Always
imagePullSecrets:
  - name: registry-credentials
serviceAccount:
  create: true
  name: federator-controller
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/federator
leaderElection:
  enabled: true
  leaseName: federator-prod-leader
  leaseDuration: 30s
  renewDeadline: 20s
  retryPeriod: 4s
store:
  type: etcd
  name: unused-with-etcd
  etcd:
    endpoints: ["etcd-0.etcd.storage:2379", "etcd-1.etcd.storage:2379"]
    prefix: /federator/prod/
    tls:
      secretName: federator-etcd-client
federation:
  hostSuffix: mesh.example
  vipRange: 240.1.0.0/16
  syncNamespace: istio-federation
  istioNamespace: istio-system
  eastwestGateway: false
  onUnreachable: withdraw
  cleanupOnRemove: true
dns:
  enabled: false
api:
  enabled: true
  tls:
    secretName: federator-api-tls
    clientAuth: true
service:
  type: ClusterIP
  annotations:
    example.com/owner: platform
serviceMonitor:
  enabled: true
  interval: 15s
  labels:
    release: prometheus
resources:
  requests:
    cpu: 200m
    memory: 256Mi
  limits:
    cpu: "2"
    memory: 1Gi
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: node-role.example.com/platform, operator: Exists}
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - {key: dedicated, operator: Equal, value: platform, effect: NoSchedule}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        app.kubernetes.io/name: federator
priorityClassName: platform-critical
podAnnotations:
  example.com/scrape: "true"
podLabels:
  team: platform
extraArgs:
  - --stale-after=5m
  - --removal-grace=1m
"#;

fn chart() -> PathBuf {
    Binaries::repo_root().join("helm/federator")
}

/// The non-default values, as a file helm can read (kept while the handle lives).
fn non_default_values() -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(NON_DEFAULT_VALUES.as_bytes()).unwrap();
    file
}

/// `helm template` of the chart into `namespace` with `args` (`--set`, `-f`).
fn template(namespace: &str, args: &[&str]) -> Result<String, String> {
    support::tools::helm_template(RELEASE, namespace, args)
}

fn render(namespace: &str, args: &[&str]) -> Vec<Value> {
    support::tools::documents(
        &template(namespace, args).unwrap_or_else(|e| panic!("helm template failed: {e}")),
    )
}

/// `(kind, name)` of every object.
fn kinds(objects: &[Value]) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_owned(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(objects)))
}

fn has_kind(objects: &[Value], kind: &str) -> bool {
    objects.iter().any(|o| o["kind"] == kind)
}

/// The federator container of the Deployment.
fn container(objects: &[Value]) -> &Value {
    &find(objects, "Deployment", RELEASE)["spec"]["template"]["spec"]["containers"][0]
}

fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|a| a.as_str().expect("args are strings").to_owned())
        .collect()
}

fn assert_has_args(args: &[String], expected: &[&str]) {
    for arg in expected {
        assert!(
            args.iter().any(|a| a == arg),
            "{arg} missing from the args {args:?}"
        );
    }
}

fn assert_lacks_args(args: &[String], prefixes: &[&str]) {
    for prefix in prefixes {
        assert!(
            !args.iter().any(|a| a.starts_with(prefix)),
            "{prefix} should not be in the args {args:?}"
        );
    }
}

/// The Role's rules in the controller's namespace, as the API would hold them.
fn role_rules(objects: &[Value]) -> &Value {
    &find(objects, "Role", RELEASE)["rules"]
}

#[test]
fn the_chart_lints_in_every_mode() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let values = non_default_values();
    let common = [
        "lint",
        chart,
        "--strict",
        "--kube-version",
        KUBERNETES_VERSION,
    ];
    let cases: [(&str, Vec<&str>); 3] = [
        ("default values", vec!["--namespace", NAMESPACE]),
        (
            "non-default values",
            vec![
                "--namespace",
                NAMESPACE,
                "-f",
                values.path().to_str().unwrap(),
            ],
        ),
        (
            "mode=remote",
            vec!["--namespace", SYNC_NAMESPACE, "--set", "mode=remote"],
        ),
    ];
    for (what, extra) in cases {
        let mut args = common.to_vec();
        args.extend(extra);
        if let Err(err) = helm(&args) {
            panic!("helm lint fails with {what}:\n{err}");
        }
    }
}

#[test]
fn the_default_render_is_a_hardened_controller_with_least_privilege() {
    let objects = render(NAMESPACE, &[]);
    let expected: BTreeSet<(String, String)> = [
        ("Deployment", RELEASE),
        ("ServiceAccount", RELEASE),
        ("Role", RELEASE),
        ("RoleBinding", RELEASE),
        ("Service", RELEASE),
        ("Service", "federator-dns"),
        ("PodDisruptionBudget", RELEASE),
    ]
    .iter()
    .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(kinds(&objects), expected);
    for object in &objects {
        assert!(
            object["metadata"]["namespace"] == NAMESPACE,
            "every object is in the release namespace: {object}"
        );
        let labels = &object["metadata"]["labels"];
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/component",
        ] {
            assert!(labels[key].is_string(), "{key} missing on {object}");
        }
    }

    let deployment = find(&objects, "Deployment", RELEASE);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], RELEASE);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod:#}");
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["runAsGroup"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["topologyKey"],
        "kubernetes.io/hostname",
        "replicas prefer different nodes: {pod:#}"
    );
    let container = container(&objects);
    assert_eq!(container["image"], "federator:0.1.0");
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        container["livenessProbe"]["httpGet"]["port"],
        "http-metrics"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["port"],
        "http-metrics"
    );
    assert!(container["startupProbe"]["httpGet"]["path"].is_string());
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    );
    let ports: BTreeSet<(String, i64, String)> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_i64().unwrap(),
                p["protocol"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("dns-tcp".to_owned(), 5353, "TCP".to_owned()),
            ("dns-udp".to_owned(), 5353, "UDP".to_owned()),
            ("http-metrics".to_owned(), 9090, "TCP".to_owned()),
        ]
        .into()
    );
    // The read-only root file system leaves /tmp writable.
    assert!(
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/tmp"),
        "{container:#}"
    );
    let env: Vec<&Value> = container["env"].as_array().unwrap().iter().collect();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert!(
            env.iter()
                .any(|e| e["name"] == name && e["valueFrom"]["fieldRef"]["fieldPath"] == field),
            "{name} from {field} missing: {env:?}"
        );
    }

    let args = args(&objects);
    assert_eq!(args[0], "run");
    assert_has_args(
        &args,
        &[
            "--namespace=federator",
            "--metrics-addr=0.0.0.0:9090",
            "--dns-listen=0.0.0.0:5353",
            "--dns-ttl=5s",
            "--leader-election=lease",
            "--lease-name=federator-leader",
            "--lease-duration=15s",
            "--renew-deadline=10s",
            "--retry-period=2s",
            "--store=embedded",
            "--state-name=federator-state",
            "--host-suffix=global",
            "--vip-range=240.0.0.0/16",
            "--sync-namespace=federator-sync",
            "--istio-namespace=istio-system",
            "--on-unreachable=keep",
        ],
    );
    assert_lacks_args(
        &args,
        &[
            "--no-dns",
            "--grpc",
            "--etcd",
            "--cleanup-on-remove",
            "--no-eastwest",
        ],
    );

    // Exactly what federator does in the config cluster, in this namespace only.
    assert_eq!(
        role_rules(&objects),
        &json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["configmaps"],
             "resourceNames": ["federator-state"], "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["federator-leader"], "verbs": ["get", "update"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    let binding = find(&objects, "RoleBinding", RELEASE);
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
    );
    assert!(!has_kind(&objects, "ClusterRole"));
    assert!(!has_kind(&objects, "ClusterRoleBinding"));

    let dns = find(&objects, "Service", "federator-dns");
    assert_eq!(dns["spec"]["type"], "ClusterIP");
    assert_eq!(
        dns["spec"]["ports"],
        json!([
            {"name": "dns-udp", "port": 53, "targetPort": "dns-udp", "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"},
        ])
    );
    let service = find(&objects, "Service", RELEASE);
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http-metrics", "port": 9090, "targetPort": "http-metrics", "protocol": "TCP"}])
    );
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(&dns["spec"]["selector"], selector);
    assert_eq!(&service["spec"]["selector"], selector);
    let pdb = find(&objects, "PodDisruptionBudget", RELEASE);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);
}

#[test]
fn every_value_reaches_the_objects() {
    let values = non_default_values();
    let objects = render(NAMESPACE, &["-f", values.path().to_str().unwrap()]);
    let deployment = find(&objects, "Deployment", RELEASE);
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "federator-controller");
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "registry-credentials"}])
    );
    assert_eq!(pod["priorityClassName"], "platform-critical");
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    // A given affinity replaces the default anti-affinity.
    assert!(pod["affinity"]["nodeAffinity"].is_object(), "{pod:#}");
    assert!(pod["affinity"]["podAntiAffinity"].is_null(), "{pod:#}");
    let template = &deployment["spec"]["template"]["metadata"];
    assert_eq!(template["labels"]["team"], "platform");
    assert_eq!(template["annotations"]["example.com/scrape"], "true");
    let container = container(&objects);
    assert_eq!(
        container["image"],
        "registry.example.com/platform/federator:0.1.0-rc.1"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "FEDERATOR_LOG" && e["value"] == "info,federator=debug")
    );

    let args = args(&objects);
    assert_has_args(
        &args,
        &[
            "--log-format=json",
            "--no-dns",
            "--grpc-addr=0.0.0.0:9091",
            "--grpc-tls-cert-file=/etc/federator/api-tls/tls.crt",
            "--grpc-tls-key-file=/etc/federator/api-tls/tls.key",
            "--grpc-client-ca-file=/etc/federator/api-tls/ca.crt",
            "--leader-election=lease",
            "--lease-name=federator-prod-leader",
            "--lease-duration=30s",
            "--renew-deadline=20s",
            "--retry-period=4s",
            "--store=etcd://etcd-0.etcd.storage:2379,etcd-1.etcd.storage:2379",
            "--etcd-prefix=/federator/prod/",
            "--etcd-ca-file=/etc/federator/etcd-tls/ca.crt",
            "--etcd-cert-file=/etc/federator/etcd-tls/tls.crt",
            "--etcd-key-file=/etc/federator/etcd-tls/tls.key",
            "--host-suffix=mesh.example",
            "--vip-range=240.1.0.0/16",
            "--sync-namespace=istio-federation",
            "--no-eastwest-gateway",
            "--on-unreachable=withdraw",
            "--cleanup-on-remove",
        ],
    );
    assert_lacks_args(&args, &["--dns-listen", "--dns-ttl", "--state-name"]);
    assert_eq!(
        args[args.len() - 2..],
        ["--stale-after=5m", "--removal-grace=1m"],
        "extraArgs come last"
    );
    let volumes = &pod["volumes"];
    for (volume, secret) in [
        ("api-tls", "federator-api-tls"),
        ("etcd-tls", "federator-etcd-client"),
    ] {
        assert!(
            volumes
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == volume && v["secret"]["secretName"] == secret),
            "{volume} from Secret {secret} missing: {volumes:#}"
        );
    }

    // With etcd the VIP table and the election live in etcd: no ConfigMap, no Lease.
    assert_eq!(
        role_rules(&objects),
        &json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    let account = find(&objects, "ServiceAccount", "federator-controller");
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/federator"
    );
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "Service" && o["metadata"]["name"] == "federator-dns"),
        "no DNS Service without DNS"
    );
    let service = find(&objects, "Service", RELEASE);
    assert_eq!(
        service["metadata"]["annotations"]["example.com/owner"],
        "platform"
    );
    assert_eq!(
        service["spec"]["ports"][1],
        json!({"name": "grpc", "port": 9091, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"})
    );
    let monitor = find(&objects, "ServiceMonitor", RELEASE);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(
        find(&objects, "PodDisruptionBudget", RELEASE)["spec"]["maxUnavailable"],
        1
    );

    // One replica without an election: no Lease rules, no PodDisruptionBudget; a fixed
    // ClusterIP for the DNS Service.
    let single = render(NAMESPACE, SINGLE_REPLICA);
    let args = self::args(&single);
    assert_has_args(&args, &["--leader-election=none"]);
    assert_lacks_args(&args, &["--lease"]);
    assert!(!has_kind(&single, "PodDisruptionBudget"));
    assert!(
        !role_rules(&single)
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["apiGroups"][0] == "coordination.k8s.io"),
        "no Lease without an election"
    );
    assert_eq!(
        find(&single, "Service", "federator-dns")["spec"]["clusterIP"],
        "10.96.0.53"
    );
}

/// What `federator run --help` lists, so the chart never passes a flag the binary lacks.
#[test]
fn every_flag_the_chart_passes_exists() {
    let output = support::tools::federator_output(&["run", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let known: BTreeSet<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(known.contains("--namespace"), "{known:?}");
    let values = non_default_values();
    let renders = [
        render(NAMESPACE, &[]),
        render(NAMESPACE, &["-f", values.path().to_str().unwrap()]),
        render(
            NAMESPACE,
            &[
                "--set",
                "replicas=1",
                "--set",
                "leaderElection.enabled=false",
            ],
        ),
        render(
            NAMESPACE,
            &[
                "--set",
                "leaderElection.shard=true",
                "--set",
                "store.type=etcd",
                "--set",
                "store.etcd.endpoints={etcd:2379}",
            ],
        ),
    ];
    let shard = args(&renders[3]);
    assert_has_args(
        &shard,
        &["--leader-election=shard", "--store=etcd://etcd:2379"],
    );
    let mut checked = BTreeSet::new();
    for objects in &renders {
        for arg in args(objects).iter().filter(|a| a.starts_with("--")) {
            let flag = arg.split('=').next().unwrap().to_owned();
            assert!(
                known.contains(flag.as_str()),
                "the chart passes {arg}, but `federator run` has no {flag}:\n{help}"
            );
            checked.insert(flag);
        }
    }
    assert!(checked.len() > 25, "{checked:?}");
}

#[test]
fn remote_mode_is_the_service_account_and_rbac_of_a_dependent_cluster() {
    let objects = render(SYNC_NAMESPACE, &["--set", "mode=remote"]);
    // Exactly what `federator cluster add --create-service-account` creates.
    let created = federator::access::RemoteAccess {
        sync_namespace: SYNC_NAMESPACE.into(),
    }
    .objects();
    let rust: Vec<Value> = vec![
        serde_json::to_value(&created.service_account).unwrap(),
        serde_json::to_value(&created.token).unwrap(),
        serde_json::to_value(&created.cluster_role).unwrap(),
        serde_json::to_value(&created.cluster_role_binding).unwrap(),
        serde_json::to_value(&created.role).unwrap(),
        serde_json::to_value(&created.role_binding).unwrap(),
    ];
    let kinds_of = |objects: &[Value]| -> BTreeSet<(String, String)> {
        objects
            .iter()
            .map(|o| {
                let kind = o["kind"].as_str().unwrap_or_default().to_owned();
                (kind, o["metadata"]["name"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let with_kinds: Vec<Value> = rust
        .iter()
        .zip([
            "ServiceAccount",
            "Secret",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ])
        .map(|(o, kind)| {
            let mut o = o.clone();
            o["kind"] = kind.into();
            o
        })
        .collect();
    assert_eq!(kinds(&objects), kinds_of(&with_kinds), "kinds and names");
    for expected in &with_kinds {
        let kind = expected["kind"].as_str().unwrap();
        let name = expected["metadata"]["name"].as_str().unwrap();
        let chart = find(&objects, kind, name);
        assert_eq!(
            chart["metadata"]["namespace"], expected["metadata"]["namespace"],
            "{kind} {name}: namespace"
        );
        for field in ["rules", "subjects", "roleRef", "type"] {
            assert_eq!(
                chart[field], expected[field],
                "{kind} {name}: the chart's {field} differs from federator::access (rules.rs, remote.rs)"
            );
        }
        assert_eq!(
            chart["metadata"]["annotations"]["kubernetes.io/service-account.name"],
            expected["metadata"]["annotations"]["kubernetes.io/service-account.name"],
            "{kind} {name}: the token's account"
        );
    }
    assert!(!has_kind(&objects, "Deployment"));
}

/// `kubectl apply --dry-run=server` of `rendered`: the API server validates every object
/// (schemas, unknown fields, RBAC references) without keeping any.
fn dry_run(env: &TestEnv, what: &str, rendered: &str) {
    let cache = env.dir().join("kubectl-cache");
    let output = support::tools::kubectl_output(
        env.cluster("config").kubeconfig(),
        &[
            "--cache-dir",
            &cache.to_string_lossy(),
            "apply",
            "--dry-run=server",
            "-f",
            "-",
        ],
        rendered,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the API server refuses the {what} chart:\n{stderr}\n{stdout}"
    );
    let applied = stdout
        .lines()
        .filter(|l| l.ends_with("(server dry run)"))
        .count();
    assert_eq!(
        applied,
        support::tools::documents(rendered).len(),
        "every object of the {what} chart is accepted:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_api_server_accepts_every_rendered_object() {
    let env = TestEnv::start(&["config"]).await.unwrap();
    let cluster = env.cluster("config");
    cluster.create_namespace(NAMESPACE).await.unwrap();
    cluster.create_namespace(SYNC_NAMESPACE).await.unwrap();

    dry_run(&env, "default", &template(NAMESPACE, &[]).unwrap());
    dry_run(
        &env,
        "single-replica with a fixed DNS ClusterIP",
        &template(NAMESPACE, SINGLE_REPLICA).unwrap(),
    );
    // Without the ServiceMonitor: the test API server has no prometheus-operator CRDs.
    let values = non_default_values();
    dry_run(
        &env,
        "non-default",
        &template(
            NAMESPACE,
            &[
                "-f",
                values.path().to_str().unwrap(),
                "--set",
                "serviceMonitor.enabled=false",
            ],
        )
        .unwrap(),
    );
    dry_run(
        &env,
        "remote",
        &template(SYNC_NAMESPACE, &["--set", "mode=remote"]).unwrap(),
    );
}

#[test]
fn bad_values_fail_naming_the_value() {
    let cases: [(&[&str], &str, &[&str]); 8] = [
        (
            &["--set", "leaderElection.shard=true"],
            NAMESPACE,
            &["leaderElection.shard", "store.type=etcd"],
        ),
        (&["--set", "replicas=two"], NAMESPACE, &["replicas"]),
        (&["--set", "unknownKey=1"], NAMESPACE, &["unknownKey"]),
        (&["--set", "dns.unknownKey=1"], NAMESPACE, &["unknownKey"]),
        (
            &[
                "--set",
                "leaderElection.enabled=false",
                "--set",
                "replicas=2",
            ],
            NAMESPACE,
            &["leaderElection.enabled", "replicas"],
        ),
        (
            &["--set", "store.type=etcd"],
            NAMESPACE,
            &["store.etcd.endpoints"],
        ),
        (
            &["--set", "leaderElection.leaseDuration=15sec"],
            NAMESPACE,
            &["leaseDuration"],
        ),
        (
            &["--set", "mode=remote"],
            "default",
            &["federation.syncNamespace", "-n federator-sync"],
        ),
    ];
    for (args, namespace, mentions) in cases {
        match template(namespace, args) {
            Ok(rendered) => panic!("{args:?} renders instead of failing:\n{rendered}"),
            Err(err) => {
                for mention in mentions {
                    assert!(
                        err.contains(mention),
                        "the failure of {args:?} does not mention {mention}:\n{err}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_chart_ships_the_repository_crds_unchanged() {
    let root = Binaries::repo_root();
    let files = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let source = root.join("crds");
    let shipped = chart().join("crds");
    let hint = "copy them: cp crds/*.yaml helm/federator/crds/";
    assert_eq!(
        files(&shipped),
        files(&source),
        "helm/federator/crds/ must hold the same files as crds/; {hint}"
    );
    for name in files(&source) {
        assert!(
            std::fs::read(source.join(&name)).unwrap()
                == std::fs::read(shipped.join(&name)).unwrap(),
            "helm/federator/crds/{name} differs from crds/{name}; {hint}"
        );
    }
}
