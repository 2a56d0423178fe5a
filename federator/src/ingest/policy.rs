use super::{IngestError, Ingested, created, object_key};
use crate::crd::{GlobalTrafficPolicy, PolicyMode};
use crate::model::{
    LocalityMode, Object, PolicyInfo, PolicySource, TrafficPolicy, validate_dns_label,
    validate_identity,
};

/// A GlobalTrafficPolicy, validated: a failover list needs regions and no repeats, weights
/// must sum to 100, durations must be Istio durations.
pub fn policy(gtp: &GlobalTrafficPolicy) -> Result<Ingested, IngestError> {
    let key = object_key("GlobalTrafficPolicy", &gtp.metadata)?;
    let fail = |reason: String| IngestError::new("GlobalTrafficPolicy", &key, reason);
    let spec = &gtp.spec;
    let identity = spec.identity.to_ascii_lowercase();
    validate_identity(&identity).map_err(|r| fail(format!("spec.identity {identity:?}: {r}")))?;
    let env = spec.env.as_ref().map(|e| e.to_ascii_lowercase());
    if let Some(env) = &env {
        validate_dns_label(env).map_err(|r| fail(format!("spec.env {env:?}: {r}")))?;
    }
    let mode = match spec.mode {
        PolicyMode::Topology => LocalityMode::Topology,
        PolicyMode::Failover => {
            if spec.failover.len() < 2 {
                return Err(fail(
                    "mode failover needs at least two regions in spec.failover".into(),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = spec.failover.iter().find(|r| !seen.insert(r.as_str())) {
                return Err(fail(format!(
                    "region {dup:?} appears twice in spec.failover"
                )));
            }
            if spec
                .failover
                .iter()
                .any(|r| r.is_empty() || r.contains('/'))
            {
                return Err(fail(
                    "spec.failover holds region names, not empty or `/` paths".into(),
                ));
            }
            LocalityMode::Failover(spec.failover.clone())
        }
        PolicyMode::Distribute => {
            let total: u32 = spec.distribute.iter().map(|w| w.weight).sum();
            if spec.distribute.is_empty() || total != 100 {
                return Err(fail(format!(
                    "mode distribute needs spec.distribute weights summing to 100, got {total}"
                )));
            }
            // Istio refuses a zero weight; a region at 0 simply gets no share.
            LocalityMode::Distribute(
                spec.distribute
                    .iter()
                    .filter(|w| w.weight > 0)
                    .map(|w| (w.region.clone(), w.weight))
                    .collect(),
            )
        }
    };
    let outlier = spec.outlier_detection.clone().unwrap_or_default();
    for (field, value) in [
        ("interval", &outlier.interval),
        ("baseEjectionTime", &outlier.base_ejection_time),
    ] {
        if let Some(v) = value
            && !is_duration(v)
        {
            return Err(fail(format!(
                "spec.outlierDetection.{field} {v:?} is not a duration like 5s, 100ms or 1m"
            )));
        }
    }
    if outlier.max_ejection_percent.is_some_and(|p| p > 100) {
        return Err(fail(
            "spec.outlierDetection.maxEjectionPercent exceeds 100".into(),
        ));
    }
    Ok(Ingested::clean(Object::Policy(PolicyInfo {
        api: PolicySource::Federator,
        key,
        identity,
        env,
        policy: TrafficPolicy { mode, outlier },
        created: created(&gtp.metadata),
        generation: gtp.metadata.generation,
        ignored: Vec::new(),
    })))
}

/// Whether `s` is a protobuf/Go-style duration Istio accepts: one or more `<number><unit>`
/// with unit h, m, s, ms, us or ns, greater than zero.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    let mut any_positive = false;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let Ok(value) = number.parse::<f64>() else {
            return false;
        };
        any_positive |= value > 0.0;
        let unit_len = ["ms", "us", "ns", "h", "m", "s"]
            .iter()
            .find(|u| tail.starts_with(**u))
            .map(|u| u.len());
        let Some(unit_len) = unit_len else {
            return false;
        };
        rest = &tail[unit_len..];
    }
    any_positive
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{GlobalTrafficPolicySpec, RegionWeight};
    use crate::istio::OutlierDetection;

    fn gtp(spec: GlobalTrafficPolicySpec) -> GlobalTrafficPolicy {
        let mut g = GlobalTrafficPolicy::new("greeting", spec);
        g.metadata.namespace = Some("sample".into());
        g
    }

    fn spec(mode: PolicyMode) -> GlobalTrafficPolicySpec {
        GlobalTrafficPolicySpec {
            identity: "Greeting".into(),
            env: Some("prod".into()),
            mode,
            failover: vec![],
            distribute: vec![],
            outlier_detection: None,
        }
    }

    fn info(g: &GlobalTrafficPolicy) -> PolicyInfo {
        match policy(g).unwrap().object {
            Object::Policy(p) => p,
            _ => unreachable!(),
        }
    }

    #[test]
    fn topology_is_the_default_mode() {
        let p = info(&gtp(spec(PolicyMode::Topology)));
        assert_eq!(p.identity, "greeting");
        assert_eq!(p.policy.mode, LocalityMode::Topology);
    }

    #[test]
    fn failover_needs_two_distinct_regions() {
        let mut s = spec(PolicyMode::Failover);
        s.failover = vec!["us-east-1".into()];
        let err = policy(&gtp(s.clone())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("GlobalTrafficPolicy sample/greeting:"),
            "{err}"
        );
        s.failover = vec!["us-east-1".into(), "us-east-1".into()];
        assert!(
            policy(&gtp(s.clone()))
                .unwrap_err()
                .reason
                .contains("twice")
        );
        s.failover = vec!["us-east-1".into(), "eu-west-1".into()];
        assert_eq!(
            info(&gtp(s)).policy.mode,
            LocalityMode::Failover(vec!["us-east-1".into(), "eu-west-1".into()])
        );
    }

    #[test]
    fn distribute_weights_must_sum_to_100() {
        let mut s = spec(PolicyMode::Distribute);
        s.distribute = vec![
            RegionWeight {
                region: "us-east-1".into(),
                weight: 70,
            },
            RegionWeight {
                region: "eu-west-1".into(),
                weight: 20,
            },
        ];
        let err = policy(&gtp(s.clone())).unwrap_err();
        assert!(err.reason.contains("got 90"), "{err}");
        s.distribute[1].weight = 30;
        assert!(matches!(info(&gtp(s)).policy.mode, LocalityMode::Distribute(w) if w.len() == 2));
    }

    #[test]
    fn outlier_durations_are_checked() {
        let mut s = spec(PolicyMode::Topology);
        s.outlier_detection = Some(OutlierDetection {
            interval: Some("5 seconds".into()),
            ..Default::default()
        });
        let err = policy(&gtp(s.clone())).unwrap_err();
        assert!(err.reason.contains("interval"), "{err}");
        s.outlier_detection = Some(OutlierDetection {
            interval: Some("1m30s".into()),
            base_ejection_time: Some("500ms".into()),
            consecutive_5xx_errors: Some(3),
            max_ejection_percent: Some(50),
        });
        assert_eq!(info(&gtp(s)).policy.outlier.consecutive_5xx_errors, Some(3));
    }

    #[test]
    fn durations() {
        for ok in ["5s", "100ms", "1m30s", "1.5h", "10us"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "5", "s", "0s", "5 s", "-1s", "5d"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
