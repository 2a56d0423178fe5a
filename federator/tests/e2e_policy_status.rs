//! The status of GlobalTrafficPolicies on real API servers (issue 13): what `kubectl get gtp
//! -o yaml` shows, read back from the API server, as policies arrive, shadow each other and
//! turn invalid.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use federator::crd::{GlobalTrafficPolicy, GlobalTrafficPolicySpec, PolicyMode, RegionWeight};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use support::live::*;

const GREETING: &str = "prod.greeting.global";

fn gtp(name: &str, env: Option<&str>, mode: PolicyMode) -> GlobalTrafficPolicy {
    let mut policy = GlobalTrafficPolicy::new(
        name,
        GlobalTrafficPolicySpec {
            identity: "greeting".into(),
            env: env.map(Into::into),
            mode,
            failover: match mode {
                PolicyMode::Failover => vec!["us-east-1".into(), "us-west-2".into()],
                _ => Vec::new(),
            },
            distribute: match mode {
                // 90, not 100: invalid.
                PolicyMode::Distribute => vec![RegionWeight {
                    region: "us-east-1".into(),
                    weight: 90,
                }],
                _ => Vec::new(),
            },
            outlier_detection: None,
        },
    );
    policy.metadata.namespace = Some("sample".into());
    policy
}

async fn read(cluster: &testenv::TestCluster, name: &str) -> GlobalTrafficPolicy {
    let api: Api<GlobalTrafficPolicy> = Api::namespaced(cluster.client(), "sample");
    api.get(name).await.unwrap()
}

fn condition(policy: &GlobalTrafficPolicy, type_: &str) -> Option<Condition> {
    policy
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

fn is(policy: &GlobalTrafficPolicy, type_: &str, status: &str, reason: &str) -> bool {
    condition(policy, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

fn hosts(policy: &GlobalTrafficPolicy) -> Vec<String> {
    policy
        .status
        .as_ref()
        .map(|s| s.hosts.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_status_follows_shadowing_and_validity() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(east, "greeting", 1, 0).await;
    west.create_namespace("sample").await.unwrap();
    east.apply(&gtp("all-envs", None, PolicyMode::Failover))
        .await
        .unwrap();
    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;

    // Alone, it is accepted, in conflict with nothing, and governs greeting.
    eventually("all-envs accepted and governing greeting", || async {
        let p = read(east, "all-envs").await;
        is(&p, "Accepted", "True", "Valid")
            && is(&p, "Conflicted", "False", "NoConflict")
            && hosts(&p) == [GREETING]
    })
    .await;
    let first = read(east, "all-envs").await;
    let status = first.status.clone().unwrap();
    assert_eq!(status.observed_generation, first.metadata.generation);
    let accepted_since = condition(&first, "Accepted").unwrap().last_transition_time;
    let managers: Vec<_> = first
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("federator".to_owned(), "Apply".to_owned())],
        "written by server-side apply on the status subresource"
    );

    // A policy naming the env, in another cluster, takes precedence.
    west.apply(&gtp("prod-only", Some("prod"), PolicyMode::Topology))
        .await
        .unwrap();
    eventually("all-envs shadowed by prod-only", || async {
        let p = read(east, "all-envs").await;
        is(&p, "Conflicted", "True", "Shadowed") && hosts(&p).is_empty()
    })
    .await;
    let shadowed = read(east, "all-envs").await;
    let message = condition(&shadowed, "Conflicted").unwrap().message;
    assert!(
        message.contains("sample/prod-only in cluster west") && message.contains(GREETING),
        "{message}"
    );
    assert_eq!(
        condition(&shadowed, "Accepted")
            .unwrap()
            .last_transition_time,
        accepted_since,
        "Accepted did not change, so neither did its transition time"
    );
    eventually("prod-only governs greeting", || async {
        let p = read(west, "prod-only").await;
        is(&p, "Accepted", "True", "Valid") && hosts(&p) == [GREETING]
    })
    .await;

    // prod-only turns invalid: it is refused, and all-envs is in force again.
    west.apply(&gtp("prod-only", Some("prod"), PolicyMode::Distribute))
        .await
        .unwrap();
    eventually("prod-only invalid, all-envs back", || async {
        let invalid = read(west, "prod-only").await;
        let back = read(east, "all-envs").await;
        is(&invalid, "Accepted", "False", "Invalid")
            && is(&invalid, "Conflicted", "True", "Invalid")
            && invalid.status.as_ref().unwrap().observed_generation == invalid.metadata.generation
            && is(&back, "Conflicted", "False", "NoConflict")
            && hosts(&back) == [GREETING]
    })
    .await;
    let invalid = read(west, "prod-only").await;
    let message = condition(&invalid, "Accepted").unwrap().message;
    assert!(message.contains("summing to 100, got 90"), "{message}");
    federator.stop().await;
}
