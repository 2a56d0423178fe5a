use super::*;

const STALE: Duration = Duration::from_secs(180);
const GRACE: Duration = Duration::from_secs(120);

fn policy(on_unreachable: OnUnreachable) -> HealthPolicy {
    HealthPolicy {
        stale_after: STALE,
        on_unreachable,
        removal_grace: GRACE,
    }
}

/// A fake clock: the test moves it.
struct Clock(Instant);

impl Clock {
    fn at(&self, secs: u64) -> Instant {
        self.0 + Duration::from_secs(secs)
    }
}

fn synced(on_unreachable: OnUnreachable, clock: &Clock) -> ClusterHealth {
    let mut h = ClusterHealth::new(policy(on_unreachable));
    assert!(h.observe(Observation::Connected, clock.at(0)).is_empty());
    assert_eq!(h.state(), State::Listing);
    assert!(h.unlisted());
    assert_eq!(
        h.observe(Observation::Answered, clock.at(0)),
        [Action::Report(Report::Reachable)]
    );
    h.observe(Observation::Listed, clock.at(1));
    assert_eq!(h.state(), State::Synced);
    assert!(!h.unlisted());
    h
}

fn reasons(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(r) => Some(r.reason()),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_failures_are_retried_when_their_wait_ends_and_count_as_unlisted() {
    let clock = Clock(Instant::now());
    let mut h = ClusterHealth::new(policy(OnUnreachable::Keep));
    let failed = |wait| Observation::ConnectFailed("bad CA".into(), Duration::from_secs(wait));
    let first = h.observe(failed(2), clock.at(0));
    assert_eq!(reasons(&first), ["InvalidClusterKubeconfig"]);
    assert!(h.unlisted(), "never absent: its hosts are held");
    assert!(h.tick(clock.at(1)).is_empty(), "not before the wait ends");
    assert_eq!(h.tick(clock.at(2)), [Action::Connect]);
    assert!(h.tick(clock.at(3)).is_empty(), "one attempt at a time");
    // The next failure is not reported again; its own wait applies.
    assert!(h.observe(failed(10), clock.at(3)).is_empty());
    assert!(h.tick(clock.at(12)).is_empty());
    assert_eq!(h.tick(clock.at(13)), [Action::Connect]);
    h.observe(Observation::Connected, clock.at(13));
    assert_eq!(h.state(), State::Listing);
    assert!(
        h.tick(clock.at(100)).is_empty(),
        "connected: no more attempts"
    );
    // A later failure (a rotation to bad credentials) is reported again.
    assert_eq!(
        reasons(&h.observe(failed(1), clock.at(200))),
        ["InvalidClusterKubeconfig"]
    );
}

#[test]
fn keep_policy_keeps_backends_and_alerts_once() {
    let clock = Clock(Instant::now());
    let mut h = synced(OnUnreachable::Keep, &clock);
    let down = h.observe(Observation::NoAnswer("timeout".into()), clock.at(10));
    assert_eq!(reasons(&down), ["ClusterUnreachable"]);
    assert_eq!(h.state(), State::Unreachable);
    assert!(!h.unlisted(), "its backends stay as listed");
    assert!(
        h.observe(Observation::NoAnswer("timeout".into()), clock.at(15))
            .is_empty()
    );
    assert!(h.tick(clock.at(10 + 179)).is_empty());
    assert_eq!(h.tick(clock.at(10 + 180)), [Action::Report(Report::Outage)]);
    assert!(h.tick(clock.at(10 + 500)).is_empty(), "alerted once");
    assert_eq!(h.state(), State::Unreachable);
    // Back: synced again, no restart needed.
    assert_eq!(
        h.observe(Observation::Answered, clock.at(600)),
        [Action::Report(Report::Reachable)]
    );
    assert_eq!(h.state(), State::Synced);
    // A new outage is a new alert.
    h.observe(Observation::NoAnswer("timeout".into()), clock.at(700));
    assert_eq!(h.tick(clock.at(900)), [Action::Report(Report::Outage)]);
}

#[test]
fn withdraw_policy_withdraws_after_stale_after_and_restarts_when_back() {
    let clock = Clock(Instant::now());
    let mut h = synced(OnUnreachable::Withdraw, &clock);
    h.observe(Observation::NoAnswer("refused".into()), clock.at(10));
    // Answering in between resets the clock.
    h.observe(Observation::Answered, clock.at(100));
    h.observe(Observation::NoAnswer("refused".into()), clock.at(110));
    assert!(h.tick(clock.at(200)).is_empty());
    let stale = h.tick(clock.at(290));
    assert_eq!(stale, [Action::Withdraw, Action::Report(Report::Withdrawn)]);
    assert_eq!(h.state(), State::Withdrawn);
    assert!(!h.unlisted(), "withdrawn clusters hold nothing");
    assert!(h.tick(clock.at(900)).is_empty());
    let back = h.observe(Observation::Answered, clock.at(1000));
    assert_eq!(back, [Action::Report(Report::Reachable), Action::Restart]);
    assert_eq!(h.state(), State::Listing);
    assert!(h.unlisted(), "nothing drops it until it is listed again");
    h.observe(Observation::Listed, clock.at(1001));
    assert_eq!(h.state(), State::Synced);
}

#[test]
fn a_cluster_that_never_connects_is_withdrawn_only_under_withdraw() {
    let clock = Clock(Instant::now());
    let mut keep = ClusterHealth::new(policy(OnUnreachable::Keep));
    keep.observe(
        Observation::ConnectFailed("x".into(), Duration::from_secs(5)),
        clock.at(0),
    );
    let actions = keep.tick(clock.at(200));
    assert!(actions.contains(&Action::Report(Report::Outage)));
    assert!(keep.unlisted(), "keep: still held");
    let mut withdraw = ClusterHealth::new(policy(OnUnreachable::Withdraw));
    withdraw.observe(
        Observation::ConnectFailed("x".into(), Duration::from_secs(5)),
        clock.at(0),
    );
    let actions = withdraw.tick(clock.at(200));
    assert!(actions.contains(&Action::Withdraw));
    assert!(!withdraw.unlisted(), "withdraw: no longer holds deletes");
    // Connecting still retried, and a later connection starts afresh.
    withdraw.observe(
        Observation::ConnectFailed("x".into(), Duration::from_secs(5)),
        clock.at(201),
    );
    assert!(withdraw.tick(clock.at(400)).contains(&Action::Connect));
    withdraw.observe(Observation::Connected, clock.at(400));
    assert_eq!(withdraw.state(), State::Listing);
    assert!(withdraw.unlisted());
}

#[test]
fn a_reconnect_of_a_running_cluster_keeps_its_lists_and_outage_clock() {
    let clock = Clock(Instant::now());
    let mut h = synced(OnUnreachable::Withdraw, &clock);
    h.observe(Observation::NoAnswer("x".into()), clock.at(10));
    h.observe(Observation::Connected, clock.at(100));
    assert_eq!(h.state(), State::Unreachable);
    assert!(!h.unlisted());
    assert!(h.tick(clock.at(190)).contains(&Action::Withdraw));
}

#[test]
fn a_withdrawn_cluster_reconnected_by_rotation_starts_afresh() {
    let clock = Clock(Instant::now());
    let mut h = synced(OnUnreachable::Withdraw, &clock);
    h.observe(Observation::NoAnswer("x".into()), clock.at(0));
    h.tick(clock.at(200));
    assert_eq!(h.state(), State::Withdrawn);
    h.observe(Observation::Connected, clock.at(300));
    assert_eq!(h.state(), State::Listing);
    assert!(h.unlisted());
    assert!(h.tick(clock.at(400)).is_empty(), "outage clock restarted");
}

#[test]
fn a_secret_gone_for_the_grace_period_removes_the_cluster_and_back_within_does_not() {
    let clock = Clock(Instant::now());
    let mut h = synced(OnUnreachable::Keep, &clock);
    let gone = h.observe(Observation::SecretGone, clock.at(10));
    assert_eq!(reasons(&gone), ["ClusterRemovalPending"]);
    assert!(h.removing());
    assert!(h.observe(Observation::SecretGone, clock.at(11)).is_empty());
    assert!(h.tick(clock.at(10 + 119)).is_empty());
    assert_eq!(
        reasons(&h.observe(Observation::SecretBack, clock.at(10 + 119))),
        ["ClusterRemovalCancelled"]
    );
    assert!(!h.removing());
    assert!(h.tick(clock.at(1000)).is_empty(), "never removed");
    assert!(
        h.observe(Observation::SecretBack, clock.at(1000))
            .is_empty()
    );
    h.observe(Observation::SecretGone, clock.at(2000));
    assert_eq!(h.tick(clock.at(2000 + 120)), [Action::Remove]);
    // Its state is unchanged while it waits: writes and health go on.
    assert_eq!(h.state(), State::Synced);
}

#[test]
fn listed_before_connected_or_while_withdrawn_counts_for_nothing() {
    let clock = Clock(Instant::now());
    let mut h = ClusterHealth::new(policy(OnUnreachable::Withdraw));
    h.observe(Observation::Listed, clock.at(0));
    assert!(h.unlisted());
    let mut h = synced(OnUnreachable::Withdraw, &clock);
    h.observe(Observation::NoAnswer("x".into()), clock.at(0));
    h.tick(clock.at(200));
    h.observe(Observation::Listed, clock.at(201));
    assert_eq!(h.state(), State::Withdrawn);
}

#[test]
fn lists_completed_while_a_probe_failed_still_count() {
    let clock = Clock(Instant::now());
    let mut h = ClusterHealth::new(policy(OnUnreachable::Keep));
    h.observe(Observation::Connected, clock.at(0));
    h.observe(Observation::NoAnswer("timeout".into()), clock.at(1));
    assert_eq!(h.state(), State::Unreachable);
    assert!(h.unlisted());
    // The lists finish (reported once) while the cluster counts as unreachable.
    h.observe(Observation::Listed, clock.at(2));
    assert!(!h.unlisted());
    h.observe(Observation::Answered, clock.at(3));
    assert_eq!(h.state(), State::Synced);
    assert!(!h.unlisted());
}

#[test]
fn a_cluster_handed_off_stops_connecting_and_going_stale_but_is_still_removed() {
    let clock = Clock(Instant::now());
    let mut h = synced(OnUnreachable::Withdraw, &clock);
    h.observe(Observation::NoAnswer("refused".into()), clock.at(5));
    h.observe(
        Observation::ConnectFailed("refused".into(), Duration::from_secs(1)),
        clock.at(6),
    );
    h.observe(Observation::SecretGone, clock.at(7));
    h.hand_off();
    assert_eq!(h.state(), State::Connecting);
    assert!(!h.answering());
    // No reconnect is due and the outage clock is gone: no withdrawal, ever.
    assert!(h.tick(clock.at(6 + 1)).is_empty());
    assert!(h.removing(), "its Secret is still gone");
    assert_eq!(h.tick(clock.at(7 + 120)), [Action::Remove]);
}
