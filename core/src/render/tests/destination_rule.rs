//! DestinationRules: mTLS, locality load balancing as the policy asks, outlier detection.

use super::*;

#[test]
fn destination_rule_defaults_to_mtls_topology_and_outlier_detection() {
    let r = build(three_clusters());
    let dr = render(&r, "east").unwrap().destination_rule;
    assert_eq!(dr.metadata.name, "prod.greeting.global");
    assert_eq!(dr.spec.host, "prod.greeting.global");
    let tp = dr.spec.traffic_policy.unwrap();
    assert_eq!(tp.tls.unwrap().mode, TlsMode::IstioMutual);
    let lb = tp.load_balancer.unwrap().locality_lb_setting.unwrap();
    assert_eq!(lb.enabled, Some(true));
    assert!(lb.failover.is_empty() && lb.distribute.is_empty());
    assert_eq!(
        tp.outlier_detection,
        Some(RenderOptions::default().outlier_detection)
    );
}

fn with_policy(mode: LocalityMode, outlier: OutlierDetection) -> Registry {
    let mut d = three_clusters();
    d.push(upsert(
        "east",
        PolicyInfo {
            api: Default::default(),
            ignored: Vec::new(),
            key: ObjectKey::new("sample", "greeting"),
            identity: "greeting".into(),
            env: Some("prod".into()),
            policy: TrafficPolicy { mode, outlier },
            created: None,
            generation: None,
        },
    ));
    build(d)
}

#[test]
fn failover_policy_chains_regions_in_order() {
    let r = with_policy(
        LocalityMode::Failover(vec![
            "us-east-1".into(),
            "us-west-2".into(),
            "sa-east-1".into(),
        ]),
        OutlierDetection::default(),
    );
    let lb = render(&r, "south")
        .unwrap()
        .destination_rule
        .spec
        .traffic_policy
        .unwrap()
        .load_balancer
        .unwrap()
        .locality_lb_setting
        .unwrap();
    let pairs: Vec<_> = lb
        .failover
        .iter()
        .map(|f| (f.from.as_str(), f.to.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("us-east-1", "us-west-2"),
            ("us-west-2", "sa-east-1"),
            ("sa-east-1", "us-east-1")
        ]
    );
}

#[test]
fn distribute_policy_sets_weights_and_outlier_overrides_merge() {
    let r = with_policy(
        LocalityMode::Distribute(vec![("us-east-1".into(), 80), ("us-west-2".into(), 20)]),
        OutlierDetection {
            consecutive_5xx_errors: Some(2),
            base_ejection_time: Some("1m".into()),
            ..Default::default()
        },
    );
    let tp = render(&r, "east")
        .unwrap()
        .destination_rule
        .spec
        .traffic_policy
        .unwrap();
    let lb = tp.load_balancer.unwrap().locality_lb_setting.unwrap();
    assert_eq!(lb.distribute.len(), 1);
    assert_eq!(lb.distribute[0].from, "*");
    assert_eq!(lb.distribute[0].to.get("us-east-1/*"), Some(&80));
    assert_eq!(lb.distribute[0].to.get("us-west-2/*"), Some(&20));
    let od = tp.outlier_detection.unwrap();
    assert_eq!(od.consecutive_5xx_errors, Some(2));
    assert_eq!(od.base_ejection_time.as_deref(), Some("1m"));
    assert_eq!(
        od.interval.as_deref(),
        Some("5s"),
        "unset fields keep the default"
    );
}
