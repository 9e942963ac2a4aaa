//! Errors of the task runtime, one enum per concern: cgroup file work ([`CgroupError`]) and
//! everything else the backend does ([`RuntimeError`]). Both classify for Nomad's
//! RecoverableError through [`Classify`].

use pledge_core::{Classify, FailureClass, TaskId};
use std::path::PathBuf;

/// A cgroup operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// The plan's cgroup path is unusable (absolute, `..`, empty component).
    #[error("cgroup path {path:?}: {reason}")]
    BadPath {
        /// The path as planned.
        path: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The host offers no cgroup hierarchy we can use.
    #[error("no usable cgroup hierarchy on this host ({0})")]
    Unavailable(&'static str),
    /// cgroups-rs reported an error.
    #[error("{op} {path}")]
    Library {
        /// What we were doing.
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// The library's error.
        #[source]
        source: Box<cgroups_rs::fs::error::Error>,
    },
    /// A cgroup file we read or write directly.
    #[error("{op} {path}")]
    Io {
        /// `writing "1" to`, `reading`, `removing` ...
        op: String,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The cgroup kept processes after every kill attempt.
    #[error("cgroup {0} still has processes after being killed")]
    StillPopulated(PathBuf),
}

impl Classify for CgroupError {
    fn class(&self) -> FailureClass {
        match self {
            Self::BadPath { .. } | Self::Unavailable(_) => FailureClass::Fatal,
            Self::Library { .. } | Self::Io { .. } | Self::StillPopulated(_) => {
                FailureClass::Retryable
            }
        }
    }
}

/// What a backend operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The task id is not tracked by this backend.
    #[error("task {0} is not tracked by the Linux backend")]
    UnknownTask(TaskId),
    /// launch() for an id that is already tracked.
    #[error("task {0} is already running")]
    AlreadyRunning(TaskId),
    /// The task's process has exited (signals cannot reach it any more).
    #[error("task {0} has exited")]
    Exited(TaskId),
    /// The supervisor of a recovered task is gone without recording an exit status.
    #[error("supervisor of task {task} (pid {pid}) is gone and left no exit status; {what}")]
    SupervisorLost {
        /// Task.
        task: TaskId,
        /// The supervisor's pid as stored in the handle.
        pid: u32,
        /// What was done about it.
        what: String,
    },
    /// A cgroup operation failed.
    #[error("cgroup of task {task}")]
    Cgroup {
        /// Task.
        task: TaskId,
        /// Cause.
        #[source]
        source: CgroupError,
    },
    /// A file of the task's state directory.
    #[error("{op} {path}")]
    StateIo {
        /// What we were doing.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file holds something we cannot parse.
    #[error("{path} is corrupt")]
    StateCorrupt {
        /// Which file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Spawning the supervisor failed.
    #[error("starting the supervisor {exe}")]
    SpawnSupervisor {
        /// Executable.
        exe: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The supervisor did not report in time.
    #[error("supervisor of task {task} did not report within {secs} s (is a log FIFO without reader?); the task was killed")]
    LaunchTimeout {
        /// Task.
        task: TaskId,
        /// Seconds waited.
        secs: u64,
    },
    /// The supervisor or the task child reported a launch failure.
    #[error("starting task {task}: {message}")]
    LaunchFailed {
        /// Task.
        task: TaskId,
        /// The reported failure, with context.
        message: String,
        /// Whether retrying can help.
        class: FailureClass,
    },
    /// A system call on a process failed.
    #[error("{op} (pid {pid})")]
    Process {
        /// What we were doing.
        op: &'static str,
        /// Which process.
        pid: u32,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// Invalid input to exec.
    #[error("{field}: {reason}")]
    InvalidExec {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Classify for RuntimeError {
    fn class(&self) -> FailureClass {
        match self {
            Self::UnknownTask(_) | Self::Exited(_) | Self::SupervisorLost { .. } => {
                FailureClass::Gone
            }
            Self::AlreadyRunning(_) | Self::StateCorrupt { .. } | Self::InvalidExec { .. } => {
                FailureClass::Fatal
            }
            Self::Cgroup { source, .. } => source.class(),
            Self::LaunchFailed { class, .. } => *class,
            Self::StateIo { .. }
            | Self::SpawnSupervisor { .. }
            | Self::LaunchTimeout { .. }
            | Self::Process { .. } => FailureClass::Retryable,
        }
    }
}
