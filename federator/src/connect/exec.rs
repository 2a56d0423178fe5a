//! Runs kubeconfig `exec` credential plugins, only when an operator allowed them
//! (`--allow-kubeconfig exec`), and never the way kube would: off every shared path, with a
//! timeout, killed with its whole process group when it overruns, stdin closed and
//! `interactive: false` (the plugin must not wait for a human), at most 1 MiB of its output
//! read, none of it, nor its command, arguments or environment, ever reported.

use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::config::ExecConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

/// The most of a plugin's output read: an ExecCredential is a few KiB.
const MAX_OUTPUT: u64 = 1 << 20;
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// A token with no expiry is renewed this often (client-go keeps it until a 401).
const RENEW_UNDATED: Duration = Duration::from_secs(300);
/// How long a failed run answers the requests after it: the client hands requests to the
/// token source one at a time, so without this a hanging plugin would hold each request of
/// the cluster for its whole timeout, one after another.
const FAILURE_SHARED: Duration = Duration::from_secs(1);

/// Why a plugin gave no token, in fixed words: no command, argument, environment or output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The kubeconfig's exec section names no command.
    #[error("exec credential plugin: no command given")]
    NoCommand,
    /// The command could not be started.
    #[error("exec credential plugin could not be started ({0})")]
    Start(String),
    /// It exited unsuccessfully.
    #[error("exec credential plugin failed (exit status {0})")]
    Failed(String),
    /// It ran longer than allowed and was killed.
    #[error("exec credential plugin did not finish within {0:?} and was killed")]
    TimedOut(Duration),
    /// Its output is not an ExecCredential with a token.
    #[error(
        "exec credential plugin printed no ExecCredential with a token (client certificates from plugins are not supported)"
    )]
    NoToken,
}

/// A plugin as the kubeconfig describes it.
#[derive(Clone)]
pub struct ExecPlugin {
    command: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    api_version: String,
    timeout: Duration,
}

impl std::fmt::Debug for ExecPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments and environment may hold secrets.
        f.debug_struct("ExecPlugin")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ExecPlugin {
    /// The plugin of a kubeconfig's `exec` section, given at most `timeout` per run.
    pub fn from_config(config: &ExecConfig, timeout: Duration) -> Self {
        Self {
            command: config.command.clone(),
            args: config.args.clone().unwrap_or_default(),
            env: config
                .env
                .iter()
                .flatten()
                .filter_map(|e| Some((e.get("name")?.clone(), e.get("value")?.clone())))
                .collect(),
            api_version: config
                .api_version
                .clone()
                .unwrap_or_else(|| "client.authentication.k8s.io/v1".into()),
            timeout,
        }
    }

    /// Runs the plugin once.
    pub async fn run(&self) -> Result<Credential, ExecError> {
        let command = self.command.as_deref().ok_or(ExecError::NoCommand)?;
        let info = serde_json::json!({
            "apiVersion": self.api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": false},
        });
        let mut child = tokio::process::Command::new(command)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError::Start(e.kind().to_string()))?;
        // Whatever the plugin started dies with it if this run is abandoned (timeout, or the
        // cluster's client dropped mid-run): kill_on_drop only reaches the plugin itself.
        let mut group = GroupGuard(child.id());
        let mut stdout = child.stdout.take();
        let finished = async {
            let mut output = Vec::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.take(MAX_OUTPUT).read_to_end(&mut output).await;
            }
            (child.wait().await, output)
        };
        let Ok((status, output)) = tokio::time::timeout(self.timeout, finished).await else {
            return Err(ExecError::TimedOut(self.timeout));
        };
        // Reaped: its process id may be reused, so the group is no longer ours to kill.
        group.0 = None;
        let status = status.map_err(|e| ExecError::Start(e.kind().to_string()))?;
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "killed".into(), |c| c.to_string());
            return Err(ExecError::Failed(code));
        }
        parse_credential(&output)
    }
}

/// The process group of a running plugin, killed when the run is abandoned.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let pid = self
            .0
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A token a plugin gave, with its expiry (its Debug shows no token: `SecretString`).
#[derive(Clone, Debug)]
pub struct Credential {
    /// The bearer token.
    pub token: SecretString,
    /// When it expires, if the plugin said.
    pub expires: Option<jiff::Timestamp>,
}

#[derive(Deserialize)]
struct ExecCredential {
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    token: Option<String>,
    expiration_timestamp: Option<String>,
}

/// The token of an ExecCredential printed as JSON (or YAML, which some plugins print).
fn parse_credential(output: &[u8]) -> Result<Credential, ExecError> {
    let parsed: ExecCredential =
        serde_saphyr::from_slice(output).map_err(|_| ExecError::NoToken)?;
    let status = parsed.status.ok_or(ExecError::NoToken)?;
    let token = status
        .token
        .filter(|t| !t.is_empty())
        .ok_or(ExecError::NoToken)?;
    Ok(Credential {
        token: SecretString::from(token),
        expires: status
            .expiration_timestamp
            .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
    })
}

/// A plugin's token, cached until shortly before it expires; one run at a time, and a
/// failure answers the requests that waited for it and those of the next second (see
/// [`FAILURE_SHARED`]) instead of each running the plugin again.
pub struct TokenSource {
    plugin: ExecPlugin,
    last: Mutex<LastRun>,
}

/// What the plugin's last run gave.
#[derive(Default)]
struct LastRun {
    /// The token and when it was fetched.
    credential: Option<(Credential, Instant)>,
    /// The last failure and when it ended.
    failure: Option<(ExecError, Instant)>,
}

impl TokenSource {
    /// A source running `plugin` when it needs a token.
    pub fn new(plugin: ExecPlugin) -> Self {
        Self {
            plugin,
            last: Mutex::new(LastRun::default()),
        }
    }

    /// A valid token: the cached one, or a fresh one from the plugin.
    pub async fn token(&self) -> Result<SecretString, ExecError> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((credential, fetched)) = last.credential.as_ref()
            && fresh(credential, *fetched)
        {
            return Ok(credential.token.clone());
        }
        // A run that ended while this request waited for it, or just before, answers it.
        if let Some((failure, ended)) = last.failure.as_ref()
            && (*ended >= asked || ended.elapsed() < FAILURE_SHARED)
        {
            return Err(failure.clone());
        }
        match self.plugin.run().await {
            Ok(credential) => {
                let token = credential.token.clone();
                *last = LastRun {
                    credential: Some((credential, Instant::now())),
                    failure: None,
                };
                Ok(token)
            }
            Err(failure) => {
                last.failure = Some((failure.clone(), Instant::now()));
                Err(failure)
            }
        }
    }
}

fn fresh(credential: &Credential, fetched: Instant) -> bool {
    match credential.expires {
        Some(expires) => {
            let renew = jiff::SignedDuration::try_from(RENEW_BEFORE).unwrap_or_default();
            jiff::Timestamp::now()
                .checked_add(renew)
                .is_ok_and(|soon| soon < expires)
        }
        None => fetched.elapsed() < RENEW_UNDATED,
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").finish_non_exhaustive()
    }
}

/// The `Authorization` value for a token.
pub(super) fn bearer(token: &SecretString) -> Option<http::HeaderValue> {
    let mut value =
        http::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(script: &str, timeout: Duration) -> ExecPlugin {
        ExecPlugin {
            command: Some("/bin/sh".into()),
            args: vec!["-c".into(), script.into()],
            env: vec![("PLUGIN_SECRET".into(), "hunter2".into())],
            api_version: "client.authentication.k8s.io/v1".into(),
            timeout,
        }
    }

    #[tokio::test]
    async fn a_plugin_gives_its_token_and_sees_its_env_and_no_stdin() {
        let p = plugin(
            r#"read -r line; test -z "$line" && echo "{\"status\":{\"token\":\"t-$PLUGIN_SECRET\"}}""#,
            Duration::from_secs(10),
        );
        let credential = p.run().await.unwrap();
        assert_eq!(credential.token.expose_secret(), "t-hunter2");
    }

    #[tokio::test]
    async fn a_hanging_plugin_is_killed_after_the_timeout() {
        let marker = std::env::temp_dir().join(format!("federator-exec-{}", std::process::id()));
        // What the plugin started in the background goes with it.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let err = plugin(&script, Duration::from_millis(300))
            .run()
            .await
            .unwrap_err();
        assert_eq!(err, ExecError::TimedOut(Duration::from_millis(300)));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn failures_say_nothing_of_command_env_or_output() {
        for (script, expected) in [
            ("echo hunter2 >&2; echo hunter2; exit 3", "exit status 3"),
            (
                "echo '{\"status\":{\"clientCertificateData\":\"hunter2\"}}'",
                "no ExecCredential",
            ),
            ("echo not json hunter2", "no ExecCredential"),
        ] {
            let err = plugin(script, Duration::from_secs(10))
                .run()
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(
                !err.contains("hunter2") && !err.contains("/bin/sh"),
                "{err}"
            );
        }
        let missing = ExecPlugin {
            command: Some("/nonexistent/plugin-hunter2".into()),
            ..plugin("", Duration::from_secs(1))
        };
        let err = missing.run().await.unwrap_err().to_string();
        assert!(
            err.contains("could not be started") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(!format!("{missing:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn requests_waiting_for_a_failing_run_or_just_after_share_its_failure() {
        let counter =
            std::env::temp_dir().join(format!("federator-exec-fail-{}", std::process::id()));
        let _ = std::fs::remove_file(&counter);
        let runs = || {
            std::fs::read_to_string(&counter)
                .map(|s| s.lines().count())
                .unwrap_or(0)
        };
        let script = format!("echo x >> {}; sleep 0.3; exit 3", counter.display());
        let source = TokenSource::new(plugin(&script, Duration::from_secs(10)));
        let (a, b, c) = tokio::join!(source.token(), source.token(), source.token());
        for result in [a, b, c] {
            assert_eq!(result.unwrap_err(), ExecError::Failed("3".into()));
        }
        assert_eq!(runs(), 1, "three waiting requests, one run");
        // The next one, at once, is answered by it too; one a while later runs the plugin.
        source.token().await.unwrap_err();
        assert_eq!(runs(), 1);
        tokio::time::sleep(FAILURE_SHARED).await;
        source.token().await.unwrap_err();
        assert_eq!(runs(), 2);
        let _ = std::fs::remove_file(&counter);
    }

    #[tokio::test]
    async fn tokens_are_cached_until_they_near_expiry() {
        let counter =
            std::env::temp_dir().join(format!("federator-exec-count-{}", std::process::id()));
        let _ = std::fs::remove_file(&counter);
        let script = |expiry: &str| {
            format!(
                "echo x >> {}; echo '{{\"status\":{{\"token\":\"t\",\"expirationTimestamp\":\"{expiry}\"}}}}'",
                counter.display()
            )
        };
        let runs = || {
            std::fs::read_to_string(&counter)
                .map(|s| s.lines().count())
                .unwrap_or(0)
        };
        let later = TokenSource::new(plugin(
            &script("2999-01-01T00:00:00Z"),
            Duration::from_secs(10),
        ));
        later.token().await.unwrap();
        later.token().await.unwrap();
        assert_eq!(runs(), 1);
        let expired = TokenSource::new(plugin(
            &script("2000-01-01T00:00:00Z"),
            Duration::from_secs(10),
        ));
        expired.token().await.unwrap();
        expired.token().await.unwrap();
        assert_eq!(runs(), 3);
        let _ = std::fs::remove_file(&counter);
    }
}
