use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    IngestConfig, IngestError, Ingested, Rollout, created, derive_env, derive_identity,
    derive_spelling, object_key,
};
use crate::model::{Object, RolloutRole, SmolStr, WorkloadInfo, WorkloadKind};

/// A Deployment: `Ok(None)` when it carries no identity (it is simply not federated).
pub fn deployment(
    dep: &Deployment,
    config: &IngestConfig,
) -> Result<Option<Ingested>, IngestError> {
    let template = dep.spec.as_ref().map(|s| &s.template);
    workload(WorkloadKind::Deployment, &dep.metadata, template, config)
}

/// An Argo Rollout: like a Deployment. A Rollout that borrows its template through
/// `workloadRef` is skipped: the referenced Deployment (scaled to zero, same pod labels)
/// carries the identity instead.
///
/// A blue-green Rollout's host is served by its active Service, and its preview Service gets
/// `preview.<env>.<identity>.<suffix>`; a canary Rollout's host by its stable Service, and
/// its canary Service gets `canary.<env>.<identity>.<suffix>`. When Argo weights a canary
/// through Istio traffic routing, the host is split between stable and canary by that weight.
pub fn rollout(rollout: &Rollout, config: &IngestConfig) -> Result<Option<Ingested>, IngestError> {
    if rollout.spec.template.is_none() && rollout.spec.workload_ref.is_some() {
        return Ok(None);
    }
    let mut ingested = workload(
        WorkloadKind::Rollout,
        &rollout.metadata,
        rollout.spec.template.as_ref(),
        config,
    )?;
    if let Some(Ingested {
        object: Object::Workload(info),
        ..
    }) = ingested.as_mut()
    {
        let strategy = rollout.spec.strategy.clone().unwrap_or_default();
        let named = |s: Option<String>| s.filter(|s| !s.is_empty()).map(SmolStr::from);
        if let Some(blue_green) = strategy.blue_green {
            info.service = named(blue_green.active_service);
            info.rollout_role =
                named(blue_green.preview_service).map(|s| (RolloutRole::Preview, s));
        } else if let Some(canary) = strategy.canary {
            info.service = named(canary.stable_service);
            info.rollout_role = named(canary.canary_service).map(|s| (RolloutRole::Canary, s));
            info.canary_weight = rollout
                .canary_weight()
                .filter(|_| info.service.is_some() && info.rollout_role.is_some());
        }
    }
    Ok(ingested)
}

fn workload(
    kind: WorkloadKind,
    meta: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
    config: &IngestConfig,
) -> Result<Option<Ingested>, IngestError> {
    let kind_name = kind.api().1;
    let key = object_key(kind_name, meta)?;
    let empty = ObjectMeta::default();
    let template_meta = template.and_then(|t| t.metadata.as_ref()).unwrap_or(&empty);
    let identity = derive_identity(&config.identity, template_meta, meta)
        .map_err(|reason| IngestError::new(kind_name, &key, reason))?;
    let Some(identity) = identity else {
        return Ok(None);
    };
    if template.is_none() {
        return Err(IngestError::new(
            kind_name,
            &key,
            "spec.template is missing",
        ));
    }
    let env = derive_env(&config.identity, template_meta, meta)
        .map_err(|reason| IngestError::new(kind_name, &key, reason))?;
    Ok(Some(Ingested::clean(Object::Workload(WorkloadInfo {
        kind,
        key,
        identity: identity.into(),
        env: env.into(),
        spelling: derive_spelling(&config.identity, template_meta, meta).into(),
        created: created(meta),
        pod_labels: template_meta.labels.clone().unwrap_or_default().into(),
        service: None,
        rollout_role: None,
        generation: None,
        canary_weight: None,
    }))))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentSpec;

    use super::*;

    fn dep(template_labels: &[(&str, &str)]) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("greeting".into()),
                namespace: Some("sample".into()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(
                            template_labels
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        ),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn deployment_with_identity_is_a_workload() {
        let d = dep(&[
            ("app", "greeting"),
            ("identity", "greeting"),
            ("env", "prod"),
        ]);
        let got = deployment(&d, &IngestConfig::default()).unwrap().unwrap();
        let Object::Workload(w) = got.object else {
            unreachable!()
        };
        assert_eq!((w.identity.as_str(), w.env.as_str()), ("greeting", "prod"));
        assert_eq!(w.pod_labels.get("app"), Some("greeting"));
    }

    #[test]
    fn deployment_without_identity_is_ignored() {
        assert_eq!(
            deployment(&dep(&[("app", "x")]), &IngestConfig::default()),
            Ok(None)
        );
    }

    #[test]
    fn invalid_env_names_deployment_and_key() {
        let d = dep(&[("identity", "greeting"), ("env", "prod env")]);
        let err = deployment(&d, &IngestConfig::default()).unwrap_err();
        assert_eq!(err.kind, "Deployment");
        assert_eq!(err.key, "sample/greeting");
        assert!(err.reason.contains("label env"), "{err}");
    }

    #[test]
    fn rollout_with_workload_ref_defers_to_the_deployment() {
        let mut r = Rollout::new("greeting", Default::default());
        r.spec.workload_ref = Some(serde_json::json!({"kind": "Deployment", "name": "greeting"}));
        assert_eq!(rollout(&r, &IngestConfig::default()), Ok(None));
        r.spec.template = dep(&[("identity", "greeting")]).spec.map(|s| s.template);
        let got = rollout(&r, &IngestConfig::default()).unwrap().unwrap();
        let Object::Workload(w) = got.object else {
            unreachable!()
        };
        assert_eq!(w.kind, WorkloadKind::Rollout);
    }

    /// A Rollout with `strategy` (as Argo's YAML spells it) and an identity.
    fn with_strategy(strategy: serde_json::Value) -> WorkloadInfo {
        let mut r = Rollout::new("web", Default::default());
        r.spec.template = dep(&[("identity", "web")]).spec.map(|s| s.template);
        r.spec.strategy = Some(serde_json::from_value(strategy).unwrap());
        let got = rollout(&r, &IngestConfig::default()).unwrap().unwrap();
        let Object::Workload(w) = got.object else {
            unreachable!()
        };
        w
    }

    #[test]
    fn a_rollouts_strategy_names_the_services_of_its_hosts() {
        let w = with_strategy(serde_json::json!({"blueGreen": {
            "activeService": "web-active", "previewService": "web-preview", "autoPromotionEnabled": false,
        }}));
        assert_eq!(w.service.as_deref(), Some("web-active"));
        assert_eq!(
            w.rollout_role,
            Some((RolloutRole::Preview, "web-preview".into()))
        );
        let w = with_strategy(serde_json::json!({"canary": {
            "stableService": "web-stable", "canaryService": "web-canary",
            "trafficRouting": {"istio": {"virtualService": {"name": "web"}}},
            "steps": [{"setWeight": 20}],
        }}));
        assert_eq!(w.service.as_deref(), Some("web-stable"));
        assert_eq!(
            w.rollout_role,
            Some((RolloutRole::Canary, "web-canary".into()))
        );
        // A basic canary names no Service: every Service over its pods serves its host.
        let w = with_strategy(serde_json::json!({"canary": {"steps": [{"setWeight": 20}]}}));
        assert_eq!((w.service, w.rollout_role), (None, None));
    }

    #[test]
    fn the_canary_weight_comes_from_argos_status_under_istio_traffic_routing() {
        let canary = |routing: serde_json::Value, weight: Option<i32>| {
            let mut r = Rollout::new("web", Default::default());
            r.spec.template = dep(&[("identity", "web")]).spec.map(|s| s.template);
            r.spec.strategy = Some(
                serde_json::from_value(serde_json::json!({"canary": {
                    "stableService": "web", "canaryService": "web-canary", "trafficRouting": routing,
                }}))
                .unwrap(),
            );
            r.status = weight.map(|w| {
                serde_json::from_value(serde_json::json!({"canary": {"weights": {
                    "canary": {"serviceName": "web-canary", "weight": w},
                    "stable": {"serviceName": "web", "weight": 100 - w},
                }}}))
                .unwrap()
            });
            let got = rollout(&r, &IngestConfig::default()).unwrap().unwrap();
            let Object::Workload(w) = got.object else {
                unreachable!()
            };
            w.canary_weight
        };
        let istio = serde_json::json!({"istio": {"virtualService": {"name": "web"}}});
        assert_eq!(canary(istio.clone(), Some(20)), Some(20));
        // Not reported yet, or another router (SMI, nginx): the stable Service alone.
        assert_eq!(canary(istio, None), None);
        assert_eq!(canary(serde_json::json!({"nginx": {}}), Some(20)), None);
        // Out of a maxTrafficWeight other than 100.
        let per_mille = serde_json::json!({"istio": {}, "maxTrafficWeight": 1000});
        assert_eq!(canary(per_mille.clone(), Some(250)), Some(25));
        assert_eq!(canary(per_mille, Some(1)), Some(1), "a tiny canary is kept");
    }
}
