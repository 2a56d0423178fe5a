//! Admiral's `admiral.io/v1alpha1` GlobalTrafficPolicy and Dependency, read as they are, so
//! a team moves from Admiral without rewriting them. What has no equivalent in federator is
//! named (and reported on the object); a federator.io policy for the same host wins.

use std::collections::{BTreeMap, BTreeSet};

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    IngestConfig, IngestError, Ingested, created, derive_env, derive_identity, object_key,
};
use crate::istio::OutlierDetection;
use crate::model::{
    LocalityMode, Object, PolicyInfo, PolicySource, TrafficPolicy, validate_identity,
};

/// Admiral's GlobalTrafficPolicy, as far as federator reads it. Schema-less: the CRD is
/// Admiral's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "admiral.io",
    version = "v1alpha1",
    kind = "GlobalTrafficPolicy",
    root = "AdmiralGlobalTrafficPolicy",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AdmiralGlobalTrafficPolicySpec {
    /// One policy per DNS prefix.
    #[serde(default)]
    pub policy: Vec<AdmiralTrafficPolicy>,
    /// Older Admiral: `identity` and `env` of the workloads governed.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

/// One of an Admiral policy's entries.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmiralTrafficPolicy {
    /// `default` (or the env) for the host itself; anything else asks for an extra host.
    #[serde(default)]
    pub dns_prefix: Option<String>,
    /// Deprecated full name of the host.
    #[serde(default)]
    pub dns: Option<String>,
    /// `0`/`TOPOLOGY` or `1`/`FAILOVER`.
    #[serde(default)]
    pub lb_type: Option<serde_json::Value>,
    /// Regions and their weights (FAILOVER).
    #[serde(default)]
    pub target: Vec<AdmiralTarget>,
    /// Seconds and counts, as Admiral spells them.
    #[serde(default)]
    pub outlier_detection: Option<AdmiralOutlierDetection>,
}

/// A region and its weight.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AdmiralTarget {
    /// Region name.
    #[serde(default)]
    pub region: String,
    /// Percent of traffic.
    #[serde(default)]
    pub weight: i64,
}

/// Admiral's outlier detection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmiralOutlierDetection {
    /// Seconds.
    #[serde(default)]
    pub base_ejection_time: Option<i64>,
    /// Seconds.
    #[serde(default)]
    pub interval: Option<i64>,
    /// Gateway errors (502, 503, 504) before ejection.
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
}

/// Admiral's Dependency. Schema-less: the CRD is Admiral's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "admiral.io",
    version = "v1alpha1",
    kind = "Dependency",
    root = "AdmiralDependency",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AdmiralDependencySpec {
    /// Identity of the caller.
    #[serde(default)]
    pub source: String,
    /// The label holding identities (federator reads its own identity keys instead).
    #[serde(default)]
    pub identity_label: Option<String>,
    /// Identities it calls.
    #[serde(default)]
    pub destinations: Vec<String>,
}

/// An Admiral GlobalTrafficPolicy as federator's policy. Like Admiral, it governs the
/// workloads whose identity its labels (or `spec.selector`) name, in the env they name
/// (else the default env); its `default` entry is the policy, and other `dnsPrefix` entries,
/// which ask Admiral for extra hosts, are named as ignored.
pub fn admiral_policy(
    gtp: &AdmiralGlobalTrafficPolicy,
    config: &IngestConfig,
) -> Result<Ingested, IngestError> {
    let key = object_key("GlobalTrafficPolicy", &gtp.metadata)?;
    let fail = |reason: String| IngestError::new("GlobalTrafficPolicy", &key, reason);
    let selector = &gtp.spec.selector;
    let identity = match derive_identity(&config.identity, &gtp.metadata, &gtp.metadata)
        .map_err(|r| fail(r.to_string()))?
    {
        Some(identity) => identity,
        None => selector
            .get("identity")
            .map(|i| i.to_ascii_lowercase())
            .ok_or_else(|| {
                fail("no identity label (or spec.selector.identity) names what it governs".into())
            })?,
    };
    validate_identity(&identity).map_err(|r| fail(format!("identity {identity:?}: {r}")))?;
    let env = match selector.get("env") {
        Some(env) if !has_env(config, &gtp.metadata) => env.to_ascii_lowercase(),
        _ => derive_env(&config.identity, &gtp.metadata, &gtp.metadata)
            .map_err(|r| fail(r.to_string()))?,
    };
    let mut ignored = Vec::new();
    let mut chosen = None;
    for (index, entry) in gtp.spec.policy.iter().enumerate() {
        let prefix = entry.dns_prefix.as_deref().unwrap_or("default");
        if prefix == "default" || prefix == env {
            if chosen.is_none() {
                chosen = Some(entry);
            } else {
                ignored.push(format!(
                    "spec.policy[{index}] repeats the default dnsPrefix; the first one applies"
                ));
            }
        } else {
            ignored.push(format!(
                "spec.policy[{index}] dnsPrefix {prefix:?} (Admiral's extra host {prefix}.{env}.{identity}.global)"
            ));
        }
    }
    let entry = chosen.ok_or_else(|| fail("no spec.policy entry with dnsPrefix default".into()))?;
    let mode = match lb_type(entry.lb_type.as_ref()).map_err(fail)? {
        LbType::Topology => {
            if !entry.target.is_empty() {
                ignored.push("spec.policy[].target under lbType TOPOLOGY".into());
            }
            LocalityMode::Topology
        }
        LbType::Failover => {
            let total: i64 = entry.target.iter().map(|t| t.weight).sum();
            let mut regions = BTreeSet::new();
            if entry.target.is_empty()
                || total != 100
                || entry
                    .target
                    .iter()
                    .any(|t| t.weight < 0 || t.region.is_empty() || !regions.insert(&t.region))
            {
                return Err(fail(format!(
                    "lbType FAILOVER needs targets of distinct regions with weights summing to 100, got {total}"
                )));
            }
            // A region at weight 0 (Admiral's active-passive) gets no share: Istio refuses
            // a zero weight, so it is left out rather than written.
            LocalityMode::Distribute(
                entry
                    .target
                    .iter()
                    .filter(|t| t.weight > 0)
                    .map(|t| (t.region.clone(), u32::try_from(t.weight).unwrap_or(0)))
                    .collect(),
            )
        }
    };
    let mut outlier = OutlierDetection::default();
    if let Some(o) = &entry.outlier_detection {
        outlier.base_ejection_time = o
            .base_ejection_time
            .filter(|s| *s > 0)
            .map(|s| format!("{s}s"));
        outlier.interval = o.interval.filter(|s| *s > 0).map(|s| format!("{s}s"));
        if o.consecutive_gateway_errors.is_some() {
            ignored.push("outlierDetection.consecutiveGatewayErrors (federator counts 5xx errors: consecutive5xxErrors)".into());
        }
    }
    Ok(Ingested::clean(Object::Policy(PolicyInfo {
        api: PolicySource::Admiral,
        key,
        identity,
        env: Some(env),
        policy: TrafficPolicy { mode, outlier },
        created: created(&gtp.metadata),
        generation: gtp.metadata.generation,
        ignored,
    })))
}

/// An Admiral Dependency as federator's.
pub fn admiral_dependency(dependency: &AdmiralDependency) -> Result<Ingested, IngestError> {
    let native = crate::crd::Dependency {
        metadata: dependency.metadata.clone(),
        spec: crate::crd::DependencySpec {
            source: dependency.spec.source.clone(),
            destinations: dependency.spec.destinations.clone(),
        },
        status: None,
    };
    let mut ingested = super::dependency(&native)?;
    if let Object::Dependency(info) = &mut ingested.object {
        info.api = PolicySource::Admiral;
    }
    Ok(ingested)
}

enum LbType {
    Topology,
    Failover,
}

/// Admiral's `lbType`: a number (the proto enum) or its name; absent means TOPOLOGY.
fn lb_type(value: Option<&serde_json::Value>) -> Result<LbType, String> {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => Ok(LbType::Topology),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(LbType::Topology),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(LbType::Failover),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("topology") || s == "0" => {
            Ok(LbType::Topology)
        }
        Some(Value::String(s)) if s.eq_ignore_ascii_case("failover") || s == "1" => {
            Ok(LbType::Failover)
        }
        Some(other) => Err(format!(
            "lbType {other} is neither 0/TOPOLOGY nor 1/FAILOVER"
        )),
    }
}

/// Whether the object's own labels or annotations name an env (they beat `spec.selector`).
fn has_env(config: &IngestConfig, meta: &ObjectMeta) -> bool {
    config
        .identity
        .env
        .iter()
        .any(|key| super::identity::lookup(key, meta).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gtp(value: serde_json::Value) -> AdmiralGlobalTrafficPolicy {
        serde_json::from_value(value).unwrap()
    }

    fn policy_of(value: serde_json::Value) -> PolicyInfo {
        match admiral_policy(&gtp(value), &IngestConfig::default())
            .unwrap()
            .object
        {
            Object::Policy(p) => p,
            other => panic!("not a policy: {other:?}"),
        }
    }

    #[test]
    fn admirals_failover_targets_become_a_distribution_and_extra_prefixes_are_named() {
        let p = policy_of(serde_json::json!({
            "apiVersion": "admiral.io/v1alpha1", "kind": "GlobalTrafficPolicy",
            "metadata": {"name": "gtp", "namespace": "sample", "labels": {"identity": "Greeting"},
                         "annotations": {"admiral.io/env": "prod"}},
            "spec": {"policy": [
                {"dnsPrefix": "default", "lbType": 1,
                 "target": [{"region": "us-west-2", "weight": 90}, {"region": "us-east-2", "weight": 10},
                            {"region": "eu-west-1", "weight": 0}],
                 "outlierDetection": {"baseEjectionTime": 180, "interval": 60, "consecutiveGatewayErrors": 10}},
                {"dnsPrefix": "west", "lbType": 1, "target": [{"region": "us-west-2", "weight": 100}]},
            ]},
        }));
        assert_eq!(p.api, PolicySource::Admiral);
        assert_eq!(
            (p.identity.as_str(), p.env.as_deref()),
            ("greeting", Some("prod"))
        );
        assert_eq!(
            p.policy.mode,
            LocalityMode::Distribute(vec![("us-west-2".into(), 90), ("us-east-2".into(), 10)])
        );
        assert_eq!(p.policy.outlier.base_ejection_time.as_deref(), Some("180s"));
        assert_eq!(p.policy.outlier.interval.as_deref(), Some("60s"));
        assert_eq!(p.ignored.len(), 2, "{:?}", p.ignored);
        assert!(
            p.ignored
                .iter()
                .any(|i| i.contains("west.prod.greeting.global"))
        );
        assert!(
            p.ignored
                .iter()
                .any(|i| i.contains("consecutiveGatewayErrors"))
        );
    }

    #[test]
    fn the_older_selector_and_named_lb_types_are_read_and_the_env_defaults() {
        let p = policy_of(serde_json::json!({
            "metadata": {"name": "gtp", "namespace": "sample"},
            "spec": {"selector": {"identity": "payments"}, "policy": [{"lbType": "TOPOLOGY"}]},
        }));
        assert_eq!(
            (p.identity.as_str(), p.env.as_deref()),
            ("payments", Some("default"))
        );
        assert_eq!(p.policy.mode, LocalityMode::Topology);
        assert!(p.ignored.is_empty());
    }

    #[test]
    fn what_cannot_apply_is_an_error_naming_the_object() {
        let bad = |spec: serde_json::Value| {
            let value = serde_json::json!({
                "metadata": {"name": "gtp", "namespace": "sample", "labels": {"identity": "greeting"}},
                "spec": spec,
            });
            admiral_policy(&gtp(value), &IngestConfig::default()).unwrap_err()
        };
        let err = bad(
            serde_json::json!({"policy": [{"lbType": 1, "target": [{"region": "a", "weight": 60}]}]}),
        );
        assert_eq!(err.key, "sample/gtp");
        assert!(err.reason.contains("summing to 100, got 60"), "{err}");
        let err = bad(serde_json::json!({"policy": [{"lbType": 7}]}));
        assert!(err.reason.contains("lbType 7"), "{err}");
        let err = bad(serde_json::json!({"policy": [{"dnsPrefix": "west"}]}));
        assert!(err.reason.contains("dnsPrefix default"), "{err}");
    }

    #[test]
    fn an_admiral_dependency_reads_like_federators() {
        let d: AdmiralDependency = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "admiral"},
            "spec": {"source": "web", "identityLabel": "identity", "destinations": ["greeting", "payments"]},
        }))
        .unwrap();
        let Object::Dependency(info) = admiral_dependency(&d).unwrap().object else {
            panic!("not a dependency");
        };
        assert_eq!(info.api, PolicySource::Admiral);
        assert_eq!(info.destinations, ["greeting", "payments"]);
    }
}
