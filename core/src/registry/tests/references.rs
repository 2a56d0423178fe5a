//! A cluster's references: what a new source of its objects must list again or see removed.

use super::*;
use crate::model::Object;

#[test]
fn a_cluster_s_references_are_every_object_it_was_given_and_go_with_them() {
    let objects = every_kind_of_object();
    let mut r = registry([cluster("east"), cluster("west")]);
    for object in &objects {
        r.apply(upsert("east", object.clone()));
    }
    // An invalid workload (no host can be built) is held too.
    let invalid = workload("shop", "bad", "Bad Name", "prod");
    r.apply(upsert("east", invalid.clone()));
    let mut given: BTreeSet<ObjectRef> = objects.iter().map(Object::reference).collect();
    given.insert(ObjectRef::Workload(invalid.kind, invalid.key.clone()));
    assert_eq!(r.references(&ClusterName::new("east")), given);
    assert!(r.references(&ClusterName::new("west")).is_empty());
    assert!(r.references(&ClusterName::new("north")).is_empty());

    for reference in &given {
        r.apply(Delta::Remove(ClusterName::new("east"), reference.clone()));
    }
    assert!(r.references(&ClusterName::new("east")).is_empty());
}
