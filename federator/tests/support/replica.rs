//! federator replicas as real processes (the `federator run` binary), so a test can kill one
//! with SIGKILL or stop it with SIGSTOP the way a node failure or a long pause would.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use testenv::TestEnv;
use tokio::process::{Child, Command};

/// Lease timings of the tests: a takeover within seconds.
pub const LEASE: &[&str] = &[
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "500ms",
];

/// One `federator run` process.
pub struct Replica {
    child: Child,
    /// Its name in the lease.
    pub identity: String,
    /// `/metrics` and friends.
    pub metrics: SocketAddr,
    /// DNS (UDP and TCP).
    pub dns: SocketAddr,
    /// Its log file.
    pub log: std::path::PathBuf,
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    testenv::free_port().unwrap()
}

impl Replica {
    /// Starts `federator run` against the config cluster of `env` with the test lease
    /// timings and `extra` flags.
    pub fn start(env: &TestEnv, identity: &str, extra: &[&str]) -> Self {
        Self::start_as(env.cluster("config").kubeconfig(), identity, extra)
    }

    /// Like [`Replica::start`] with the credentials of `kubeconfig` on the config cluster.
    pub fn start_as(kubeconfig: &std::path::Path, identity: &str, extra: &[&str]) -> Self {
        let config = kubeconfig.to_string_lossy().into_owned();
        let namespace = super::live::NAMESPACE;
        let instance = format!("{namespace}.federator");
        let mut args = vec!["run", "--kubeconfig", &config, "--namespace", namespace];
        args.extend(["--instance", &instance, "--identity", identity]);
        args.extend(["--probe-interval", "1s", "--removal-grace", "0s"]);
        args.extend(["--initial-sync-timeout", "20s"]);
        args.extend(LEASE);
        args.extend(extra);
        Self::spawn(identity, &args)
    }

    /// Starts `federator dns --upstream url` with `extra` flags.
    pub fn dns_upstream(url: &str, extra: &[&str]) -> Self {
        let mut args = vec!["dns", "--upstream", url];
        args.extend(extra);
        Self::spawn("dns", &args)
    }

    /// Runs the binary with `args` and its own metrics and DNS ports.
    fn spawn(identity: &str, args: &[&str]) -> Self {
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::env::temp_dir().join(format!(
            "federator-{identity}-{}-{}.log",
            std::process::id(),
            free_port()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_federator"))
            .args(args)
            .args(["--metrics-addr", &metrics.to_string()])
            .args(["--dns-listen", &dns.to_string()])
            // `FEDERATOR_TEST_LOG` (say `debug`) for more when a test fails.
            .env(
                "FEDERATOR_LOG",
                std::env::var("FEDERATOR_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            child,
            identity: identity.to_owned(),
            metrics,
            dns,
            log,
        }
    }

    /// Kills it with SIGKILL: no lease release, no goodbye.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    /// Stops it with SIGSTOP (a process frozen by a long pause or cut off).
    pub fn pause(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = self
            .child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32));
        rustix::process::kill_process(pid.unwrap(), signal).unwrap();
    }

    /// The sum of a metric's samples (0 when unreachable).
    pub async fn metric(&self, name: &str) -> f64 {
        let body = self.get("/metrics").await.1;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Whether it leads now (its `federator_leader` gauge).
    pub async fn leads(&self) -> bool {
        self.metric("federator_leader").await == 1.0
    }

    /// Status and body of a GET (status 0 when unreachable).
    pub async fn get(&self, path: &str) -> (u16, String) {
        super::live::http_get(self.metrics, path).await
    }

    /// Whether it exited, and how (without waiting).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Its log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Replica {
    /// Waits until its writers have been quiet for two seconds (its write count holds still).
    pub async fn settle(&self) {
        let mut last = self.metric("federator_writes_total").await;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = self.metric("federator_writes_total").await;
            if now == last {
                return;
            }
            last = now;
        }
    }
}
