//! End to end against real API servers: hostile and broken cluster Secrets. A Secret may not
//! run commands unless allowed, no credential ever reaches an Event, a log line or a metric,
//! and a cluster that explodes in size takes nothing from the others.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use federator::clusters::{Allowance, KubeconfigPolicy};
use federator::istio::ServiceEntry;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use support::live::*;
use testenv::{TestCluster, TestEnv};

/// Everything federator logs in this test process, at debug level, from every crate.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .try_init();
        logs
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The value of a one-line `field` of a kubeconfig.
fn field_of(kubeconfig: &str, field: &str) -> String {
    let prefix = format!("{field}: ");
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .unwrap()
        .to_owned()
}

/// A cluster's admin token, from its kubeconfig.
fn token_of(kubeconfig: &str) -> String {
    field_of(kubeconfig, "token")
}

/// `kubeconfig` with its token replaced by an exec plugin running `script` (POSIX sh).
fn with_exec(kubeconfig: &str, script: &str, env: &[(&str, &str)]) -> String {
    let token = token_of(kubeconfig);
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{{name: {k}, value: '{v}'}}"))
        .collect();
    kubeconfig.replace(
        &format!("token: {token}"),
        &format!(
            "exec: {{apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, \
             args: ['-c', '{script}'], env: [{}]}}",
            env.join(", ")
        ),
    )
}

/// The ExecCredential a plugin prints for `token`, as a shell `printf` argument.
fn credential(token: &str) -> String {
    format!(
        "printf \"%s\" \"{{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1\\\",\
         \\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{{\\\"token\\\":\\\"{token}\\\"}}}}\""
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_plugin_runs_only_when_allowed_and_the_other_clusters_carry_on() {
    let env = fleet(&["config", "east", "west"], &["west"]).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    let marker = std::env::temp_dir().join(format!("federator-exec-marker-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let east = env.cluster("east").kubeconfig_text().unwrap();
    let script = format!(
        "touch {}; {}",
        marker.display(),
        credential(&token_of(&east))
    );
    let config = env.cluster("config");
    config
        .apply(&cluster_secret(
            "exec-east",
            &[("east", with_exec(&east, &script, &[]))],
        ))
        .await
        .unwrap();

    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;
    eventually("the exec Secret refused, naming the field", || {
        has_event(
            config,
            NAMESPACE,
            "exec-east",
            "InsecureClusterKubeconfig",
            "users[east-admin].user.exec is not allowed",
        )
    })
    .await;
    eventually("west federated regardless", || async {
        has_greeting(env.cluster("west")).await
    })
    .await;
    assert!(!marker.exists(), "the refused plugin must never run");
    assert!(
        !has_greeting(env.cluster("east")).await,
        "east is not registered"
    );
    federator.stop().await;

    let federator = Federator::start_with(&env, |o| {
        o.secrets.kubeconfig = KubeconfigPolicy::allowing([Allowance::Exec]);
    })
    .await;
    eventually(
        "east, reached with the plugin's token, gets west's host",
        || async { has_greeting(env.cluster("east")).await },
    )
    .await;
    assert!(marker.exists(), "the allowed plugin ran");
    let _ = std::fs::remove_file(&marker);
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_reaches_an_event_a_log_line_or_a_metric() {
    let logs = captured_logs();
    let env = TestEnv::start(&["config", "east"]).await.unwrap();
    prepare(env.cluster("east")).await;
    register(&env, &["east"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    let good = env.cluster("east").kubeconfig_text().unwrap();
    let token = token_of(&good);
    // Every broken Secret carries a string starting with PLANTED; none may come out.
    let indented = good.replace(
        &format!("    token: {token}"),
        "  token: PLANTED-indent-token\n      x: [PLANTED-indent-tail",
    );
    let failing_plugin = with_exec(
        &good,
        "echo PLANTED-stdout; echo PLANTED-stderr >&2; exit 3",
        &[("PLANTED_ENV", "PLANTED-env-value")],
    );
    let hanging_plugin = with_exec(
        &good,
        "sleep 60; echo PLANTED-late",
        &[("K", "PLANTED-env-2")],
    );
    // The config cluster's CA did not sign east's serving certificate.
    let other_ca = field_of(
        &env.cluster("config").kubeconfig_text().unwrap(),
        "certificate-authority-data",
    );
    let own_ca = field_of(&good, "certificate-authority-data");
    assert_ne!(own_ca, other_ca);
    let wrong_ca = good
        .replace(&token, "PLANTED-token-wrong-ca")
        .replace(&own_ca, &other_ca);
    let bad_key = good.replace(
        &format!("token: {token}"),
        "client-certificate-data: UExBTlRFRA==\n    client-key-data: PLANTED-not-base64!!",
    );
    let wrong_token = good.replace(&token, "PLANTED-wrong-token");
    let plain_http = good
        .replace("https://", "http://")
        .replace(&token, "PLANTED-http-token");
    let secrets = [
        ("indented", indented, "InvalidClusterKubeconfig", "line"),
        (
            "failing",
            failing_plugin,
            "ClusterUnreachable",
            "exit status 3",
        ),
        (
            "hanging",
            hanging_plugin,
            "ClusterUnreachable",
            "did not finish",
        ),
        ("wrongca", wrong_ca, "ClusterUnreachable", "certificate"),
        (
            "badkey",
            bad_key,
            "InvalidClusterKubeconfig",
            "client-key-data",
        ),
        ("wrongtoken", wrong_token, "ClusterUnreachable", "401"),
        (
            "plainhttp",
            plain_http,
            "InsecureClusterKubeconfig",
            "--allow-kubeconfig http",
        ),
    ];
    let config = env.cluster("config");
    for (name, kubeconfig, _, _) in &secrets {
        config
            .apply(&cluster_secret(
                &format!("s-{name}"),
                &[(name, kubeconfig.clone())],
            ))
            .await
            .unwrap();
    }
    let federator = Federator::start_with(&env, |o| {
        o.secrets.kubeconfig = KubeconfigPolicy::allowing([Allowance::Exec]);
        o.connect.exec_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    eventually("the good cluster federated", || async {
        has_greeting(env.cluster("east")).await
    })
    .await;
    for (name, _, reason, words) in &secrets {
        let secret = format!("s-{name}");
        // Shown when the test fails: what was reported.
        println!(
            "{secret}: {:?}",
            event_messages(config)
                .await
                .iter()
                .filter(|(n, _)| *n == secret)
                .collect::<Vec<_>>()
        );
        eventually(&format!("{secret}: {reason} mentioning {words:?}"), || {
            has_event(config, NAMESPACE, &secret, reason, words)
        })
        .await;
    }
    let metrics = federator.get("/metrics").await.1;
    federator.stop().await;

    let events = event_messages(config).await;
    for (object, message) in &events {
        assert!(
            !message.contains("PLANTED"),
            "Event on {object} leaks: {message}"
        );
        assert!(
            !message.contains(&token),
            "Event on {object} leaks the token: {message}"
        );
    }
    assert!(!metrics.contains("PLANTED"), "/metrics leaks");
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("s-indented"), "the log capture works");
    let leaking = logs
        .lines()
        .find(|l| l.contains("PLANTED") || l.contains(&token));
    assert_eq!(leaking, None, "a log line leaks a secret");
}

/// Whether federator wrote `prod.greeting.global` into `cluster`.
async fn has_greeting(cluster: &TestCluster) -> bool {
    service_entry(cluster, "prod.greeting.global")
        .await
        .is_some()
}

/// (object, message) of every Event in the federator namespace of `cluster`.
async fn event_messages(cluster: &TestCluster) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(cluster.client(), NAMESPACE);
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| {
                    (
                        e.involved_object.name.unwrap_or_default(),
                        e.message.unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_past_its_host_quota_changes_nothing_anywhere_else() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    for i in 0..3 {
        deploy(env.cluster("east"), &format!("app{i}"), 1, 0).await;
    }
    let federator = Federator::start_with(&env, |o| {
        o.settings.registry.max_hosts_per_cluster = 3;
    })
    .await;
    let west = env.cluster("west");
    // Both: their writers run at once, and east's first pass may end after west's.
    eventually("west and east have every host", || async {
        ses(west).await.len() == 4 && ses(env.cluster("east")).await.len() == 4
    })
    .await;

    // From here on, watch every write to west's and east's sync namespaces.
    let mut watches = Vec::new();
    for cluster in [west, env.cluster("east")] {
        let api: Api<ServiceEntry> = Api::namespaced(cluster.client(), "federator-sync");
        let version = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let stream = api
            .watch(&WatchParams::default(), &version)
            .await
            .unwrap()
            .boxed();
        watches.push((cluster.name().to_owned(), stream));
    }

    // east runs away: five more identities.
    for i in 3..8 {
        deploy(env.cluster("east"), &format!("app{i}"), 1, 0).await;
    }
    eventually("east's excess reported on its Secret", || {
        has_event(
            env.cluster("config"),
            NAMESPACE,
            "cluster-east",
            "HostQuotaExceeded",
            "are not exported",
        )
    })
    .await;
    // The Event tells when the cluster went past its quota; the gauge follows the count.
    eventually("all five held back", || async {
        federator
            .metric("federator_cluster_hosts_over_quota", &[("cluster", "east")])
            .await
            == 5.0
    })
    .await;
    // A write west would get for a new host would come with the registry change that
    // counted it; give the writers a moment beyond that anyway.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for (cluster, mut stream) in watches {
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await;
        match pending {
            Err(_) => {}
            Ok(Some(Ok(WatchEvent::Bookmark(_)))) | Ok(None) => {}
            Ok(other) => panic!("{cluster} saw a write: {other:?}"),
        }
    }
    assert_eq!(ses(west).await.len(), 4, "west keeps exactly its config");
    federator.stop().await;
}

/// Names of the ServiceEntries in a cluster's sync namespace.
async fn ses(cluster: &TestCluster) -> Vec<String> {
    let api: Api<ServiceEntry> = Api::namespaced(cluster.client(), "federator-sync");
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|s| s.metadata.name)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_whole_across_pages() {
    let env = TestEnv::start(&["east"]).await.unwrap();
    let east = env.cluster("east");
    east.create_namespace("paged").await.unwrap();
    for i in 0..23 {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("cm-{i:02}"));
        cm.metadata.namespace = Some("paged".into());
        east.apply(&cm).await.unwrap();
    }
    let api: Api<ConfigMap> = Api::namespaced(east.client(), "paged");
    let all = federator::sync::paged::list_in_pages(&api, &ListParams::default(), 5)
        .await
        .unwrap();
    let names: Vec<String> = all
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.starts_with("cm-"))
        .collect();
    assert_eq!(names.len(), 23, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_servfail_not_nxdomain_until_the_initial_sync() {
    let env = TestEnv::start(&["config", "east"]).await.unwrap();
    prepare(env.cluster("east")).await;
    register(&env, &["east"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    // A second cluster that never answers holds the initial sync for its whole timeout.
    let dead = env.cluster("east").kubeconfig_text().unwrap().replace(
        &format!("127.0.0.1:{}", env.cluster("east").port()),
        "127.0.0.1:1",
    );
    env.cluster("config")
        .apply(&cluster_secret("cluster-dead", &[("dead", dead)]))
        .await
        .unwrap();
    let mut options = Federator::options();
    options.initial_sync_timeout = std::time::Duration::from_secs(8);
    let federator = Federator::launch(&env, options).await;
    eventually("federator serving", || async {
        federator.get("/healthz").await.0 == 200
    })
    .await;
    assert_eq!(federator.get("/readyz").await.0, 503);
    let (status, answers) = dig(federator.dns, "prod.greeting.global", &[]).await;
    assert_eq!(status, "SERVFAIL", "before the initial sync: {answers:?}");
    let (status, _) = dig(federator.dns, "prod.nothing.global", &[]).await;
    assert_eq!(
        status, "SERVFAIL",
        "no negative answer to cache before the sync"
    );
    eventually("ready after the sync timeout", || async {
        federator.get("/readyz").await.0 == 200
    })
    .await;
    eventually("the host resolves", || async {
        dig(federator.dns, "prod.greeting.global", &[]).await.0 == "NOERROR"
    })
    .await;
    assert_eq!(
        dig(federator.dns, "prod.nothing.global", &[]).await.0,
        "NXDOMAIN"
    );
    federator.stop().await;
}
