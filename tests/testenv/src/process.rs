use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::TestEnvError;

/// A child process whose output goes to a log file and which is killed when dropped.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) log: PathBuf,
    program: OsString,
    args: Vec<OsString>,
    child: Child,
}

impl Process {
    pub(crate) fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> Result<Self, TestEnvError> {
        let program = command.get_program().to_owned();
        let args: Vec<OsString> = command.get_args().map(ToOwned::to_owned).collect();
        let child = launch(name, &mut command, log, false)?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            program,
            args,
            child,
        })
    }

    /// Starts the same command again (the previous run is stopped first); the log goes on.
    pub(crate) fn restart(&mut self) -> Result<(), TestEnvError> {
        self.stop();
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        self.child = launch(&self.name, &mut command, &self.log, true)?;
        Ok(())
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

    /// A `NotReady` error naming this process and showing its log, once `started` is longer
    /// ago than `timeout`; `Ok` before.
    pub(crate) fn not_ready_after(
        &self,
        started: std::time::Instant,
        timeout: std::time::Duration,
    ) -> Result<(), TestEnvError> {
        if started.elapsed() > timeout {
            return Err(TestEnvError::NotReady {
                what: self.name.clone(),
                waited: timeout,
                log: self.log.clone(),
                tail: self.log_tail(),
            });
        }
        Ok(())
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

    /// Asks the process to exit (SIGTERM, so it can flush its logs), waits up to `grace`,
    /// then kills it.
    pub(crate) fn terminate(&mut self, grace: std::time::Duration) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let started = std::time::Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) && started.elapsed() < grace {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        self.stop();
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

/// Starts `command` with its output in `log`: a fresh log for a new process (so an earlier
/// attempt's errors are not read as this one's), appended to for a restart.
fn launch(
    name: &str,
    command: &mut Command,
    log: &Path,
    append: bool,
) -> Result<Child, TestEnvError> {
    if !append {
        std::fs::File::create(log)
            .map_err(TestEnvError::io(format!("creating {}", log.display())))?;
    }
    // Always O_APPEND: a process that opens `/dev/stdout` itself (Envoy's access log) gets a
    // file description of its own, and only appends keep both writers from overwriting.
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(TestEnvError::io(format!("opening {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(TestEnvError::io(format!("opening {}", log.display())))?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| TestEnvError::Spawn {
            what: name.to_owned(),
            source,
        })
}
