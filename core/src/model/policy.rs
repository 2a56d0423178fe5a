use crate::istio::OutlierDetection;

/// How traffic to a global host is spread over localities: the validated form of a
/// GlobalTrafficPolicy, free of Kubernetes types.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TrafficPolicy {
    /// Locality load-balancing mode.
    pub mode: LocalityMode,
    /// Outlier detection overrides, in Istio's terms; unset fields keep federator's
    /// defaults.
    pub outlier: OutlierDetection,
}

/// Locality load-balancing mode.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum LocalityMode {
    /// Istio's default: same zone, then same region, then anywhere.
    #[default]
    Topology,
    /// Ordered list of regions: each region fails over to the next one in the list (the
    /// last back to the first).
    Failover(Vec<String>),
    /// Fixed share of traffic per region, in percent, summing to 100.
    Distribute(Vec<(String, u32)>),
}
