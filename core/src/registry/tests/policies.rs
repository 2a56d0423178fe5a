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
        api: Default::default(),
        ignored: Vec::new(),
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

#[test]
fn federators_own_policy_beats_admirals_for_the_same_host_even_with_the_same_name() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    // Admiral's: older and naming the env; federator's: younger, for every env, same name.
    let mut admiral = gtp("prod", "greeting", Some("prod"), LocalityMode::Topology, 1);
    admiral.api = crate::model::PolicySource::Admiral;
    let ours = gtp(
        "prod",
        "greeting",
        None,
        LocalityMode::Failover(vec!["a".into(), "b".into()]),
        9,
    );
    r.apply(upsert("east", admiral));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.api,
        crate::model::PolicySource::Admiral
    );
    r.apply(upsert("east", ours));
    let applied = r.get(&h).unwrap().policy.clone().unwrap();
    assert_eq!(applied.info.api, crate::model::PolicySource::Federator);
    // Admiral's is reported as shadowed, on its own object.
    let shadowed: Vec<_> = r
        .warnings()
        .into_iter()
        .filter(|d| d.reason == "PolicyShadowed")
        .collect();
    assert_eq!(shadowed.len(), 1, "{shadowed:?}");
    assert_eq!(
        shadowed[0].subject.as_ref().unwrap().api_version,
        "admiral.io/v1alpha1"
    );
    // Deleting Admiral's leaves federator's (they share a name, not an identity).
    r.apply(remove(
        "east",
        ObjectRef::AdmiralPolicy(ObjectKey::new("sample", "prod")),
    ));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.api,
        crate::model::PolicySource::Federator
    );
    assert!(r.warnings().iter().all(|d| d.reason != "PolicyShadowed"));
}
