use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn timing() -> ElectionTiming {
    ElectionTiming::new(
        Duration::from_secs(15),
        Duration::from_secs(10),
        Duration::from_secs(2),
    )
    .unwrap()
}

fn held_by(holder: &str, term: u64, renewed: &str) -> LeaseRecord {
    LeaseRecord {
        holder: Some(holder.into()),
        duration: Duration::from_secs(15),
        renewed: renewed.into(),
        term,
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn timings_must_leave_a_margin() {
    assert!(ElectionTiming::new(secs(10), secs(10), secs(2)).is_err());
    assert!(ElectionTiming::new(secs(15), secs(10), secs(10)).is_err());
    assert!(ElectionTiming::new(secs(15), secs(10), Duration::ZERO).is_err());
    let err = ElectionTiming::new(secs(5), secs(8), secs(1)).unwrap_err();
    assert!(err.to_string().contains("renew deadline"), "{err}");
}

#[test]
fn no_lease_is_claimed_at_once_and_leads_until_the_renew_deadline() {
    let t0 = Instant::now();
    let mut a = Elector::new("a", timing());
    a.observed(None, t0);
    assert_eq!(a.next(t0), Step::Claim { term: 1 });
    a.claiming(t0);
    a.claimed(held_by("a", 1, "r1"), t0);
    assert_eq!(a.leadership(t0 + secs(9)).map(|t| t.number), Some(1));
    assert_eq!(
        a.leadership(t0 + secs(10)),
        None,
        "not one instant past the deadline"
    );
    assert_eq!(
        a.next(t0 + secs(1)),
        Step::Wait {
            until: t0 + secs(2)
        }
    );
    assert_eq!(a.next(t0 + secs(2)), Step::Claim { term: 1 }, "renews");
}

#[test]
fn a_held_lease_is_taken_over_only_after_a_whole_unchanged_duration() {
    let t0 = Instant::now();
    let mut b = Elector::new("b", timing());
    b.observed(Some(held_by("a", 3, "r1")), t0);
    assert!(matches!(b.next(t0 + secs(14)), Step::Wait { .. }));
    // A renewal restarts the count.
    b.observed(Some(held_by("a", 3, "r2")), t0 + secs(10));
    assert!(matches!(b.next(t0 + secs(20)), Step::Wait { .. }));
    b.observed(Some(held_by("a", 3, "r2")), t0 + secs(24));
    assert_eq!(b.next(t0 + secs(25)), Step::Claim { term: 4 });
    assert_eq!(
        b.leadership(t0 + secs(25)),
        None,
        "not before the claim is stored"
    );
}

#[test]
fn a_released_lease_is_claimed_at_once_with_the_next_term() {
    let t0 = Instant::now();
    let mut b = Elector::new("b", timing());
    let mut released = held_by("a", 7, "r9");
    released.holder = None;
    b.observed(Some(released), t0);
    assert_eq!(b.next(t0), Step::Claim { term: 8 });
}

#[test]
fn a_record_naming_another_holder_ends_the_term_at_once() {
    let t0 = Instant::now();
    let mut a = Elector::new("a", timing());
    a.claiming(t0);
    a.claimed(held_by("a", 1, "r1"), t0);
    a.observed(Some(held_by("intruder", 1, "r2")), t0 + secs(1));
    assert_eq!(a.leadership(t0 + secs(1)), None);
}

#[test]
fn a_lease_gone_ends_the_term_at_once() {
    let t0 = Instant::now();
    let mut a = Elector::new("a", timing());
    a.claiming(t0);
    a.claimed(held_by("a", 1, "r1"), t0);
    a.observed(None, t0 + secs(1));
    assert_eq!(a.leadership(t0 + secs(1)), None);
    assert_eq!(a.next(t0 + secs(1)), Step::Claim { term: 1 });
}

#[test]
fn a_record_in_our_name_without_a_term_here_waits_like_any_other() {
    // A restart under the same name, or a hand edit naming this replica: the previous
    // holder may still be writing until the lease runs out.
    let t0 = Instant::now();
    let mut a = Elector::new("a", timing());
    a.observed(Some(held_by("a", 2, "r1")), t0);
    assert!(matches!(a.next(t0 + secs(1)), Step::Wait { .. }));
    assert_eq!(a.next(t0 + secs(15)), Step::Claim { term: 3 });
}

#[test]
fn failed_renewals_end_the_term_at_its_deadline_not_before() {
    let t0 = Instant::now();
    let mut a = Elector::new("a", timing());
    a.claiming(t0);
    a.claimed(held_by("a", 1, "r1"), t0);
    a.claim_failed(t0 + secs(4));
    assert!(a.leadership(t0 + secs(4)).is_some());
    a.claim_failed(t0 + secs(10));
    assert_eq!(a.leadership(t0 + secs(10)), None);
    // Its own record, unchanged: waits a whole lease before claiming again.
    assert!(matches!(a.next(t0 + secs(11)), Step::Wait { .. }));
}

// A simulation of replicas electing through a store with compare-and-swap, with request
// delays, lost responses, pauses (a stalled process) and crashes; every replica checks
// `leadership(now)` before each write, as the writers do. Two replicas must never hold a
// term at the same instant.

#[derive(Clone, Debug)]
enum Fault {
    None,
    /// The claim is applied but the response is lost.
    LostResponse,
    /// The replica stalls this long before acting again.
    Pause(u64),
    /// The replica dies (and never comes back).
    Crash,
}

#[derive(Clone, Debug)]
struct Action {
    replica: usize,
    delay_ms: u64,
    fault: Fault,
}

fn action(replicas: usize) -> impl Strategy<Value = Action> {
    let fault = prop_oneof![
        6 => Just(Fault::None),
        1 => Just(Fault::LostResponse),
        1 => (1u64..30_000).prop_map(Fault::Pause),
        1 => Just(Fault::Crash),
    ];
    (0..replicas, 0u64..3_000, fault).prop_map(|(replica, delay_ms, fault)| Action {
        replica,
        delay_ms,
        fault,
    })
}

/// The store: a record and its version.
#[derive(Default)]
struct Store {
    record: Option<LeaseRecord>,
    version: u64,
}

/// Runs the simulation; returns the windows (ms since start) in which each replica's writers
/// may start writes: from each instant it found itself leading to its term's end.
fn simulate(replicas: usize, script: &[Action]) -> Vec<(u64, u64, usize)> {
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let mut electors: Vec<Elector> = (0..replicas)
        .map(|i| Elector::new(format!("r{i}"), timing()))
        .collect();
    let mut alive = vec![true; replicas];
    let mut store = Store::default();
    // (time, replica): when each replica acts next.
    let mut queue: BinaryHeap<Reverse<(u64, usize)>> =
        (0..replicas).map(|i| Reverse((0, i))).collect();
    let mut script = script.iter().cycle().take(script.len() * 4);
    let mut acts = Vec::new();
    while let Some(Reverse((now_ms, i))) = queue.pop() {
        if !alive[i] {
            continue;
        }
        let now = at(now_ms);
        // From now until the term's end, its writers may start writes.
        if let Some(term) = electors[i].leadership(now) {
            let until = term.until.duration_since(start).as_millis() as u64;
            acts.push((now_ms, until, i));
        }
        let Some(next) = script.next() else { break };
        let (delay, fault) = if next.replica == i {
            (next.delay_ms, next.fault.clone())
        } else {
            (next.delay_ms % 500, Fault::None)
        };
        match fault {
            Fault::Crash => {
                alive[i] = false;
                continue;
            }
            Fault::Pause(ms) => {
                queue.push(Reverse((now_ms + ms, i)));
                continue;
            }
            Fault::None | Fault::LostResponse => {}
        }
        // Read, decide, and claim conditionally on the version read. The claim lands at
        // once (the earliest a follower can see it: the worst case for the leader's margin)
        // and its answer `delay` later.
        electors[i].observed(store.record.clone(), now);
        match electors[i].next(now) {
            Step::Wait { until } => {
                let ms = until.duration_since(start).as_millis() as u64;
                queue.push(Reverse((ms.max(now_ms + 1), i)));
            }
            Step::Claim { term } => {
                electors[i].claiming(now);
                let record = LeaseRecord {
                    holder: Some(format!("r{i}")),
                    duration: timing().lease(),
                    renewed: format!("{now_ms}"),
                    term,
                };
                store.record = Some(record.clone());
                store.version += 1;
                let answered = now_ms + delay;
                if matches!(fault, Fault::LostResponse) {
                    electors[i].claim_failed(at(answered));
                } else {
                    // The term counts from when the claim was sent.
                    electors[i].claimed(record, now);
                }
                queue.push(Reverse((answered + 1, i)));
            }
        }
    }
    acts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// However answers are delayed or lost and replicas stall or die, the windows in which
    /// two replicas may write never overlap, and a new leader's starts at least the margin
    /// (lease - renew_deadline, for writes in flight) after the old one's ends.
    #[test]
    fn never_two_leaders_at_once(
        replicas in 2usize..4,
        script in proptest::collection::vec(action(3), 20..120),
    ) {
        let windows = simulate(replicas, &script);
        let margin = (timing().lease() - timing().renew_deadline()).as_millis() as u64;
        for &(start_a, end_a, a) in &windows {
            for &(start_b, end_b, b) in &windows {
                if a != b {
                    prop_assert!(
                        end_a + margin <= start_b || end_b + margin <= start_a,
                        "r{a} may write in [{start_a}, {end_a}) ms and r{b} in [{start_b}, {end_b})"
                    );
                }
            }
        }
    }

    /// Someone leads: with at least one replica alive and no faults, a term is held.
    #[test]
    fn a_live_replica_ends_up_leading(replicas in 1usize..4) {
        let script = vec![Action { replica: 0, delay_ms: 10, fault: Fault::None }; 50];
        let acts = simulate(replicas, &script);
        prop_assert!(!acts.is_empty());
        prop_assert!(acts.iter().all(|&(_, _, r)| r == acts[0].2), "{acts:?}");
    }
}
