use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::planner::shards;

fn claim(holder: &str) -> ClaimRecord {
    ClaimRecord {
        holder: holder.to_owned(),
    }
}

#[test]
fn the_decision_table() {
    let cases = [
        (Some("a"), None, Some(ClaimStep::Acquire)),
        (Some("a"), Some("a"), Some(ClaimStep::Write)),
        (
            Some("a"),
            Some("b"),
            Some(ClaimStep::Wait { holder: "b".into() }),
        ),
        (Some("b"), Some("a"), Some(ClaimStep::Release)),
        (None, Some("a"), Some(ClaimStep::Release)),
        (Some("b"), None, None),
        (Some("b"), Some("b"), None),
        (None, None, None),
    ];
    for (owner, holder, expected) in cases {
        let record = holder.map(claim);
        assert_eq!(
            claim_step("a", owner, record.as_ref()),
            expected,
            "owner {owner:?}, claimed by {holder:?}"
        );
    }
}

#[test]
fn a_plan_releases_a_claim_on_a_cluster_no_longer_listed() {
    let east = ClusterName::new("east");
    let west = ClusterName::new("west");
    let owners = BTreeMap::from([(east.clone(), "a".to_owned())]);
    let claims = BTreeMap::from([(west.clone(), claim("a"))]);
    assert_eq!(
        plan("a", &owners, &claims),
        BTreeMap::from([(east, ClaimStep::Acquire), (west, ClaimStep::Release)])
    );
}

/// The shared store and the replicas, as the edge would drive them.
#[derive(Debug, Default)]
struct World {
    /// Claims by cluster: created only where none exists, gone with their holder's lease.
    claims: BTreeMap<ClusterName, String>,
    alive: BTreeSet<String>,
    /// Each replica's last read of the membership (possibly stale).
    views: BTreeMap<String, Vec<String>>,
    /// Which clusters each replica's writers write to.
    writing: BTreeMap<String, BTreeSet<ClusterName>>,
}

impl World {
    fn step(&mut self, replica: &str, cluster: &ClusterName) {
        if !self.alive.contains(replica) {
            return;
        }
        let view = self.views.get(replica).cloned().unwrap_or_default();
        let owner = shards::owner(cluster.as_str(), view.iter().map(String::as_str));
        let record = self.claims.get(cluster).map(|h| claim(h));
        let writing = self.writing.entry(replica.to_owned()).or_default();
        match claim_step(replica, owner, record.as_ref()) {
            Some(ClaimStep::Acquire) => {
                // Conditional on no claim: always true here, since it was just read.
                self.claims.insert(cluster.clone(), replica.to_owned());
                writing.insert(cluster.clone());
            }
            Some(ClaimStep::Write) => {
                writing.insert(cluster.clone());
            }
            Some(ClaimStep::Release) => {
                // The writer stops first; then the claim goes.
                writing.remove(cluster);
                if self.claims.get(cluster).map(String::as_str) == Some(replica) {
                    self.claims.remove(cluster);
                }
            }
            Some(ClaimStep::Wait { .. }) | None => {
                writing.remove(cluster);
            }
        }
    }

    fn crash(&mut self, replica: &str) {
        // It stopped writing when its term ended; its lease, and with it its claims, expired
        // after that.
        self.alive.remove(replica);
        self.writing.remove(replica);
        self.claims.retain(|_, holder| holder != replica);
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let mut writers: BTreeMap<&ClusterName, Vec<&String>> = BTreeMap::new();
        for (replica, clusters) in &self.writing {
            for cluster in clusters {
                writers.entry(cluster).or_default().push(replica);
                prop_assert_eq!(
                    self.claims.get(cluster),
                    Some(replica),
                    "{} writes to {} without its claim",
                    replica,
                    cluster
                );
            }
        }
        for (cluster, replicas) in writers {
            prop_assert!(
                replicas.len() <= 1,
                "{} has writers {:?}",
                cluster,
                replicas
            );
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Event {
    Join(u8),
    Crash(u8),
    /// A replica reads the membership.
    Refresh(u8),
    /// A replica reads a cluster's claim and acts on it.
    Step(u8, u8),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => (0u8..4).prop_map(Event::Join),
        1 => (0u8..4).prop_map(Event::Crash),
        1 => (0u8..4).prop_map(Event::Refresh),
        4 => (0u8..4, 0u8..6).prop_map(|(r, c)| Event::Step(r, c)),
    ]
}

proptest! {
    /// Whatever replicas join, crash and read, in any order and with stale views: no cluster
    /// ever has two writers, nor a writer without its claim; and once the replicas alive
    /// have read the membership and stepped through every cluster twice, each cluster is
    /// claimed by the replica that owns it.
    #[test]
    fn one_writer_per_cluster_and_every_cluster_claimed_by_its_owner(
        events in proptest::collection::vec(event(), 0..120),
    ) {
        let clusters: Vec<ClusterName> =
            (0..6).map(|c| ClusterName::new(format!("cluster-{c}"))).collect();
        let name = |r: u8| format!("federator-{r}");
        let mut world = World::default();
        for event in events {
            match event {
                Event::Join(r) => {
                    world.alive.insert(name(r));
                }
                Event::Crash(r) => world.crash(&name(r)),
                Event::Refresh(r) => {
                    let members = world.alive.iter().cloned().collect();
                    world.views.insert(name(r), members);
                }
                Event::Step(r, c) => world.step(&name(r), &clusters[usize::from(c)]),
            }
            world.check()?;
        }
        let alive: Vec<String> = world.alive.iter().cloned().collect();
        for replica in &alive {
            world.views.insert(replica.clone(), alive.clone());
        }
        for _ in 0..2 {
            for replica in &alive {
                for cluster in &clusters {
                    world.step(replica, cluster);
                    world.check()?;
                }
            }
        }
        let owners = shards::assign(&clusters, &alive);
        prop_assert_eq!(&world.claims, &owners);
        for cluster in &clusters {
            let writers: Vec<&String> = world
                .writing
                .iter()
                .filter(|(_, cs)| cs.contains(cluster))
                .map(|(r, _)| r)
                .collect();
            prop_assert_eq!(writers, owners.get(cluster).into_iter().collect::<Vec<_>>());
        }
    }
}
