//! The call log: every [`pledge_core::Backend`] call the fake received, in order, with the
//! virtual time it arrived at and whether it failed. Tests assert on it (youki's
//! `TestHelperSyscall`, as one `Vec`).

use pledge_core::{FailureClass, Signal, TaskId};
use std::time::Duration;

/// Which backend method was called, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOp {
    /// `probe`.
    Probe,
    /// `launch` of a plan for this task.
    Launch(TaskId),
    /// `signal`.
    Signal(TaskId, Signal),
    /// `kill_all`.
    KillAll(TaskId),
    /// `reattach` with a state for this task.
    Reattach(TaskId),
    /// `sample`.
    Sample(TaskId),
    /// `cleanup`; `killed` counts the processes it had to kill first.
    Cleanup {
        /// The task.
        task: TaskId,
        /// Processes still alive that cleanup killed.
        killed: u32,
    },
    /// `drain_observations` that returned `n > 0` observations (empty drains have no effect and
    /// are not logged, or the log would be mostly drains).
    Drain(usize),
}

impl CallOp {
    /// The task the call was about, if any.
    pub fn task(&self) -> Option<&TaskId> {
        match self {
            Self::Launch(t)
            | Self::Signal(t, _)
            | Self::KillAll(t)
            | Self::Reattach(t)
            | Self::Sample(t)
            | Self::Cleanup { task: t, .. } => Some(t),
            Self::Probe | Self::Drain(_) => None,
        }
    }
}

/// One logged call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Virtual time (offset from the fake's epoch) when it was made.
    pub at: Duration,
    /// What was called.
    pub op: CallOp,
    /// `Some(class)` if it returned an error.
    pub failed: Option<FailureClass>,
}
