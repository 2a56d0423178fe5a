//! What a writer reads of its cluster for a full pass: the sync namespace's ServiceEntries,
//! DestinationRules and Gateway, and the Sidecars and ServiceImports across the cluster, all
//! listed at once.
//!
//! At start-up a writer's first read may start before the registry has every cluster's lists
//! (a read-ahead, beside the wait), so a restart's reads overlap. It is used only within the
//! term it was read in (no other leader can have written since) and while it is fresh (what
//! a user changed meanwhile waits at most that long, not until the next resync).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use kube::api::{DynamicObject, ListParams};

use super::objects::existing;
use super::plan::{Existing, Key, Kind};
use super::writer::Writer;

/// The kinds kept in the sync namespace.
const IN_NAMESPACE: [Kind; 3] = [Kind::ServiceEntry, Kind::DestinationRule, Kind::Gateway];

/// How old a read-ahead may be when the first pass starts; an older one is read again.
const READ_AHEAD_FRESH: Duration = Duration::from_secs(10);

/// A read made ahead of the first pass of a term.
pub(super) struct ReadAhead {
    /// The term it was read in.
    term: u64,
    /// When the read started.
    at: Instant,
    objects: BTreeMap<Key, Existing>,
}

impl Writer {
    /// Everything this writer keeps, read from the cluster; Sidecars and ServiceImports the
    /// cluster will not list are left out (and left alone, see `outside.rs`).
    pub(super) async fn read_all(&mut self) -> Result<BTreeMap<Key, Existing>, kube::Error> {
        let namespaced = IN_NAMESPACE.map(|kind| self.read_in_namespace(kind));
        let (namespaced, sidecars, imports) = tokio::join!(
            try_join_all(namespaced),
            self.list_outside(Kind::Sidecar),
            self.list_outside(Kind::ServiceImport),
        );
        let mut read: BTreeMap<Key, Existing> = namespaced?.into_iter().flatten().collect();
        if let Some(listed) = self.outside_listed(Kind::Sidecar, sidecars) {
            read.extend(self.read_sidecars(&listed));
        }
        if let Some(listed) = self.outside_listed(Kind::ServiceImport, imports) {
            read.extend(self.read_service_imports(&listed));
        }
        Ok(read)
    }

    /// Reads ahead for the first pass of the term held now; a failed read is left to that
    /// pass.
    pub(super) async fn read_ahead(&mut self) {
        let Some(term) = self.ctx.gates.leader.term().map(|t| t.number) else {
            return;
        };
        let at = Instant::now();
        if let Ok(objects) = self.read_all().await {
            self.read_ahead = Some(ReadAhead { term, at, objects });
        }
    }

    /// The read ahead, when it was made in the term held now and is still fresh.
    pub(super) fn take_read_ahead(&mut self) -> Option<BTreeMap<Key, Existing>> {
        let ahead = self.read_ahead.take()?;
        let term = self.ctx.gates.leader.term().map(|t| t.number);
        usable(ahead.term, ahead.at.elapsed(), term).then_some(ahead.objects)
    }

    /// The sync namespace's objects of `kind`, as the plan compares them: each page is
    /// boiled down before the next is read.
    async fn read_in_namespace(&self, kind: Kind) -> Result<Vec<(Key, Existing)>, kube::Error> {
        let api = self.api(&(kind, String::new()));
        let us = &self.ctx.installation;
        let boil = |read: &mut Vec<(Key, Existing)>, page: Vec<DynamicObject>| {
            read.extend(page.iter().map(|object| {
                let name = object.metadata.name.clone().unwrap_or_default();
                ((kind, name), existing(kind, object, us))
            }));
        };
        let params = ListParams::default();
        super::paged::fold_pages(&api, &params, super::paged::PAGE_SIZE, Vec::new, boil).await
    }
}

/// Whether a read made in term `read_in`, `age` ago, may stand for a read now, in `term_now`:
/// only in the same term (no other leader wrote since) and while fresh.
fn usable(read_in: u64, age: Duration, term_now: Option<u64>) -> bool {
    term_now == Some(read_in) && age <= READ_AHEAD_FRESH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_ahead_stands_only_in_its_own_term_and_while_fresh() {
        let moment = Duration::from_millis(300);
        assert!(usable(4, moment, Some(4)));
        assert!(
            !usable(4, moment, Some(5)),
            "another term: another leader may have written"
        );
        assert!(!usable(4, moment, None), "not leading");
        assert!(!usable(4, READ_AHEAD_FRESH + moment, Some(4)), "too old");
    }
}
