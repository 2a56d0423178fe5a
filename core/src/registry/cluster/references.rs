//! What a cluster contributes, as references: when another source takes over a cluster's
//! objects (a replica's own watchers after following another's publications, or the other
//! way round), what the new source does not list again must go.

use std::collections::BTreeSet;

use super::ClusterState;
use crate::model::{ObjectRef, PolicySource, WorkloadKind};

impl ClusterState {
    /// Every object the cluster was given and holds, valid or rejected.
    pub(crate) fn references(&self) -> BTreeSet<ObjectRef> {
        let mut out = BTreeSet::new();
        out.extend(
            self.services
                .values()
                .map(|s| ObjectRef::Service(s.key.clone())),
        );
        out.extend(
            self.slices
                .values()
                .map(|s| ObjectRef::EndpointSlice(s.key.clone())),
        );
        // A Rollout's variant is derived from the Rollout, not given: it comes and goes
        // with it.
        let given = |kind: &WorkloadKind| *kind != WorkloadKind::RolloutVariant;
        out.extend(
            self.workloads
                .values()
                .filter(|w| given(&w.kind))
                .map(|w| ObjectRef::Workload(w.kind, w.key.clone())),
        );
        out.extend(
            self.invalid_workloads
                .keys()
                .filter(|(kind, _)| given(kind))
                .map(|(kind, key)| ObjectRef::Workload(*kind, key.clone())),
        );
        out.extend(self.nodes.keys().map(|n| ObjectRef::Node(n.clone())));
        out.extend(self.gateways.keys().cloned().map(ObjectRef::Gateway));
        let policy = |(source, key): &(PolicySource, crate::model::ObjectKey)| match source {
            PolicySource::Federator => ObjectRef::Policy(key.clone()),
            PolicySource::Admiral => ObjectRef::AdmiralPolicy(key.clone()),
        };
        out.extend(self.policies.keys().map(policy));
        let dependency = |(source, key): &(PolicySource, crate::model::ObjectKey)| match source {
            PolicySource::Federator => ObjectRef::Dependency(key.clone()),
            PolicySource::Admiral => ObjectRef::AdmiralDependency(key.clone()),
        };
        out.extend(self.dependencies.keys().map(dependency));
        out.extend(self.rejected.keys().cloned());
        out.extend(
            self.mesh_namespace
                .iter()
                .map(|m| ObjectRef::MeshNamespace(m.name.clone())),
        );
        out.extend(
            self.passthrough_claims
                .keys()
                .cloned()
                .map(ObjectRef::PassthroughClaim),
        );
        if self.cluster_id.is_some() {
            out.insert(ObjectRef::ClusterId);
        }
        out
    }
}
