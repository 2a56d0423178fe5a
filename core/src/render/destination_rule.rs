use super::metadata::object_meta;
use super::{RenderOptions, Rendered};
use crate::istio::{
    ClientTls, DestinationRuleSpec, Distribute, Failover, LoadBalancer, LocalityLbSetting,
    OutlierDetection, TlsMode, TrafficPolicy,
};
use crate::model::LocalityMode;
use crate::registry::GlobalService;

/// The DestinationRule of `service`: Istio mTLS (whose SNI the remote gateways route on),
/// locality load balancing as its policy asks, and always outlier detection, without which
/// Istio never fails over.
pub(super) fn render(
    service: &GlobalService,
    options: &RenderOptions,
) -> Rendered<DestinationRuleSpec> {
    let policy = service.policy.as_ref().map(|p| &p.info.policy);
    let mode = policy.map(|p| &p.mode).unwrap_or(&LocalityMode::Topology);
    let locality = match mode {
        LocalityMode::Topology => LocalityLbSetting {
            enabled: Some(true),
            ..Default::default()
        },
        LocalityMode::Failover(regions) => LocalityLbSetting {
            enabled: Some(true),
            failover: regions
                .iter()
                .zip(regions.iter().cycle().skip(1))
                .map(|(from, to)| Failover {
                    from: from.clone(),
                    to: to.clone(),
                })
                .collect(),
            ..Default::default()
        },
        LocalityMode::Distribute(weights) => LocalityLbSetting {
            enabled: Some(true),
            distribute: vec![Distribute {
                from: "*".into(),
                to: weights
                    .iter()
                    .map(|(region, weight)| (format!("{region}/*"), *weight))
                    .collect(),
            }],
            ..Default::default()
        },
    };
    let defaults = &options.outlier_detection;
    let overrides = policy.map(|p| p.outlier.clone()).unwrap_or_default();
    let outlier = OutlierDetection {
        consecutive_5xx_errors: overrides
            .consecutive_5xx_errors
            .or(defaults.consecutive_5xx_errors),
        interval: overrides.interval.or_else(|| defaults.interval.clone()),
        base_ejection_time: overrides
            .base_ejection_time
            .or_else(|| defaults.base_ejection_time.clone()),
        max_ejection_percent: overrides
            .max_ejection_percent
            .or(defaults.max_ejection_percent),
    };
    Rendered {
        metadata: object_meta(service, options),
        spec: DestinationRuleSpec {
            host: service.host.as_str().to_owned(),
            traffic_policy: Some(TrafficPolicy {
                load_balancer: Some(LoadBalancer {
                    locality_lb_setting: Some(locality),
                }),
                outlier_detection: Some(outlier),
                tls: Some(ClientTls {
                    mode: TlsMode::IstioMutual,
                }),
            }),
            export_to: vec!["*".into()],
        },
    }
}
