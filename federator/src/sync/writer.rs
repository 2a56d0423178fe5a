//! One writer per destination cluster: renders what changed, plans the writes
//! ([`super::plan`]) and carries them out ([`super::execute`]). This module is the loop:
//! when to pass over everything, over some hosts, or over what waited.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use super::findings::FindingReporter;
use super::plan::{Conflict, Existing, Hold, Key, Kind};
use super::queue::{Work, WorkQueue};
use super::rejections::Rejections;
use crate::metrics::{ClusterLabels, Metrics};
use crate::model::ClusterName;
use crate::registry::RegistryView;
use crate::render::RenderOptions;

/// When a writer may act.
#[derive(Clone, Debug)]
pub struct Gates {
    /// True once this writer may write: the initial sync is done (and, for a cluster added
    /// or back at run time, its own objects are listed).
    pub ready: watch::Receiver<bool>,
    /// True once deleting is allowed at all (the start-up gate).
    pub deletes: watch::Receiver<bool>,
    /// Clusters whose objects are not listed yet: no write drops their backends.
    pub unlisted: watch::Receiver<BTreeSet<ClusterName>>,
    /// Whether this replica leads: checked before every write, and a new term starts with
    /// a full pass (followers keep their registry warm but write nothing).
    pub leader: crate::leader::Fence,
}

/// What a writer needs.
#[derive(Clone)]
pub struct WriterContext {
    /// The registry as last published by its loop: rendered from without any lock.
    pub views: watch::Receiver<RegistryView>,
    /// How to render.
    pub render: RenderOptions,
    /// This installation: objects of another are never touched.
    pub installation: crate::sync::plan::Installation,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
    /// When to act.
    pub gates: Gates,
    /// How often to re-read the cluster and repair drift even without changes.
    pub resync_period: Duration,
    /// Whether the writer reads its cluster while the registry fills (start-up only; see
    /// `read.rs`).
    pub read_ahead: bool,
}

/// Starts the writer of `cluster`; it works through `queue` until aborted.
pub fn spawn_writer(
    cluster: ClusterName,
    client: Client,
    queue: Arc<WorkQueue>,
    ctx: WriterContext,
) -> JoinHandle<()> {
    let span = info_span!("sync", cluster = %cluster);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "federator".into(),
            instance: None,
        },
    );
    let writer = Writer {
        findings: FindingReporter::new(cluster.clone(), recorder.clone()),
        cluster,
        client,
        ctx,
        recorder,
        existing: BTreeMap::new(),
        conflicts: BTreeMap::new(),
        held: BTreeMap::new(),
        rejections: Rejections::default(),
        unlisted_kinds: BTreeSet::new(),
        foreign_sidecars: Vec::new(),
        read_ahead: None,
    };
    tokio::spawn(writer.run(queue).instrument(span))
}

pub(super) struct Writer {
    pub(super) cluster: ClusterName,
    pub(super) client: Client,
    pub(super) ctx: WriterContext,
    pub(super) recorder: Recorder,
    /// What the sync namespace holds, as last read or written.
    pub(super) existing: BTreeMap<Key, Existing>,
    /// Names left alone, as reported.
    pub(super) conflicts: BTreeMap<Key, Conflict>,
    /// Writes waiting, and why.
    pub(super) held: BTreeMap<Key, Hold>,
    /// Objects the API server refused, resting.
    pub(super) rejections: Rejections,
    /// Reports the cluster's setup problems once each.
    pub(super) findings: FindingReporter,
    /// Kinds outside the sync namespace the cluster refused (or failed) to list last time
    /// (Sidecars, ServiceImports): they are left alone then.
    pub(super) unlisted_kinds: BTreeSet<Kind>,
    /// Sidecars not federator's that select pods: `(namespace, name, selector)`.
    pub(super) foreign_sidecars: Vec<(String, String, BTreeMap<String, String>)>,
    /// What was read ahead of the term's first pass.
    pub(super) read_ahead: Option<super::read::ReadAhead>,
}

impl Writer {
    async fn run(mut self, queue: Arc<WorkQueue>) {
        let mut ready = self.ctx.gates.ready.clone();
        let mut leader = self.ctx.gates.leader.clone();
        loop {
            if !leader.leading().await {
                return;
            }
            let filled = *ready.borrow();
            if !filled && self.ctx.read_ahead {
                // The cluster is read while the registry fills: a restart's reads overlap.
                let filling = async { ready.wait_for(|r| *r).await.is_ok() };
                let (_, filled) = tokio::join!(self.read_ahead(), filling);
                if !filled {
                    return;
                }
            } else if ready.wait_for(|r| *r).await.is_err() {
                return;
            }
            // A new term: what the cluster holds may have been written by another leader
            // since this replica last looked.
            queue.push(full());
            self.lead(&queue, &mut leader).await;
        }
    }

    /// Works through the queue while this replica's term lasts.
    async fn lead(&mut self, queue: &WorkQueue, leader: &mut crate::leader::Fence) {
        let mut deletes = self.ctx.gates.deletes.clone();
        let mut unlisted = self.ctx.gates.unlisted.clone();
        let retry = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut backoff = retry();
        // Created once: a sleep made anew on each loop turn never fires under steady traffic.
        let period = self.ctx.resync_period;
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.rejections.next_wake(Instant::now());
            let waiting = self.held.values().any(|h| *h != Hold::Resting);
            let work = tokio::select! {
                work = queue.next() => work,
                _ = resync.tick() => full(),
                Ok(()) = deletes.changed(), if waiting => full(),
                Ok(()) = unlisted.changed(), if waiting => full(),
                () = sleep_until(wake), if wake.is_some() => self.rested(),
                () = leader.lost() => return,
            };
            let result = if work.full {
                // Any full pass counts as the resync.
                resync.reset();
                self.reconcile_all().await
            } else {
                self.reconcile_hosts(&work.hosts).await
            };
            match result {
                Ok(writes) => {
                    backoff = retry();
                    if writes > 0
                        && let Some(since) = work.since
                    {
                        self.ctx
                            .metrics
                            .propagation_seconds
                            .observe(since.elapsed().as_secs_f64());
                    }
                }
                Err(err) => {
                    let wait = backoff.next().unwrap_or(Duration::from_secs(30));
                    let error = crate::connect::describe::kube_error(&err);
                    warn!(error, retry_in = ?wait, "sync failed; will retry");
                    self.ctx
                        .metrics
                        .write_errors
                        .get_or_create(&self.labels())
                        .inc();
                    queue.push(work);
                    tokio::time::sleep(wait).await;
                }
            }
            self.update_gauges();
        }
    }

    /// The work for objects whose rest just ended: their hosts, or everything when one has
    /// no host.
    fn rested(&self) -> Work {
        let due = self.rejections.due(Instant::now());
        if due.iter().any(Option::is_none) {
            return full();
        }
        Work {
            hosts: due.into_iter().flatten().collect(),
            ..Work::default()
        }
    }

    pub(super) fn labels(&self) -> ClusterLabels {
        ClusterLabels {
            cluster: self.cluster.to_string(),
        }
    }

    fn update_gauges(&self) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let labels = self.labels();
        self.ctx
            .metrics
            .conflicts
            .get_or_create(&labels)
            .set(count(self.conflicts.len()));
        self.ctx
            .metrics
            .writes_held
            .get_or_create(&labels)
            .set(count(self.held.len()));
    }

    /// Creates the sync namespace when it is missing (a read first, so an unchanged cluster
    /// sees no write).
    pub(super) async fn ensure_namespace(&self) -> Result<(), kube::Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let name = &self.ctx.render.namespace;
        if api.get_opt(name).await?.is_some() || !self.ctx.gates.leader.may_write() {
            return Ok(());
        }
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {
                info!(namespace = name, "created the sync namespace");
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(err),
        }
    }
}

fn full() -> Work {
    Work {
        full: true,
        ..Work::default()
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
