use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::TestEnvError;

/// A child process whose output goes to a log file and which is killed when dropped.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) log: PathBuf,
    child: Child,
}

impl Process {
    pub(crate) fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> Result<Self, TestEnvError> {
        let out =
            File::create(log).map_err(TestEnvError::io(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(TestEnvError::io(format!("opening {}", log.display())))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| TestEnvError::Spawn {
                what: name.to_owned(),
                source,
            })?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        })
    }

    /// An error if the process has exited, naming its status and showing its log's end.
    pub(crate) fn check_running(&mut self) -> Result<(), TestEnvError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(TestEnvError::Exited {
                what: self.name.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: self.log_tail(),
            }),
            Err(err) => Err(TestEnvError::io(format!("checking {}", self.name))(err)),
        }
    }

    /// The last lines of the log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Whether the log shows the process could not bind its port.
    pub(crate) fn lost_port_race(&self) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|t| t.contains("address already in use"))
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}
