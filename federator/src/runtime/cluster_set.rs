//! Carries out the cluster-set plan: keeps the parsed store of cluster Secrets, and after
//! every change asks [`crate::clusters::plan`] what the whole store means, then connects,
//! reconnects, moves and removes clusters accordingly.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Resource;
use tracing::info;

use super::cluster_run::ClusterHandle;
use super::manager::Manager;
use crate::clusters::health::{ClusterHealth, Observation};
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
            keys: parsed
                .keys
                .into_iter()
                .map(|k| k.map_err(|problem| problem.key))
                .collect(),
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

    /// Carries out a plan made while running: a cluster no Secret registers starts its
    /// grace period (and one registered again within it just carries on); moved clusters
    /// change the Secret they report on; new and changed ones connect.
    pub(super) async fn apply_cluster_plan(&mut self, planned: ClusterPlan) {
        // A Secret recreated under the same name has a new uid: Events go to the live one.
        for handle in self.clusters.values_mut() {
            let current = handle
                .secret
                .name
                .as_deref()
                .and_then(|n| self.store.secrets.get(n));
            if let Some(entry) = current {
                handle.secret = entry.reference.clone();
            }
        }
        let gone: BTreeSet<&ClusterName> = planned.remove.iter().collect();
        let back: Vec<ClusterName> = self
            .clusters
            .iter()
            .filter(|(name, h)| h.health.removing() && !gone.contains(name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &planned.remove {
            self.observe(name, Observation::SecretGone).await;
        }
        for name in &back {
            self.observe(name, Observation::SecretBack).await;
        }
        for (name, secret) in &planned.moved {
            let reference = self.secret_reference(secret);
            if let (Some(handle), Some(reference)) = (self.clusters.get_mut(name), reference) {
                info!(cluster = %name, secret, "cluster now registered by another Secret; nothing else changes");
                handle.secret = reference;
            }
        }
        for (secret, entry) in planned.reconnect {
            let Some(reference) = self.secret_reference(&secret) else {
                continue;
            };
            let name = entry.info.name.clone();
            if let Some(handle) = self.clusters.get_mut(&name) {
                info!(cluster = %name, "cluster settings or credentials changed; reconnecting");
                handle.secret = reference;
                handle.entry = entry;
            }
            self.connect(&name, true).await;
        }
        for (secret, entry) in planned.add {
            if let Some(name) = self.register(&secret, entry) {
                self.connect(&name, true).await;
            }
        }
    }

    /// Start-up: registers the clusters of the whole store, starts reading back the VIPs
    /// the connected ones hold, and starts them meanwhile (the registry loop applies their
    /// deltas once the VIPs are in). A cluster that cannot connect is registered all the
    /// same, and retried.
    pub(super) async fn start_initial_clusters(&mut self) {
        let planned = self.cluster_plan().await;
        let mut connected = Vec::new();
        let mut followed = Vec::new();
        for (secret, entry) in planned.add {
            let Some(name) = self.register(&secret, entry.clone()) else {
                continue;
            };
            if !self.owns(&name) {
                followed.push(name);
                continue;
            }
            match crate::connect::connect(&entry, &self.options.connect).await {
                Ok(client) => connected.push((name, client)),
                Err(err) => {
                    if let Some(handle) = self.clusters.get_mut(&name) {
                        let failed = handle.connect_failed(err.to_string());
                        self.observe(&name, failed).await;
                    }
                }
            }
        }
        self.spawn_vip_restore(connected.clone());
        // Registered once the restore is on its way: the registry loop reads no delta
        // before it, so a fleet larger than its channel would wait for it forever.
        for name in followed {
            self.follow(&name).await;
        }
        for (name, client) in connected {
            self.start(&name, client, false).await;
            self.observe(&name, Observation::Connected).await;
        }
    }

    /// Makes the running clusters match the whole store of Secrets.
    pub(super) async fn reconcile_clusters(&mut self) {
        let planned = self.cluster_plan().await;
        self.apply_cluster_plan(planned).await;
    }

    /// Registers a planned cluster (not connected yet).
    fn register(&mut self, secret: &str, entry: ClusterEntry) -> Option<ClusterName> {
        let reference = self.secret_reference(secret)?;
        let name = entry.info.name.clone();
        let health = ClusterHealth::new(self.options.health_policy());
        self.clusters
            .insert(name.clone(), ClusterHandle::new(reference, entry, health));
        Some(name)
    }

    fn secret_reference(&self, name: &str) -> Option<ObjectReference> {
        self.store.secrets.get(name).map(|e| e.reference.clone())
    }
}
