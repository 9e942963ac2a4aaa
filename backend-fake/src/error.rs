//! The fake backend's errors, classified the way backend-linux classifies the real ones.

use crate::fault::FaultyOp;
use pledge_core::{Classify, FailureClass, TaskId};

/// Why a fake backend call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    /// The task has no state in the fake (never launched, or cleaned up).
    #[error("task {0} has no cgroup or state (never launched, or cleaned up)")]
    UnknownTask(TaskId),
    /// The task's main process has already exited (ESRCH on Linux).
    #[error("task {0}: main process has exited")]
    ProcessExited(TaskId),
    /// Launch of an id whose state still exists.
    #[error("task {0} already has state: launched before and not cleaned up")]
    AlreadyLaunched(TaskId),
    /// The supervisor died without recording an exit status.
    #[error("task {0}: supervisor is gone and recorded no exit status")]
    SupervisorGone(TaskId),
    /// The persisted identity does not match the process found (a reused pid, say).
    #[error("task {task}: persisted identity does not match: {reason}")]
    IdentityMismatch {
        /// The task.
        task: TaskId,
        /// What differed.
        reason: String,
    },
    /// A failure the fault plan asked for.
    #[error("injected {class:?} failure of {op}")]
    Injected {
        /// Which operation.
        op: FaultyOp,
        /// Its class.
        class: FailureClass,
    },
}

impl Classify for FakeError {
    fn class(&self) -> FailureClass {
        match self {
            Self::UnknownTask(_)
            | Self::ProcessExited(_)
            | Self::SupervisorGone(_)
            | Self::IdentityMismatch { .. } => FailureClass::Gone,
            Self::AlreadyLaunched(_) => FailureClass::Fatal,
            Self::Injected { class, .. } => *class,
        }
    }
}
