use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::fixtures::{gateway, service};
use crate::model::ObjectKey;

fn key(name: &str) -> ApiKey {
    ("Service", "ns".into(), name.into())
}

fn svc(name: &str) -> Object {
    Object::Service(service("ns", name).port("http", 80))
}

fn gw(name: &str) -> Object {
    let mut gw = gateway(&["192.0.2.1"]);
    gw.key = ObjectKey::new("ns", name);
    Object::Gateway(gw)
}

impl Tracker {
    /// Sends a step's deltas (here: returns them) and commits it, as the watch task does.
    fn run(&mut self, step: Step) -> Vec<Delta> {
        self.commit(step.commit);
        step.deltas
    }
}

fn removed(deltas: &[Delta]) -> Vec<String> {
    deltas
        .iter()
        .filter_map(|d| match d {
            Delta::Remove(_, r) => Some(r.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn relist_removes_what_vanished_while_disconnected() {
    let mut t = Tracker::new("east".into());
    t.run(t.init());
    t.run(t.apply(key("a"), Some(svc("a"))));
    t.run(t.apply(key("b"), Some(svc("b"))));
    assert!(t.run(t.init_done()).is_empty());
    // The stream restarts; only "a" is listed again.
    t.run(t.init());
    let upserts = t.run(t.apply(key("a"), Some(svc("a"))));
    assert_eq!(upserts.len(), 1);
    assert_eq!(removed(&t.run(t.init_done())), ["Service ns/b"]);
    // A second relist with the same content removes nothing.
    t.run(t.init());
    t.run(t.apply(key("a"), Some(svc("a"))));
    assert!(t.run(t.init_done()).is_empty());
}

#[test]
fn an_object_that_stops_qualifying_is_removed() {
    let mut t = Tracker::new("east".into());
    t.run(t.apply(key("a"), Some(svc("a"))));
    let deltas = t.run(t.apply(key("a"), None));
    assert_eq!(removed(&deltas), ["Service ns/a"]);
    assert!(t.run(t.delete(key("a"))).is_empty(), "already forgotten");
}

#[test]
fn a_service_turning_into_the_gateway_swaps_its_reference() {
    let mut t = Tracker::new("east".into());
    t.run(t.apply(key("gw"), Some(svc("gw"))));
    let deltas = t.run(t.apply(key("gw"), Some(gw("gw"))));
    assert_eq!(removed(&deltas), ["Service ns/gw"]);
    assert!(matches!(
        deltas.last(),
        Some(Delta::Upsert(_, Object::Gateway(_)))
    ));
}

#[test]
fn deletes_during_a_relist_are_not_removed_twice() {
    let mut t = Tracker::new("east".into());
    t.run(t.apply(key("a"), Some(svc("a"))));
    t.run(t.init());
    t.run(t.apply(key("a"), Some(svc("a"))));
    assert_eq!(removed(&t.run(t.delete(key("a")))), ["Service ns/a"]);
    assert!(t.run(t.init_done()).is_empty());
}

#[test]
fn an_uncommitted_remove_is_sent_again_by_the_next_relist() {
    let mut t = Tracker::new("east".into());
    t.run(t.apply(key("a"), Some(svc("a"))));
    let before = t.clone();
    // The task is aborted while sending the Remove: the step is dropped uncommitted.
    let lost = t.delete(key("a"));
    assert_eq!(removed(&lost.deltas), ["Service ns/a"]);
    drop(lost);
    assert_eq!(
        t, before,
        "an uncommitted step leaves the tracker as it was"
    );
    // The reconnected stream lists everything again; "a" is not there any more.
    t.run(t.init());
    assert_eq!(removed(&t.run(t.init_done())), ["Service ns/a"]);
}

/// What happens to the watched cluster: an object is applied or deleted, or the stream
/// restarts and lists everything.
#[derive(Debug, Clone)]
enum Op {
    /// Key `.0` becomes nothing the registry wants (0), a Service (1) or a gateway (2).
    Apply(u8, u8),
    Delete(u8),
    Relist,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2u8, 0..3u8).prop_map(|(k, v)| Op::Apply(k, v)),
        (0..2u8).prop_map(Op::Delete),
        Just(Op::Relist),
    ]
}

fn object(k: u8, variant: u8) -> Option<Object> {
    let name = format!("o{k}");
    match variant {
        1 => Some(svc(&name)),
        2 => Some(gw(&name)),
        _ => None,
    }
}

/// A watch stream over a simulated cluster, feeding a simulated registry through a task
/// that can be aborted in the middle of sending a step.
struct Sim {
    tracker: Tracker,
    /// What the cluster holds, by key.
    cluster: BTreeMap<u8, u8>,
    /// What the registry holds.
    registry: BTreeSet<ObjectRef>,
    /// For each step in turn: `Some(n)` aborts the task after sending `n` of its deltas.
    aborts: std::vec::IntoIter<Option<usize>>,
    /// The task was aborted and no new one has listed yet: changes go unseen.
    down: bool,
}

impl Sim {
    fn new(aborts: Vec<Option<usize>>) -> Self {
        Self {
            tracker: Tracker::new("east".into()),
            cluster: BTreeMap::new(),
            registry: BTreeSet::new(),
            aborts: aborts.into_iter(),
            down: false,
        }
    }

    /// Sends a step's deltas, then commits it; `false` when the task was aborted first.
    fn send(&mut self, step: Step) -> bool {
        let total = step.deltas.len();
        let sent = self.aborts.next().flatten().map_or(total, |n| n.min(total));
        for delta in step.deltas.into_iter().take(sent) {
            match delta {
                Delta::Upsert(_, object) => self.registry.insert(object.reference()),
                Delta::Remove(_, reference) => self.registry.remove(&reference),
                other => panic!("a tracker sent {other:?}"),
            };
        }
        if sent < total {
            self.down = true;
            return false;
        }
        self.tracker.commit(step.commit);
        true
    }

    /// A (new) task lists everything, until one relist is not cut short.
    fn relist(&mut self) {
        'task: loop {
            if !self.send(self.tracker.init()) {
                continue;
            }
            for (k, v) in self.cluster.clone() {
                if !self.send(self.tracker.apply(key(&k.to_string()), object(k, v))) {
                    continue 'task;
                }
            }
            if self.send(self.tracker.init_done()) {
                self.down = false;
                return;
            }
        }
    }

    fn event(&mut self, op: Op) {
        match op {
            Op::Apply(k, v) => {
                self.cluster.insert(k, v);
                if !self.down {
                    self.send(self.tracker.apply(key(&k.to_string()), object(k, v)));
                }
            }
            Op::Delete(k) => {
                self.cluster.remove(&k);
                if !self.down {
                    self.send(self.tracker.delete(key(&k.to_string())));
                }
            }
            Op::Relist => self.relist(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever the events, wherever a task is aborted while sending, and whatever changes
    /// until a new task lists, the registry holds exactly what the cluster holds once a
    /// relist has completed.
    #[test]
    fn an_aborted_send_loses_nothing(
        ops in proptest::collection::vec(op(), 0..24),
        aborts in proptest::collection::vec(proptest::option::weighted(0.4, 0..2usize), 0..48),
    ) {
        let mut sim = Sim::new(aborts);
        for op in ops {
            sim.event(op);
        }
        sim.relist();
        let expected: BTreeSet<ObjectRef> = sim
            .cluster
            .iter()
            .filter_map(|(k, v)| object(*k, *v).map(|o| o.reference()))
            .collect();
        prop_assert_eq!(&sim.registry, &expected);
    }

    /// Planning a step, whatever came before, never changes the tracker: only `commit` does.
    #[test]
    fn an_uncommitted_step_leaves_the_tracker_as_it_was(
        ops in proptest::collection::vec(op(), 0..16),
        next in op(),
    ) {
        let mut sim = Sim::new(Vec::new());
        for op in ops {
            sim.event(op);
        }
        let before = sim.tracker.clone();
        let t = &sim.tracker;
        let steps = match next {
            Op::Apply(k, v) => vec![t.apply(key(&k.to_string()), object(k, v))],
            Op::Delete(k) => vec![t.delete(key(&k.to_string()))],
            Op::Relist => vec![t.init(), t.init_done()],
        };
        drop(steps);
        prop_assert_eq!(&sim.tracker, &before);
    }
}
