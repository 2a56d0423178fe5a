//! Carries out the cluster-set plan: keeps the parsed store of cluster Secrets, and after
//! every change asks [`crate::clusters::plan`] what the whole store means, then connects,
//! reconnects, moves and removes clusters accordingly.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::{Client, Resource};
use tracing::info;

use super::manager::Manager;
use crate::clusters::{ClusterEntry, ClusterPlan, Running, StoredSecret, parse_secret, plan};
use crate::model::ClusterName;

/// One cluster Secret as last seen: parsed once per resourceVersion.
pub(super) struct StoreEntry {
    version: Option<String>,
    reference: ObjectReference,
    parsed: StoredSecret,
}

/// The cluster Secrets by name.
#[derive(Default)]
pub(super) struct SecretStore {
    secrets: BTreeMap<String, StoreEntry>,
    /// Duplicates already reported, so each is reported once.
    reported_duplicates: BTreeSet<(String, ClusterName)>,
}

impl Manager {
    /// Parses `secret` into the store (reporting its problems) unless this version is
    /// already there.
    pub(super) async fn store_secret(&mut self, secret: &Secret) {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let version = secret.metadata.resource_version.clone();
        if self
            .store
            .secrets
            .get(&name)
            .is_some_and(|e| e.version.is_some() && e.version == version)
        {
            return;
        }
        let reference = secret.object_ref(&());
        let parsed = parse_secret(secret, &self.options.secrets);
        for problem in parsed
            .problems
            .iter()
            .chain(parsed.keys.iter().filter_map(|k| k.as_ref().err()))
        {
            self.secret_problem(&reference, problem.kind.reason(), &problem.to_string())
                .await;
        }
        let stored = StoredSecret {
            name: name.clone(),
            created: crate::ingest::created(&secret.metadata),
            keys: parsed.keys,
        };
        self.store.secrets.insert(
            name,
            StoreEntry {
                version,
                reference,
                parsed: stored,
            },
        );
    }

    /// Forgets a deleted Secret.
    pub(super) fn forget_secret(&mut self, name: &str) {
        self.store.secrets.remove(name);
    }

    /// Replaces the store by a complete list (after a relist).
    pub(super) async fn store_all(&mut self, secrets: &[Secret]) {
        let names: BTreeSet<String> = secrets
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        self.store.secrets.retain(|name, _| names.contains(name));
        for secret in secrets {
            self.store_secret(secret).await;
        }
    }

    /// The plan for the store against what runs now; duplicates reported once each.
    pub(super) async fn cluster_plan(&mut self) -> ClusterPlan {
        let store: Vec<&StoredSecret> = self.store.secrets.values().map(|e| &e.parsed).collect();
        let running: BTreeMap<ClusterName, Running> = self
            .clusters
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    Running {
                        secret: h.secret.name.clone().unwrap_or_default(),
                        fingerprint: h.entry.fingerprint,
                    },
                )
            })
            .collect();
        let planned = plan(store, &running);
        let current: BTreeSet<(String, ClusterName)> = planned
            .duplicates
            .iter()
            .map(|(s, c, _)| (s.clone(), c.clone()))
            .collect();
        for (secret, cluster, winner) in &planned.duplicates {
            if self
                .store
                .reported_duplicates
                .contains(&(secret.clone(), cluster.clone()))
            {
                continue;
            }
            if let Some(reference) = self.secret_reference(secret) {
                let note = format!(
                    "cluster {cluster} is already registered by Secret {winner} (the older); \
                     this key is ignored while that Secret registers it"
                );
                self.secret_problem(&reference, "DuplicateCluster", &note)
                    .await;
            }
        }
        self.store.reported_duplicates = current;
        planned
    }

    /// Carries out a plan made while running: removes, moves, and (re)connects.
    pub(super) async fn apply_cluster_plan(&mut self, planned: ClusterPlan) {
        for name in &planned.remove {
            self.remove_cluster(name).await;
        }
        for (name, secret) in &planned.moved {
            let reference = self.secret_reference(secret);
            if let (Some(handle), Some(reference)) = (self.clusters.get_mut(name), reference) {
                info!(cluster = %name, secret, "cluster now registered by another Secret; nothing else changes");
                handle.secret = reference;
            }
        }
        let reconnecting: Vec<ClusterName> = planned
            .reconnect
            .iter()
            .map(|(_, e)| e.info.name.clone())
            .collect();
        let planned = planned.add.into_iter().chain(planned.reconnect).collect();
        for (reference, entry, client) in self.connect_planned(planned).await {
            if reconnecting.contains(&entry.info.name) {
                info!(cluster = %entry.info.name, "cluster settings or credentials changed; reconnecting");
            }
            self.start_cluster(reference, entry, client, true).await;
        }
    }

    /// Start-up: the clusters of the whole store, connected (those that cannot be are
    /// reported and left out).
    pub(super) async fn initial_clusters(
        &mut self,
    ) -> Vec<(ObjectReference, ClusterEntry, Client)> {
        let planned = self.cluster_plan().await;
        self.connect_planned(planned.add).await
    }

    /// Makes the running clusters match the whole store of Secrets.
    pub(super) async fn reconcile_clusters(&mut self) {
        let planned = self.cluster_plan().await;
        self.apply_cluster_plan(planned).await;
    }

    /// Clients for planned clusters; a cluster that cannot have one is reported on its
    /// Secret and left out.
    async fn connect_planned(
        &self,
        planned: Vec<(String, ClusterEntry)>,
    ) -> Vec<(ObjectReference, ClusterEntry, Client)> {
        let mut out = Vec::new();
        for (secret, entry) in planned {
            let Some(reference) = self.secret_reference(&secret) else {
                continue;
            };
            match crate::connect::connect(&entry, &self.options.connect).await {
                Ok(client) => out.push((reference, entry, client)),
                Err(err) => {
                    self.secret_problem(&reference, "InvalidClusterKubeconfig", &err.to_string())
                        .await;
                }
            }
        }
        out
    }

    fn secret_reference(&self, name: &str) -> Option<ObjectReference> {
        self.store.secrets.get(name).map(|e| e.reference.clone())
    }
}
