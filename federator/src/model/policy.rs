/// How traffic to a global host is spread over localities: the validated form of a
/// GlobalTrafficPolicy, free of Kubernetes types.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TrafficPolicy {
    /// Locality load-balancing mode.
    pub mode: LocalityMode,
    /// Outlier detection overrides; unset fields keep federator's defaults.
    pub outlier: OutlierOverrides,
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

/// Outlier-detection settings a policy may override.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OutlierOverrides {
    /// Consecutive 5xx (or connect) errors before ejection.
    pub consecutive_5xx_errors: Option<u32>,
    /// How often hosts are analysed (duration, e.g. `5s`).
    pub interval: Option<String>,
    /// Minimum ejection duration (e.g. `30s`).
    pub base_ejection_time: Option<String>,
    /// Largest share of hosts that may be ejected, in percent.
    pub max_ejection_percent: Option<u32>,
}
