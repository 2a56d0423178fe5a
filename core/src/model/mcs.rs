//! The Multicluster Services API (`multicluster.x-k8s.io`) as the registry sees it: a
//! ServiceExport makes its Service a clusterset service, named
//! `<service>.<namespace>.svc.clusterset.local` in every cluster.

use super::{
    Host, InvalidName, ObjectKey, SmolStr, WorkloadInfo, WorkloadKind, validate_dns_label,
};

/// The domain of clusterset services under the clusterset zone, as the MCS API fixes it.
pub const CLUSTERSET_DOMAIN: &str = "svc.clusterset.local";

/// The DNS zone of the MCS API.
pub const CLUSTERSET_ZONE: &str = "clusterset.local";

/// The name of the `ClusterProperty` (KEP-2149, `about.k8s.io`) holding a cluster's id.
pub const CLUSTER_ID_PROPERTY: &str = "id.k8s.io";

/// A ServiceExport: the registry folds it as a workload of kind
/// [`WorkloadKind::ServiceExport`] backed by the Service of the same name, so exports share
/// everything hosts have (VIPs, quota, locality, rendering) without a second pipeline.
pub fn service_export(
    key: ObjectKey,
    created: Option<i64>,
    generation: Option<i64>,
) -> WorkloadInfo {
    WorkloadInfo {
        kind: WorkloadKind::ServiceExport,
        service: Some(key.name.clone()),
        key,
        identity: SmolStr::default(),
        env: SmolStr::default(),
        spelling: SmolStr::default(),
        created,
        pod_labels: Default::default(),
        rollout_role: None,
        generation,
        canary_weight: None,
    }
}

/// A cluster's id for the MCS API: the value of its `id.k8s.io` ClusterProperty.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClusterIdInfo {
    /// The id, a DNS label (per-pod names of headless services carry it).
    pub value: String,
}

impl Host {
    /// The clusterset host of the Service `name` in `namespace`:
    /// `<name>.<namespace>.svc.clusterset.local`.
    pub fn clusterset(name: &str, namespace: &str) -> Result<Self, InvalidName> {
        validate_dns_label(name).map_err(|reason| InvalidName::new("service", name, reason))?;
        validate_dns_label(namespace)
            .map_err(|reason| InvalidName::new("namespace", namespace, reason))?;
        Self::checked(format!("{name}.{namespace}.{CLUSTERSET_DOMAIN}"))
    }

    /// For a clusterset host, the Service's name and namespace.
    pub fn clusterset_service(&self) -> Option<(&str, &str)> {
        let rest = self
            .as_str()
            .strip_suffix(CLUSTERSET_DOMAIN)?
            .strip_suffix('.')?;
        rest.split_once('.').filter(|(_, ns)| !ns.contains('.'))
    }

    /// Whether it is a clusterset host (of a ServiceExport) rather than a global one.
    pub fn is_clusterset(&self) -> bool {
        self.clusterset_service().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusterset_hosts_name_the_service_and_namespace() {
        let host = Host::clusterset("web", "shop").unwrap();
        assert_eq!(host.as_str(), "web.shop.svc.clusterset.local");
        assert_eq!(host.clusterset_service(), Some(("web", "shop")));
        let global = Host::build("prod", "web", "global").unwrap();
        assert!(!global.is_clusterset());
        assert!(Host::clusterset("Web_1", "shop").is_err());
        // Read back as written (the VIP stores and the API key hosts by name).
        assert_eq!(Host::parse(host.as_str(), "global"), Some(host));
        assert!(Host::parse("web.a.b.svc.clusterset.local", "global").is_none());
        assert!(Host::parse("Web.shop.svc.clusterset.local", "global").is_none());
    }
}
