//! One tracked task: its phase (with the data only that phase has) and the requests waiting
//! on it.

use super::PhaseName;
use crate::backend::{DriverState, ExitResult};
use crate::ids::{OpId, ReqId, TaskId};
use std::time::{Instant, SystemTime};

/// Where a task is in its life. Each variant holds what only that phase needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    /// StartTask's launch command is in flight; `req` gets the reply.
    Launching { op: OpId, req: ReqId },
    /// RecoverTask's re-attach command is in flight; `req` gets the reply.
    Reattaching { op: OpId, req: ReqId },
    /// Running.
    Running,
    /// A stop signal was sent; at `deadline` everything is killed (once: `killed`).
    Stopping {
        deadline: Option<Instant>,
        killed: bool,
    },
    /// Exited; the result every waiter gets.
    Exited { result: ExitResult, at: SystemTime },
    /// A forced destroy killed a live task and waits for its exit (`cleanup: None`), or the
    /// cleanup command `cleanup` is in flight. `req` gets the reply.
    Destroying {
        req: ReqId,
        cleanup: Option<OpId>,
        /// Phase to return to if the kill fails (a failed destroy changes nothing).
        before: Box<Phase>,
        /// Exit recorded while destroying (so a failed cleanup leaves an exited task).
        exit: Option<(ExitResult, SystemTime)>,
    },
}

impl Phase {
    pub(crate) fn name(&self) -> PhaseName {
        match self {
            Self::Launching { .. } | Self::Reattaching { .. } => PhaseName::Starting,
            Self::Running => PhaseName::Running,
            Self::Stopping { .. } => PhaseName::Stopping,
            Self::Exited { .. } => PhaseName::Exited,
            Self::Destroying { .. } => PhaseName::Destroying,
        }
    }

    /// Whether a process may still be alive.
    pub(crate) fn is_live(&self) -> bool {
        match self {
            Self::Running | Self::Stopping { .. } => true,
            Self::Destroying { exit, .. } => exit.is_none(),
            _ => false,
        }
    }
}

/// A tracked task.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: TaskId,
    pub(crate) alloc_id: String,
    pub(crate) name: String,
    pub(crate) phase: Phase,
    /// WaitTask requests not yet answered.
    pub(crate) waiters: Vec<ReqId>,
    /// StopTask requests, answered once the task has exited.
    pub(crate) stoppers: Vec<ReqId>,
    /// Set once launched or re-attached; the original start time survives recovery.
    pub(crate) state: Option<DriverState>,
    /// What the backend said about sandbox enforcement.
    pub(crate) sandbox_report: Option<String>,
    /// An exit observed before the launch/re-attach reply arrived.
    pub(crate) early_exit: Option<(ExitResult, SystemTime)>,
}

impl Task {
    pub(crate) fn new(id: TaskId, alloc_id: String, name: String, phase: Phase) -> Self {
        Self {
            id,
            alloc_id,
            name,
            phase,
            waiters: Vec::new(),
            stoppers: Vec::new(),
            state: None,
            sandbox_report: None,
            early_exit: None,
        }
    }

    /// The exit result, once exited (also while an exited task is being destroyed).
    pub(crate) fn exit(&self) -> Option<(&ExitResult, SystemTime)> {
        match &self.phase {
            Phase::Exited { result, at } => Some((result, *at)),
            Phase::Destroying {
                exit: Some((r, at)),
                ..
            } => Some((r, *at)),
            _ => None,
        }
    }
}
