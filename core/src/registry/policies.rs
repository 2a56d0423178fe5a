//! Which GlobalTrafficPolicy governs a host: the index of policies by identity and the
//! precedence among several that target the same host.

use super::{AppliedPolicy, Registry};
use crate::model::ClusterName;

impl Registry {
    /// The policy for `identity`/`env`: federator's own beats Admiral's (a migration's
    /// rewritten policy wins over the one it replaces); then one naming the env beats one
    /// for every env; among equals the oldest, then the first by cluster, namespace and name.
    pub(super) fn effective_policy(&self, identity: &str, env: &str) -> Option<AppliedPolicy> {
        self.policy_candidates(identity, env).into_iter().next()
    }

    /// Every policy that targets `identity`/`env`, the one in force first.
    pub(super) fn policy_candidates(&self, identity: &str, env: &str) -> Vec<AppliedPolicy> {
        let mut out: Vec<AppliedPolicy> = self
            .policies_by_identity
            .get(identity)
            .into_iter()
            .flatten()
            .filter_map(|(cluster, id)| {
                let info = self.clusters.get(cluster)?.policies.get(id)?;
                info.env
                    .as_deref()
                    .is_none_or(|e| e == env)
                    .then(|| AppliedPolicy {
                        cluster: cluster.clone(),
                        info: info.clone(),
                    })
            })
            .collect();
        out.sort_by(|a, b| {
            (
                a.info.api,
                a.info.env.is_none(),
                a.info.created.unwrap_or(i64::MAX),
                &a.cluster,
                &a.info.key,
            )
                .cmp(&(
                    b.info.api,
                    b.info.env.is_none(),
                    b.info.created.unwrap_or(i64::MAX),
                    &b.cluster,
                    &b.info.key,
                ))
        });
        out
    }

    /// Drops `policy` of `cluster` from the index by identity.
    pub(super) fn unindex_policy(
        &mut self,
        cluster: &ClusterName,
        policy: &crate::model::PolicyInfo,
    ) {
        if let Some(set) = self.policies_by_identity.get_mut(&policy.identity) {
            set.remove(&(cluster.clone(), (policy.api, policy.key.clone())));
            if set.is_empty() {
                self.policies_by_identity.remove(&policy.identity);
            }
        }
    }
}
