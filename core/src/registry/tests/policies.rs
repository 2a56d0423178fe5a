//! GlobalTrafficPolicies: which one governs a host, and what happens when one moves.

use super::*;

fn gtp(
    name: &str,
    identity: &str,
    env: Option<&str>,
    mode: LocalityMode,
    created: i64,
) -> PolicyInfo {
    PolicyInfo {
        key: ObjectKey::new("sample", name),
        identity: identity.into(),
        env: env.map(Into::into),
        policy: TrafficPolicy {
            mode,
            ..Default::default()
        },
        created: Some(created),
        generation: Some(1),
    }
}

#[test]
fn policies_apply_by_identity_and_env_with_clear_precedence() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let any_env = gtp(
        "all",
        "greeting",
        None,
        LocalityMode::Failover(vec!["a".into(), "b".into()]),
        1,
    );
    let changes = r.apply(upsert("east", any_env));
    assert!(changes.hosts.contains(&h));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.key.name,
        "all"
    );

    // One naming the env wins even though it is newer; the other is reported as ignored.
    let prod = gtp("prod", "greeting", Some("prod"), LocalityMode::Topology, 5);
    r.apply(upsert("west", prod));
    let applied = r.get(&h).unwrap().policy.clone().unwrap();
    assert_eq!(
        (applied.cluster.as_str(), applied.info.key.name.as_str()),
        ("west", "prod")
    );
    let diags = r.diagnostics();
    assert!(
        diags
            .iter()
            .any(|d| d.object == "GlobalTrafficPolicy sample/all" && d.message.contains("ignored"))
    );

    // A policy for another env does not apply.
    r.apply(upsert(
        "east",
        gtp(
            "stage",
            "greeting",
            Some("stage"),
            LocalityMode::Topology,
            0,
        ),
    ));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.key.name,
        "prod"
    );

    r.apply(remove(
        "west",
        ObjectRef::Policy(ObjectKey::new("sample", "prod")),
    ));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.key.name,
        "all"
    );
}

#[test]
fn a_policy_that_changes_identity_leaves_the_old_one() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    r.apply(upsert(
        "east",
        gtp("p", "greeting", None, LocalityMode::Topology, 1),
    ));
    assert!(r.get(&h).unwrap().policy.is_some());
    let changes = r.apply(upsert(
        "east",
        gtp("p", "other", None, LocalityMode::Topology, 1),
    ));
    assert!(changes.hosts.contains(&h));
    assert!(r.get(&h).unwrap().policy.is_none());
}
