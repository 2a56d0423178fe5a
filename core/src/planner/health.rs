//! A registered cluster's health as a pure state machine: what federator has observed of it
//! (connected, listed, answering, Secret gone) and the passing of time decide what happens
//! to its backends. The async runtime feeds observations and ticks and carries out the
//! actions; every path is tested here with a fake clock.
//!
//! ```text
//!  Connecting ──connected──▶ Listing ──listed──▶ Synced
//!      ▲  │ connect failed        │ no answer       │ no answer
//!      └──┘ (retried, backoff)    ▼                 ▼
//!                              Unreachable ◀────────┘
//!                 answered ▲      │ stale-after passed
//!                          │      ├─ keep: alert, backends kept
//!                          │      └─ withdraw: ▶ Withdrawn ──answered──▶ Listing (restart)
//! ```
//! Orthogonally, a Secret that goes away starts a grace period; the cluster is removed only
//! when it ends without the Secret coming back.

use std::time::{Duration, Instant};

/// What to do with the backends of a cluster unreachable for longer than stale-after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnUnreachable {
    /// Keep its last-known backends (outlier detection protects clients) and alert.
    #[default]
    Keep,
    /// Withdraw its backends everywhere until it answers again.
    Withdraw,
}

/// The timings and policy of the machine.
#[derive(Clone, Copy, Debug)]
pub struct HealthPolicy {
    /// How long a cluster may fail before the outage policy applies.
    pub stale_after: Duration,
    /// What the outage policy is.
    pub on_unreachable: OnUnreachable,
    /// How long a cluster outlives its Secret.
    pub removal_grace: Duration,
}

/// Where a cluster is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No client yet (just registered, or connecting failed and is retried).
    Connecting,
    /// Watching; its objects are not all listed yet.
    Listing,
    /// Its objects are listed and it answers.
    Synced,
    /// It does not answer; its backends are kept.
    Unreachable,
    /// It did not answer for longer than stale-after and its backends are withdrawn.
    Withdrawn,
}

impl State {
    /// Lower-case name, for metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Listing => "listing",
            Self::Synced => "synced",
            Self::Unreachable => "unreachable",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// Something federator observed of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A client was built and its watchers started.
    Connected,
    /// No client could be built: the reason (safe to show), and how long to wait before the
    /// next attempt (the edge's backoff).
    ConnectFailed(String, Duration),
    /// Every kind is listed and in the registry.
    Listed,
    /// Its API server answered a probe.
    Answered,
    /// Its API server did not answer; why.
    NoAnswer(String),
    /// No Secret registers it any more.
    SecretGone,
    /// A Secret registers it again.
    SecretBack,
}

/// What the runtime must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Try to connect (build a client, start watchers, writer and probe).
    Connect,
    /// Withdraw its backends everywhere.
    Withdraw,
    /// It answers again after a withdrawal: start it afresh (registered again, listed anew,
    /// writing to it only after its lists).
    Restart,
    /// Its Secret stayed gone for the grace period: unregister it.
    Remove,
    /// Tell people (log line, Event on its Secret).
    Report(Report),
}

/// What is worth telling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// It answers (first time, or again).
    Reachable,
    /// It stopped answering; why.
    Unreachable(String),
    /// Connecting failed; why. Retried.
    ConnectFailed(String),
    /// Unreachable for longer than stale-after, backends kept (`--on-unreachable keep`).
    Outage,
    /// Unreachable for longer than stale-after, backends withdrawn.
    Withdrawn,
    /// Its Secret is gone; removed after the grace period unless it comes back.
    RemovalPending(Duration),
    /// Its Secret is back within the grace period: nothing changes.
    RemovalCancelled,
}

impl Report {
    /// The Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Reachable => "ClusterReachable",
            Self::Unreachable(_) => "ClusterUnreachable",
            // A client cannot be built from its kubeconfig: the Secret needs fixing.
            Self::ConnectFailed(_) => "InvalidClusterKubeconfig",
            Self::Outage => "ClusterOutage",
            Self::Withdrawn => "ClusterStale",
            Self::RemovalPending(_) => "ClusterRemovalPending",
            Self::RemovalCancelled => "ClusterRemovalCancelled",
        }
    }

    /// Whether this is good news.
    pub fn is_normal(&self) -> bool {
        matches!(
            self,
            Self::Reachable | Self::RemovalPending(_) | Self::RemovalCancelled
        )
    }
}

/// The health of one cluster.
#[derive(Debug)]
pub struct ClusterHealth {
    policy: HealthPolicy,
    state: State,
    /// Its objects have been listed since it was (re)started: the registry holds them.
    listed: bool,
    /// Last probe outcome.
    answering: Option<bool>,
    /// Since when it fails (connecting or answering).
    failing_since: Option<Instant>,
    /// The outage policy already applied for this failure.
    outage_handled: bool,
    next_connect: Option<Instant>,
    connect_reported: bool,
    /// Since when its Secret is gone.
    gone_since: Option<Instant>,
}

impl ClusterHealth {
    /// A cluster just registered: connecting.
    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            policy,
            state: State::Connecting,
            listed: false,
            answering: None,
            failing_since: None,
            outage_handled: false,
            next_connect: None,
            connect_reported: false,
            gone_since: None,
        }
    }

    /// Where it is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether writes must not drop its backends yet: it is registered, not withdrawn, and
    /// its objects are not listed since it was (re)started.
    pub fn unlisted(&self) -> bool {
        !self.listed && self.state != State::Withdrawn
    }

    /// Whether its API server answered the last probe.
    pub fn answering(&self) -> bool {
        self.answering == Some(true)
    }

    /// Whether its Secret is gone and it waits for removal.
    pub fn removing(&self) -> bool {
        self.gone_since.is_some()
    }

    /// Folds in an observation made at `now`.
    pub fn observe(&mut self, observation: Observation, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match observation {
            Observation::Connected => {
                self.next_connect = None;
                self.connect_reported = false;
                // A first connection, or one after a withdrawal, starts afresh; a running
                // cluster that reconnects (rotated credentials) keeps what the registry
                // holds of it, and its outage clock.
                if matches!(self.state, State::Connecting | State::Withdrawn) {
                    self.state = State::Listing;
                    self.listed = false;
                    self.answering = None;
                    self.failing_since = None;
                    self.outage_handled = false;
                }
            }
            Observation::ConnectFailed(reason, wait) => {
                if matches!(self.state, State::Connecting | State::Withdrawn) {
                    self.failing_since.get_or_insert(now);
                }
                self.next_connect = Some(now + wait);
                if !self.connect_reported {
                    self.connect_reported = true;
                    out.push(Action::Report(Report::ConnectFailed(reason)));
                }
            }
            Observation::Listed => match self.state {
                State::Listing => {
                    self.listed = true;
                    self.state = State::Synced;
                }
                // Lists completed while a probe failed: they count (it is reported once).
                State::Unreachable => self.listed = true,
                State::Connecting | State::Synced | State::Withdrawn => {}
            },
            Observation::Answered => self.answered(&mut out),
            Observation::NoAnswer(reason) => {
                if self.answering != Some(false) {
                    out.push(Action::Report(Report::Unreachable(reason)));
                }
                self.answering = Some(false);
                self.failing_since.get_or_insert(now);
                if matches!(self.state, State::Listing | State::Synced) {
                    self.state = State::Unreachable;
                }
            }
            Observation::SecretGone => {
                if self.gone_since.is_none() {
                    self.gone_since = Some(now);
                    out.push(Action::Report(Report::RemovalPending(
                        self.policy.removal_grace,
                    )));
                }
            }
            Observation::SecretBack => {
                if self.gone_since.take().is_some() {
                    out.push(Action::Report(Report::RemovalCancelled));
                }
            }
        }
        out
    }

    fn answered(&mut self, out: &mut Vec<Action>) {
        if self.answering != Some(true) {
            out.push(Action::Report(Report::Reachable));
        }
        self.answering = Some(true);
        self.failing_since = None;
        self.outage_handled = false;
        match self.state {
            State::Unreachable if self.listed => self.state = State::Synced,
            State::Unreachable => self.state = State::Listing,
            State::Withdrawn => {
                self.state = State::Listing;
                self.listed = false;
                out.push(Action::Restart);
            }
            State::Connecting | State::Listing | State::Synced => {}
        }
    }

    /// Another replica took the cluster over (clusters sharded across replicas): this one
    /// neither connects to it nor probes it any more, so nothing of its connection is left
    /// to act on. Whether its Secret is gone still counts: every replica removes it.
    pub fn hand_off(&mut self) {
        *self = Self {
            gone_since: self.gone_since,
            ..Self::new(self.policy)
        };
    }

    /// What the passing of time to `now` requires.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(since) = self.gone_since
            && now.saturating_duration_since(since) >= self.policy.removal_grace
        {
            out.push(Action::Remove);
            return out;
        }
        if self.next_connect.is_some_and(|t| t <= now) {
            self.next_connect = None;
            out.push(Action::Connect);
        }
        let stale = self
            .failing_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.policy.stale_after);
        if stale && !self.outage_handled {
            self.outage_handled = true;
            match self.policy.on_unreachable {
                OnUnreachable::Keep => out.push(Action::Report(Report::Outage)),
                OnUnreachable::Withdraw => {
                    self.listed = false;
                    self.state = State::Withdrawn;
                    out.push(Action::Withdraw);
                    out.push(Action::Report(Report::Withdrawn));
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
