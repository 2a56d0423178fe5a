//! Carries out the planned writes, several at a time, and records how each went. Creates are
//! POSTs (they fail when the name was taken since the last read), updates are JSON patches of
//! spec, labels and annotations at the resourceVersion ownership was confirmed at, deletes
//! carry uid and resourceVersion preconditions: a write never lands on an object federator
//! has not just seen as its own.

use std::collections::BTreeSet;
use std::time::Instant;

use futures::{StreamExt, stream};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use tracing::{debug, info};

use super::objects::{Wanted, existing};
use super::plan::{Existing, Installation, Key, Write};
use super::writer::Writer;

/// Writes in flight at once per cluster: enough to hide round trips, few enough not to
/// swamp an API server.
const WRITE_CONCURRENCY: usize = 16;

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "federator";

/// How one write went.
pub(super) enum Outcome {
    /// Written; the object as stored.
    Written(Existing),
    /// Deleted (or already gone).
    Deleted,
    /// The object changed since it was read (taken, modified, deleted): re-read it and
    /// plan again.
    Stale,
    /// The API server refused this object (admission, validation, authorization): it rests
    /// on its own while the rest flows.
    Rejected {
        /// HTTP status code.
        code: u16,
        /// The API's reason (`Forbidden`, `Invalid`, ...).
        reason: String,
        /// The API's message (an admission policy's words).
        message: String,
    },
    /// The request failed for reasons not about this object (connection, overload): the
    /// pass is retried.
    Failed(kube::Error),
    /// Not sent: this replica's leader term ended.
    Fenced,
    /// Not created: its namespace (outside the sync namespace) does not exist.
    NoNamespace,
}

/// Carries out `write` with `api` (the kind's API in the sync namespace). `wanted` holds
/// the object for creates and updates; `current` is what was last read of it.
pub(super) async fn carry_out(
    api: &Api<DynamicObject>,
    write: &Write,
    wanted: &Wanted,
    current: Option<&Existing>,
    us: &Installation,
    fence: &crate::leader::Fence,
) -> Outcome {
    // Checked for each write, right before it goes out: a term that ended while the pass
    // ran stops the writes not yet sent.
    let Some(term) = fence.term() else {
        return Outcome::Fenced;
    };
    // Not waited for past the term's end: a write still unanswered then is abandoned (the
    // margin between the end of a term and the next one covers one already on the wire).
    let deadline = tokio::time::Instant::from_std(term.until);
    match tokio::time::timeout_at(deadline, send(api, write, wanted, current, us, term.number))
        .await
    {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Fenced,
    }
}

/// Sends one write for the leader of `term`.
async fn send(
    api: &Api<DynamicObject>,
    write: &Write,
    wanted: &Wanted,
    current: Option<&Existing>,
    us: &Installation,
    term: u64,
) -> Outcome {
    let kind = write.key().0;
    let result = match write {
        Write::Create(key) => match wanted.object(key, term) {
            Some(object) => match api.create(&post_params(), &object).await {
                Ok(stored) => Ok(Outcome::Written(existing(kind, &stored, us))),
                // A create 404s only when the namespace is missing: normal for a Service's
                // namespace some clusters lack; the sync namespace is re-read and made again.
                Err(kube::Error::Api(status))
                    if status.code == 404 && kind.outside_sync_namespace() =>
                {
                    Ok(Outcome::NoNamespace)
                }
                Err(err) => Err(err),
            },
            // A create always comes with its object; without, nothing to send.
            None => Ok(Outcome::Stale),
        },
        Write::Update {
            key,
            resource_version,
        } => match wanted.update_patch(key, current, resource_version.as_ref(), term) {
            Some(patch) => {
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                };
                api.patch(
                    super::plan::key_parts(key).1,
                    &params,
                    &Patch::<()>::Json(patch),
                )
                .await
                .map(|stored| Outcome::Written(existing(kind, &stored, us)))
            }
            None => Ok(Outcome::Stale),
        },
        Write::Delete {
            key,
            uid,
            resource_version,
        } => {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: uid.clone(),
                    resource_version: resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            match api.delete(super::plan::key_parts(key).1, &params).await {
                Ok(_) => Ok(Outcome::Deleted),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(Outcome::Deleted),
                Err(err) => Err(err),
            }
        }
    };
    result.unwrap_or_else(classify)
}

fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    }
}

/// Sorts a failed request: a conflict or a vanished object means stale knowledge; a refusal
/// of this object rests it; anything else retries the pass.
fn classify(err: kube::Error) -> Outcome {
    match err {
        kube::Error::Api(status) if matches!(status.code, 404 | 409) => Outcome::Stale,
        kube::Error::Api(status) if matches!(status.code, 400 | 403 | 422) => Outcome::Rejected {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => Outcome::Failed(other),
    }
}

impl Writer {
    /// Rests `key` on its own backoff (a refused write, or one waiting for its namespace):
    /// held until then, its host retried when the rest is over. How long it rests.
    fn rest(&mut self, key: &Key, wanted: &Wanted) -> std::time::Duration {
        let host = wanted.bodies.get(key).and_then(|b| b.host.clone());
        let rest = self.rejections.refused(key, host, Instant::now());
        self.held.insert(key.clone(), super::plan::Hold::Resting);
        rest
    }

    /// Carries out `writes`, several at a time. Returns how many were made and which
    /// objects turned out changed since read; a failure not about one object is returned
    /// (after the successful writes are recorded) so the pass is retried.
    pub(super) async fn execute(
        &mut self,
        writes: Vec<Write>,
        wanted: &Wanted,
    ) -> Result<(usize, BTreeSet<Key>), kube::Error> {
        let us = self.ctx.installation.clone();
        let fence = self.ctx.gates.leader.clone();
        let jobs: Vec<_> = writes
            .into_iter()
            .map(|write| {
                let api = self.api(write.key());
                let current = self.existing.get(write.key()).cloned();
                (write, api, current)
            })
            .collect();
        let outcomes: Vec<(Write, Outcome)> = stream::iter(jobs)
            .map(|(write, api, current)| {
                let (us, fence) = (&us, &fence);
                async move {
                    let outcome =
                        carry_out(&api, &write, wanted, current.as_ref(), us, fence).await;
                    (write, outcome)
                }
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        let mut done = 0;
        let mut stale = BTreeSet::new();
        let mut fenced = Vec::new();
        let mut failed = None;
        for (write, outcome) in outcomes {
            let key = write.key().clone();
            let (kind, operation) = (key.0.name(), operation(&write));
            match outcome {
                Outcome::Written(stored) => {
                    info!(kind, name = key.1, operation, "written");
                    self.existing.insert(key.clone(), stored);
                    self.rejections.cleared(&key);
                    self.ctx
                        .metrics
                        .wrote(self.cluster.as_str(), operation, kind);
                    done += 1;
                }
                Outcome::Deleted => {
                    info!(kind, name = key.1, operation, "deleted");
                    self.existing.remove(&key);
                    self.rejections.cleared(&key);
                    self.ctx
                        .metrics
                        .wrote(self.cluster.as_str(), operation, kind);
                    done += 1;
                }
                Outcome::Stale => {
                    debug!(kind, name = key.1, "changed since read; reading it again");
                    stale.insert(key);
                }
                Outcome::Rejected {
                    code,
                    reason,
                    message,
                } => {
                    let rest = self.rest(&key, wanted);
                    let labels = crate::metrics::RejectionLabels {
                        cluster: self.cluster.to_string(),
                        kind,
                        reason: known_reason(&reason),
                    };
                    self.ctx
                        .metrics
                        .write_rejections
                        .get_or_create(&labels)
                        .inc();
                    let uid = self
                        .existing
                        .get(&key)
                        .and_then(|e| e.uid.as_ref().map(ToString::to_string));
                    self.reporter()
                        .rejected(&key, uid, code, &reason, &message, rest)
                        .await;
                }
                Outcome::NoNamespace => {
                    // Not an error to report: the namespace may come later. It rests (and
                    // is tried again) like a refused object, without an Event.
                    debug!(
                        kind,
                        name = key.1,
                        "its namespace does not exist in this cluster"
                    );
                    self.rest(&key, wanted);
                }
                Outcome::Fenced => {
                    debug!(kind, name = key.1, "not written: the leader term ended");
                    fenced.push(key);
                }
                Outcome::Failed(err) => {
                    let error = crate::connect::describe::kube_error(&err);
                    debug!(kind, name = key.1, error, "write failed");
                    failed.get_or_insert(err);
                }
            }
        }
        // A write is abandoned when the term as it stood when the write went out runs out
        // before the answer comes (a slow API server): if the term has been renewed since,
        // the object is read again and planned again in this pass's next round, not left
        // unwritten until the next change. (The next write checks the fence again.)
        if fence.term().is_some() {
            stale.extend(fenced);
        }
        match failed {
            Some(err) => Err(err),
            None => Ok((done, stale)),
        }
    }
}

/// The API's reason as a metric label: one of the reasons a refusal has, else `Other` (a
/// webhook may set any string, and a label must not grow without bound).
fn known_reason(reason: &str) -> &'static str {
    match reason {
        "Forbidden" => "Forbidden",
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        _ => "Other",
    }
}

fn operation(write: &Write) -> &'static str {
    match write {
        Write::Create(_) => "create",
        Write::Update { .. } => "update",
        Write::Delete { .. } => "delete",
    }
}
