//! What federator reports on the objects users write for it: each GlobalTrafficPolicy says
//! whether it is valid, which hosts it governs and which policy shadows it; each Dependency
//! says whether it is valid and which identities it names that nothing runs. Pure: the edge
//! writes these as the objects' `status`.

use super::{AppliedPolicy, Registry};
use crate::model::{ClusterName, Host, ObjectKey, ObjectRef, PolicyInfo, PolicySource};

/// Which kind of object a status is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusKind {
    /// A GlobalTrafficPolicy.
    GlobalTrafficPolicy,
    /// A Dependency.
    Dependency,
    /// A ServiceExport (MCS API).
    ServiceExport,
}

/// One condition, as Kubernetes conditions spell it (the edge adds the transition time).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCondition {
    /// `Accepted`, `Conflicted` or `ResolvedRefs`.
    pub type_: &'static str,
    /// Whether the condition holds.
    pub status: bool,
    /// One CamelCase word saying why.
    pub reason: &'static str,
    /// What a person reads.
    pub message: String,
}

/// What the status of one object should say.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectStatus {
    /// Cluster the object lives in.
    pub cluster: ClusterName,
    /// Its kind.
    pub kind: StatusKind,
    /// Its namespace and name.
    pub key: ObjectKey,
    /// The generation this status concerns.
    pub generation: Option<i64>,
    /// Its conditions.
    pub conditions: Vec<StatusCondition>,
    /// For a policy, the hosts it governs; sorted.
    pub hosts: Vec<Host>,
    /// For a Dependency, the identities it names that no cluster runs; sorted.
    pub unknown_identities: Vec<String>,
}

impl Registry {
    /// The status every GlobalTrafficPolicy and Dependency should have, sorted by cluster,
    /// kind and key. It reads every such object, so it runs between batches, not per delta.
    pub fn object_statuses(&self) -> Vec<ObjectStatus> {
        let mut out = Vec::new();
        for (cluster, state) in self.clusters.iter() {
            // Admiral's objects have Admiral's status schema: federator reports on them with
            // Events only.
            let ours = |api: &PolicySource| *api == PolicySource::Federator;
            for policy in state.policies.values().filter(|p| ours(&p.api)) {
                out.push(self.policy_status(cluster, policy));
            }
            // A Dependency that turned invalid keeps its last valid version in force; its
            // status is the rejection's.
            let rejected = |d: &&crate::model::DependencyInfo| {
                state
                    .rejected
                    .contains_key(&ObjectRef::Dependency(d.key.clone()))
            };
            for dependency in state
                .dependencies
                .values()
                .filter(|d| ours(&d.api) && !rejected(d))
            {
                let unknown: Vec<String> = std::iter::once(&dependency.source)
                    .chain(&dependency.destinations)
                    .filter(|identity| !self.hosts_by_identity.contains_key(identity.as_str()))
                    .cloned()
                    .collect();
                let resolved = if unknown.is_empty() {
                    condition(
                        "ResolvedRefs",
                        true,
                        "Resolved",
                        "every identity it names runs in some cluster".into(),
                    )
                } else {
                    condition(
                        "ResolvedRefs",
                        false,
                        "UnknownIdentities",
                        format!("no cluster runs {}; the rest applies", unknown.join(", ")),
                    )
                };
                out.push(ObjectStatus {
                    cluster: cluster.clone(),
                    kind: StatusKind::Dependency,
                    key: dependency.key.clone(),
                    generation: dependency.generation,
                    conditions: vec![
                        accepted("valid; the workloads of its source get a Sidecar"),
                        resolved,
                    ],
                    hosts: Vec::new(),
                    unknown_identities: unknown,
                });
            }
            for rejected in state.rejected.values() {
                let (kind, key) = match &rejected.reference {
                    ObjectRef::Policy(key) => (StatusKind::GlobalTrafficPolicy, key),
                    ObjectRef::Dependency(key) => (StatusKind::Dependency, key),
                    _ => continue,
                };
                let mut conditions = vec![condition(
                    "Accepted",
                    false,
                    "Invalid",
                    rejected.reason.clone(),
                )];
                if kind == StatusKind::GlobalTrafficPolicy {
                    conditions.push(condition(
                        "Conflicted",
                        true,
                        "Invalid",
                        rejected.reason.clone(),
                    ));
                }
                out.push(ObjectStatus {
                    cluster: cluster.clone(),
                    kind,
                    key: key.clone(),
                    generation: rejected.generation,
                    conditions,
                    hosts: Vec::new(),
                    unknown_identities: Vec::new(),
                });
            }
        }
        self.export_statuses(&mut out);
        out.sort();
        out
    }

    /// A valid policy's status: the hosts it governs, and the policy in force where it is
    /// shadowed.
    fn policy_status(&self, cluster: &ClusterName, policy: &PolicyInfo) -> ObjectStatus {
        let mut hosts = Vec::new();
        let mut shadowed_by: Vec<(Host, AppliedPolicy)> = Vec::new();
        for host in self
            .hosts_by_identity
            .get(policy.identity.as_str())
            .into_iter()
            .flatten()
        {
            let Some(entry) = self.hosts.get(host) else {
                continue;
            };
            let env = &entry.service.env;
            if policy.env.as_ref().is_some_and(|e| e != env) {
                continue;
            }
            match self.effective_policy(&policy.identity, env) {
                Some(winner)
                    if winner.cluster == *cluster
                        && winner.info.api == policy.api
                        && winner.info.key == policy.key =>
                {
                    hosts.push(host.clone());
                }
                Some(winner) => shadowed_by.push((host.clone(), winner)),
                None => {}
            }
        }
        hosts.sort();
        let conflicted = match shadowed_by.first() {
            None => condition(
                "Conflicted",
                false,
                "NoConflict",
                "no other policy targets its hosts".into(),
            ),
            Some((host, winner)) => condition(
                "Conflicted",
                true,
                "Shadowed",
                format!(
                    "{} in cluster {} takes precedence for {host}{}: {}",
                    winner.info.reference(),
                    winner.cluster,
                    match shadowed_by.len() {
                        1 => String::new(),
                        n => format!(" and {} more hosts", n - 1),
                    },
                    PRECEDENCE
                ),
            ),
        };
        ObjectStatus {
            cluster: cluster.clone(),
            kind: StatusKind::GlobalTrafficPolicy,
            key: policy.key.clone(),
            generation: policy.generation,
            conditions: vec![
                accepted("valid; in force for its hosts unless another policy takes precedence"),
                conflicted,
            ],
            hosts,
            unknown_identities: Vec::new(),
        }
    }
}

/// How one policy wins over another for the same host, as the registry decides it
/// (`policies.rs`), in the words a status message uses.
pub const PRECEDENCE: &str = "a federator.io policy beats an admiral.io one, then a policy naming the env beats one for every env, then the oldest, then the first by cluster, namespace and name";

fn accepted(message: &str) -> StatusCondition {
    condition("Accepted", true, "Valid", message.to_owned())
}

pub(super) fn condition(
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: String,
) -> StatusCondition {
    StatusCondition {
        type_,
        status,
        reason,
        message,
    }
}
