//! The status federator reports on GlobalTrafficPolicies and Dependencies.

use super::*;
use crate::model::{Object, RejectedInfo};

fn gtp(name: &str, env: Option<&str>, created: i64) -> PolicyInfo {
    PolicyInfo {
        api: Default::default(),
        ignored: Vec::new(),
        key: ObjectKey::new("sample", name),
        identity: "greeting".into(),
        env: env.map(Into::into),
        policy: TrafficPolicy::default(),
        created: Some(created),
        generation: Some(created + 10),
    }
}

fn status_of(r: &Registry, name: &str) -> ObjectStatus {
    r.object_statuses()
        .into_iter()
        .find(|s| s.key.name == name)
        .unwrap_or_else(|| panic!("no status for {name}"))
}

fn condition<'a>(status: &'a ObjectStatus, type_: &str) -> &'a StatusCondition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} on {status:?}"))
}

#[test]
fn a_lone_policy_is_accepted_unconflicted_and_lists_its_hosts() {
    let mut r = registry(greeting("east", &[("", "a")]));
    r.apply(upsert("east", gtp("all", None, 1)));
    let s = status_of(&r, "all");
    assert_eq!(s.kind, StatusKind::GlobalTrafficPolicy);
    assert_eq!(s.cluster.as_str(), "east");
    assert_eq!(s.generation, Some(11));
    assert!(condition(&s, "Accepted").status);
    assert!(!condition(&s, "Conflicted").status);
    assert_eq!(s.hosts, [host("prod.greeting")]);
}

#[test]
fn a_policy_shadowed_by_another_says_which_and_loses_its_hosts() {
    let mut r = registry(greeting("east", &[("", "a")]));
    r.apply(upsert("east", gtp("all", None, 1)));
    // Younger, but it names the env: it takes precedence.
    r.apply(upsert("west", gtp("prod", Some("prod"), 5)));
    let loser = status_of(&r, "all");
    let conflicted = condition(&loser, "Conflicted");
    assert!(conflicted.status);
    assert_eq!(conflicted.reason, "Shadowed");
    assert!(
        conflicted.message.contains("sample/prod in cluster west")
            && conflicted.message.contains("prod.greeting.global"),
        "{conflicted:?}"
    );
    assert!(loser.hosts.is_empty());
    assert!(
        condition(&loser, "Accepted").status,
        "it is valid, only shadowed"
    );
    let winner = status_of(&r, "prod");
    assert!(!condition(&winner, "Conflicted").status);
    assert_eq!(winner.hosts, [host("prod.greeting")]);
    // The winner gone, the first one is in force again.
    r.apply(remove(
        "west",
        ObjectRef::Policy(ObjectKey::new("sample", "prod")),
    ));
    let back = status_of(&r, "all");
    assert!(!condition(&back, "Conflicted").status);
    assert_eq!(back.hosts, [host("prod.greeting")]);
}

#[test]
fn an_invalid_policy_is_not_accepted_and_stops_applying() {
    let mut r = registry(greeting("east", &[("", "a")]));
    r.apply(upsert("east", gtp("all", None, 1)));
    assert!(r.get(&host("prod.greeting")).unwrap().policy.is_some());
    let rejected = RejectedInfo {
        reference: ObjectRef::Policy(ObjectKey::new("sample", "all")),
        generation: Some(12),
        reason: "mode distribute needs weights summing to 100, got 90".into(),
    };
    let changes = r.apply(upsert("east", Object::Rejected(rejected)));
    assert!(changes.hosts.contains(&host("prod.greeting")));
    assert!(r.get(&host("prod.greeting")).unwrap().policy.is_none());
    let s = status_of(&r, "all");
    assert_eq!(s.generation, Some(12));
    let accepted = condition(&s, "Accepted");
    assert!(!accepted.status);
    assert_eq!(accepted.reason, "Invalid");
    assert!(accepted.message.contains("got 90"));
    assert!(condition(&s, "Conflicted").status);
    // Fixed: valid again, and the rejected version is forgotten.
    r.apply(upsert("east", gtp("all", None, 1)));
    let statuses: Vec<_> = r
        .object_statuses()
        .into_iter()
        .filter(|s| s.key.name == "all")
        .collect();
    assert_eq!(statuses.len(), 1);
    assert!(condition(&statuses[0], "Accepted").status);
    // Deleted: no status left to write.
    r.apply(remove(
        "east",
        ObjectRef::Policy(ObjectKey::new("sample", "all")),
    ));
    assert!(r.object_statuses().is_empty());
}

#[test]
fn a_dependency_names_the_identities_nothing_runs() {
    let mut r = registry(greeting("east", &[("", "a")]));
    r.apply(upsert(
        "east",
        dependency("web", "greeting", &["payments", "ledger"]),
    ));
    let s = status_of(&r, "web");
    assert_eq!(s.kind, StatusKind::Dependency);
    assert!(condition(&s, "Accepted").status);
    let resolved = condition(&s, "ResolvedRefs");
    assert!(!resolved.status);
    assert_eq!(resolved.reason, "UnknownIdentities");
    assert_eq!(s.unknown_identities, ["ledger", "payments"]);
    // payments starts running: one unknown left.
    for d in app(
        "west",
        "pay",
        "payments",
        "payments",
        "prod",
        &[("http", 80)],
        &[("", "a")],
    ) {
        r.apply(d);
    }
    assert_eq!(status_of(&r, "web").unknown_identities, ["ledger"]);
}
