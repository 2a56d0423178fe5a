use std::path::PathBuf;
use std::time::Duration;

/// Why the test environment could not start or act; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TestEnvError {
    /// A binary is not installed.
    #[error("{what} not found at {path}: {hint}")]
    MissingBinary {
        /// Which binary.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: &'static str,
    },
    /// A process could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// Which process.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// A process exited while starting.
    #[error("{what} exited during start-up ({status}); last lines of {log}:\n{tail}")]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// A process did not become ready in time.
    #[error("{what} not ready after {waited:?}; last lines of {log}:\n{tail}")]
    NotReady {
        /// Which process.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// Writing the environment's files failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A call to an API server failed.
    #[error("cluster {cluster}: {what}: {source}")]
    Kube {
        /// The cluster.
        cluster: String,
        /// What was being done.
        what: String,
        /// The error.
        source: Box<kube::Error>,
    },
    /// Something else about the environment is wrong.
    #[error("{0}")]
    Other(String),
}

impl TestEnvError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    pub(crate) fn kube(cluster: &str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let (cluster, what) = (cluster.to_owned(), what.into());
        move |source| Self::Kube {
            cluster,
            what,
            source: Box::new(source),
        }
    }
}
