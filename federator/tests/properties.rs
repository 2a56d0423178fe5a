//! Property tests of the registry over randomly generated multi-cluster worlds.

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use federator::fixtures::*;
use federator::model::{
    ClusterInfo, ClusterName, Host, LocalityMode, Object, ObjectKey, PolicyInfo, TrafficPolicy,
};
use federator::registry::{Delta, GlobalService, Registry, RegistryConfig};
use federator::render::{RenderOptions, render_cluster};
use proptest::prelude::*;

const CLUSTERS: [&str; 3] = ["east", "west", "south"];
const PORT_SETS: [&[(&str, u16)]; 3] = [
    &[("http", 80)],
    &[("http", 80), ("grpc", 90)],
    &[("tcp-db", 5432)],
];

#[derive(Debug, Clone)]
struct App {
    cluster: usize,
    ns: u8,
    name: u8,
    identity: u8,
    env: u8,
    ports: usize,
    ready: Vec<(u8, u8)>,
    created: Option<u8>,
    /// Whether the pods carry the label the Service selects.
    selected: bool,
}

fn app_strategy() -> impl Strategy<Value = App> {
    (
        0..3usize,
        0..2u8,
        0..4u8,
        0..3u8,
        0..2u8,
        0..3usize,
        prop::collection::vec((0..3u8, 0..3u8), 0..4),
        prop::option::of(0..3u8),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(cluster, ns, name, identity, env, ports, ready, created, selected)| App {
                cluster,
                ns,
                name,
                identity,
                env,
                ports,
                ready,
                created,
                selected,
            },
        )
}

fn app_deltas(app: &App, prefix: &str) -> Vec<Delta> {
    let cluster = CLUSTERS[app.cluster];
    let ns = format!("ns{}", app.ns);
    let name = format!("{prefix}app{}", app.name);
    let mut svc = PORT_SETS[app.ports]
        .iter()
        .fold(service(&ns, &name), |s, (p, n)| s.port(p, *n));
    svc.created = app.created.map(i64::from);
    let ready: Vec<(String, String)> = app
        .ready
        .iter()
        .map(|(n, z)| {
            (
                format!("node{n}"),
                if *z == 0 {
                    String::new()
                } else {
                    format!("zone{z}")
                },
            )
        })
        .collect();
    let ready: Vec<(&str, &str)> = ready
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut workload = workload(
        &ns,
        &name,
        &format!("id{}", app.identity),
        &format!("env{}", app.env),
    );
    if !app.selected {
        workload
            .pod_labels
            .insert("app".into(), format!("{name}-unselected"));
    }
    vec![
        upsert(cluster, workload),
        upsert(cluster, svc),
        upsert(cluster, slice(&ns, &format!("{name}-1"), &name, &ready)),
    ]
}

#[derive(Debug, Clone)]
struct World {
    base: Vec<Delta>,
    /// Objects that come and go again.
    noise: Vec<Delta>,
    /// Earlier versions of base objects, which the base versions replace.
    stale: Vec<Delta>,
}

fn world_strategy() -> impl Strategy<Value = World> {
    let apps = prop::collection::vec(app_strategy(), 0..8);
    let noise_apps = prop::collection::vec(app_strategy(), 0..3);
    let nodes = prop::collection::vec((0..3usize, 0..3u8, 0..2u8, 1..3u8), 0..6);
    let gateways = prop::collection::vec((0..3usize, 0..3u8), 0..3);
    let policies = prop::collection::vec(
        (0..3usize, 0..3u8, prop::option::of(0..2u8), 0..3u8, 0..3u8),
        0..3,
    );
    let clusters = prop::collection::vec(prop::bool::ANY, 3);
    let stale_apps = prop::collection::vec((0..3usize, app_strategy()), 0..5);
    (apps, noise_apps, nodes, gateways, policies, clusters, stale_apps).prop_map(
        |(apps, noise_apps, nodes, gateways, policies, clusters, stale_apps)| {
            // Later duplicates of one object would make "the final state" order-dependent:
            // keep the first of each reference.
            let mut seen = BTreeSet::new();
            let mut keep = |d: Delta| -> Option<Delta> {
                let key = match &d {
                    Delta::Upsert(c, o) => (c.clone(), Some(o.reference())),
                    Delta::UpsertCluster(info) => (info.name.clone(), None),
                    _ => return Some(d),
                };
                seen.insert(key).then_some(d)
            };
            let mut base = Vec::new();
            for (i, registered) in clusters.iter().enumerate() {
                if *registered {
                    base.push(Delta::UpsertCluster(ClusterInfo {
                        network: Some(format!("net{}", i % 2)),
                        ..ClusterInfo::new(CLUSTERS[i])
                    }));
                }
            }
            base.extend(apps.iter().flat_map(|a| app_deltas(a, "")));
            for (c, n, region, zone) in nodes {
                base.push(upsert(
                    CLUSTERS[c],
                    node(&format!("node{n}"), &format!("region{region}"), &format!("zone{zone}"), &format!("10.0.{c}.{n}")),
                ));
            }
            for (c, a) in gateways {
                base.push(upsert(CLUSTERS[c], gateway(&[&format!("192.0.2.{a}")])));
            }
            for (c, identity, env, mode, created) in policies {
                let mode = match mode {
                    0 => LocalityMode::Topology,
                    1 => LocalityMode::Failover(vec!["region0".into(), "region1".into()]),
                    _ => LocalityMode::Distribute(vec![("region0".into(), 50), ("region1".into(), 50)]),
                };
                base.push(upsert(
                    CLUSTERS[c],
                    Object::Policy(PolicyInfo {
                        api: Default::default(),
                        ignored: Vec::new(),
                        key: ObjectKey::new("ns0", format!("gtp{identity}")),
                        identity: format!("id{identity}"),
                        env: env.map(|e| format!("env{e}")),
                        policy: TrafficPolicy { mode, ..Default::default() },
                        created: Some(i64::from(created)),
                        generation: Some(1),
                    }),
                ));
            }
            let base: Vec<Delta> = base.into_iter().filter_map(&mut keep).collect();
            // Noise: objects that come and go again, some of them touching the same hosts.
            let mut noise: Vec<Delta> = noise_apps.iter().flat_map(|a| app_deltas(a, "noise-")).collect();
            noise.push(upsert("east", node("noise-node", "region9", "zone9", "10.9.9.9")));
            noise.push(upsert("west", slice("ns0", "noise-slice", "app0", &[("node0", "zone1")])));
            let noise = noise.into_iter().filter_map(&mut keep).collect();
            // Stale versions: same object, other identity/env/ports/endpoints; a node in
            // another region; a gateway with another address.
            let mut stale: Vec<Delta> = stale_apps
                .iter()
                .filter_map(|(i, variant)| {
                    let original = apps.get(*i)?;
                    let variant = App { cluster: original.cluster, ns: original.ns, name: original.name, ..variant.clone() };
                    Some(app_deltas(&variant, ""))
                })
                .flatten()
                .collect();
            for d in &base {
                if let Delta::Upsert(c, Object::Node(n)) = d {
                    stale.push(upsert(c.as_str(), node(&n.name, "region-old", "zone-old", "10.8.8.8")));
                }
                if let Delta::Upsert(c, Object::Gateway(_)) = d {
                    stale.push(upsert(c.as_str(), gateway(&["192.0.2.200"])));
                }
            }
            // Only versions of objects that exist in the final state.
            let finals: BTreeSet<_> = base.iter().filter_map(|d| match d {
                Delta::Upsert(c, o) => Some((c.clone(), o.reference())),
                _ => None,
            }).collect();
            stale.retain(|d| matches!(d, Delta::Upsert(c, o) if finals.contains(&(c.clone(), o.reference()))));
            World { base, noise, stale }
        },
    )
}

fn removal(delta: &Delta) -> Delta {
    match delta {
        Delta::Upsert(cluster, object) => Delta::Remove(cluster.clone(), object.reference()),
        other => panic!("not an upsert: {other:?}"),
    }
}

/// Every object of `world` arriving, changing and going again: stale versions first, then
/// the current ones and the noise, then the noise and every object removed.
fn lifetime(world: &World) -> Vec<Delta> {
    let mut sequence = world.stale.clone();
    sequence.extend(world.base.iter().cloned());
    sequence.extend(world.noise.iter().cloned());
    sequence.extend(world.noise.iter().map(removal));
    sequence.extend(
        world
            .base
            .iter()
            .filter(|d| matches!(d, Delta::Upsert(..)))
            .map(removal),
    );
    sequence
}

/// The delta with its workload's env written in capitals when `mask` has the bit of the
/// workload's number: another spelling of the same host.
fn shout(delta: Delta, mask: u8) -> Delta {
    match delta {
        Delta::Upsert(cluster, Object::Workload(mut w)) => {
            let number = w.key.name.chars().last().and_then(|c| c.to_digit(10));
            if number.is_some_and(|n| mask & (1 << n) != 0) {
                w.spelling = format!("{}.{}", w.env.to_ascii_uppercase(), w.identity).into();
            }
            Delta::Upsert(cluster, Object::Workload(w))
        }
        other => other,
    }
}

/// Everything observable except VIPs (which keep their first address by design).
fn observable(
    r: &Registry,
) -> (
    Vec<GlobalService>,
    Vec<String>,
    BTreeMap<String, Vec<String>>,
) {
    let services = r
        .services()
        .into_iter()
        .cloned()
        .map(|mut s| {
            s.vip = None;
            s
        })
        .collect();
    let diags = r.diagnostics().iter().map(ToString::to_string).collect();
    let gateways = CLUSTERS
        .iter()
        .map(|c| {
            let addrs = r
                .gateway_addresses(&ClusterName::new(*c))
                .iter()
                .map(|g| format!("{}:{}", g.address, g.port))
                .collect();
            (c.to_string(), addrs)
        })
        .collect();
    (services, diags, gateways)
}

fn rendered(r: &Registry) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for c in CLUSTERS {
        for h in render_cluster(
            &r.full_view(),
            &ClusterName::new(c),
            &RenderOptions::default(),
        ) {
            let text = format!("{:?}{:?}", h.service_entry, h.destination_rule);
            out.insert((c.to_owned(), h.service_entry.spec.hosts[0].clone()), text);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The final state depends only on which objects exist, not on the order they arrived
    /// in, nor on objects that came and went in between.
    #[test]
    fn registry_state_is_independent_of_delta_order(
        world in world_strategy(),
        seed_a in any::<u64>(),
        seed_b in any::<u64>(),
    ) {
        let shuffle = |mut v: Vec<Delta>, seed: u64| {
            // A deterministic Fisher-Yates from the seed keeps failures reproducible.
            let mut state = seed | 1;
            for i in (1..v.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                v.swap(i, (state % (i as u64 + 1)) as usize);
            }
            v
        };
        let mut a = Registry::new(RegistryConfig::default());
        for d in shuffle(world.base.clone(), seed_a) {
            a.apply(d);
        }
        let mut b = Registry::new(RegistryConfig::default());
        for d in shuffle(world.stale.clone(), seed_b ^ 0x5eed) {
            b.apply(d);
        }
        let mut mixed = world.base.clone();
        mixed.extend(world.noise.iter().cloned());
        for d in shuffle(mixed, seed_b) {
            b.apply(d);
        }
        for d in shuffle(world.noise.iter().map(removal).collect(), seed_a ^ seed_b) {
            b.apply(d);
        }
        prop_assert_eq!(observable(&a), observable(&b));
    }

    /// Every delta reports every host whose rendered objects it changed in any cluster:
    /// sync re-renders only what the change set names, so a miss would leave stale config.
    #[test]
    fn change_sets_name_every_host_whose_output_changed(world in world_strategy()) {
        let mut r = Registry::new(RegistryConfig::default());
        let sequence = lifetime(&world);
        let mut before = rendered(&r);
        for delta in sequence {
            let changes = r.apply(delta.clone());
            let after = rendered(&r);
            let keys: BTreeSet<_> = before.keys().chain(after.keys()).cloned().collect();
            for key in keys {
                if before.get(&key) != after.get(&key) {
                    let host_named = changes.hosts.iter().any(|h| h.as_str() == key.1);
                    let cluster_named = changes.clusters.iter().any(|c| c.as_str() == key.0);
                    prop_assert!(host_named || cluster_named, "{delta:?} changed {key:?} but reported {changes:?}");
                }
            }
            before = after;
        }
        prop_assert!(r.is_empty(), "removing every object leaves no host");
        prop_assert!(r.vip_table().is_empty(), "and no VIP");
    }

    /// The view the registry publishes after each batch (refreshed from what changed) is
    /// always the view built from scratch: writers and DNS, which render only from published
    /// views, never miss a change. The registry is kept tight (two hosts per cluster, a VIP
    /// range of a few addresses, restored VIPs, mixed spellings, a cluster removed and back)
    /// so the quota, VIP exhaustion and spelling paths all run.
    #[test]
    fn published_views_equal_views_built_from_scratch(
        world in world_strategy(),
        batches in prop::collection::vec(1..8usize, 1..40),
        shouted in 0..16u8,
        restored in prop::collection::btree_map((0..2u8, 0..3u8), 0..4u8, 0..4),
        removed in (0..3usize, 0..64usize),
    ) {
        let mut r = Registry::new(RegistryConfig {
            max_hosts_per_cluster: 2,
            vip_range: "240.0.0.0/30".parse().unwrap(),
            ..RegistryConfig::default()
        });
        let table: BTreeMap<Host, std::net::IpAddr> = restored
            .iter()
            .map(|((env, id), offset)| {
                let host = Host::build(&format!("env{env}"), &format!("id{id}"), "global").unwrap();
                (host, std::net::IpAddr::from([240, 0, 0, *offset]))
            })
            .collect();
        r.restore_vips(table);
        let mut sequence: Vec<Delta> = lifetime(&world)
            .into_iter()
            .map(|d| shout(d, shouted))
            .collect();
        // One cluster goes away mid-way and comes back.
        let (cluster, at) = (CLUSTERS[removed.0], removed.1.min(sequence.len()));
        sequence.insert(at, Delta::RemoveCluster(ClusterName::new(cluster)));
        sequence.push(Delta::UpsertCluster(ClusterInfo::new(ClusterName::new(cluster))));
        let mut deltas = sequence.into_iter().peekable();
        let mut sizes = batches.into_iter().cycle();
        let mut before = r.publish();
        let mut round = 0;
        while deltas.peek().is_some() {
            for delta in deltas.by_ref().take(sizes.next().unwrap_or(1)) {
                r.apply(delta);
            }
            round += 1;
            if round == 3 {
                r.prune_vips();
            }
            let published = r.publish();
            prop_assert!(published.same_content(&r.full_view()), "published view differs");
            // A reader of the previous view learns of every host that changed since.
            let differs: BTreeSet<Host> = before
                .services()
                .chain(published.services())
                .filter(|s| before.get(&s.host) != published.get(&s.host))
                .map(|s| s.host.clone())
                .collect();
            match published.changed_since(before.hosts_generation()) {
                federator::registry::Since::Nothing => prop_assert!(differs.is_empty()),
                federator::registry::Since::Hosts(hosts) => {
                    prop_assert!(differs.is_subset(&hosts), "{differs:?} not in {hosts:?}")
                }
                federator::registry::Since::TooOld => prop_assert!(false, "history lost"),
            }
            if federator::dns::records(&published) != federator::dns::records(&before) {
                prop_assert!(
                    published.hosts_generation() != before.hosts_generation(),
                    "DNS answers changed but the view says no host did"
                );
            }
            before = published;
        }
    }

    /// A host keeps its VIP while unrelated hosts are added and removed.
    #[test]
    fn vips_are_stable_while_other_hosts_come_and_go(
        kept in prop::collection::btree_set(0..40u8, 1..10),
        churn in prop::collection::vec((0..40u8, prop::bool::ANY), 0..60),
    ) {
        let mut r = Registry::new(RegistryConfig::default());
        let add = |r: &mut Registry, id: String| {
            for d in app("east", "ns", &id, &id, "prod", &[("http", 80)], &[("", "z")]) {
                r.apply(d);
            }
        };
        for id in &kept {
            add(&mut r, format!("kept{id}"));
        }
        let vips: Vec<_> = kept
            .iter()
            .map(|id| r.get(&Host::build("prod", &format!("kept{id}"), "global").unwrap()).unwrap().vip)
            .collect();
        for (id, present) in churn {
            let name = format!("other{id}");
            if present {
                add(&mut r, name);
            } else {
                r.apply(Delta::Remove(ClusterName::new("east"), federator::model::ObjectRef::Workload(
                    federator::model::WorkloadKind::Deployment, ObjectKey::new("ns", name))));
            }
        }
        let now: Vec<_> = kept
            .iter()
            .map(|id| r.get(&Host::build("prod", &format!("kept{id}"), "global").unwrap()).unwrap().vip)
            .collect();
        prop_assert_eq!(vips, now);
    }
}
