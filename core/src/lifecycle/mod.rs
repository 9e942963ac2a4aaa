//! The task lifecycle state machine, sans-IO (see the crate docs for the drive contract).

pub mod drive;
mod driver;
mod task;

pub use driver::Driver;

use crate::backend::{DriverState, ExitResult, Observation, Outcome, Usage};
use crate::config::{PluginConfig, RawPluginConfig, RawTaskConfig};
use crate::error::DriverError;
use crate::ids::{OpId, ReqId, TaskId};
use crate::sandbox::{
    plan::{ExecPlan, TaskSpec},
    SandboxPlan, Signal,
};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// A decoded Nomad call.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// SetConfig: validate and store the plugin config (idempotent; may come twice).
    SetConfig(Box<RawPluginConfig>),
    /// StartTask.
    Start {
        /// Nomad's facts.
        spec: Box<TaskSpec>,
        /// The decoded `config {}` block.
        config: Box<RawTaskConfig>,
    },
    /// RecoverTask with a stored handle's driver state (`task` = `handle.config.id`).
    Recover {
        /// The id Nomad will use.
        task: TaskId,
        /// The persisted state.
        state: Box<DriverState>,
    },
    /// WaitTask: answered once the task has exited (at once if it already has).
    Wait(TaskId),
    /// StopTask: send `signal` (default SIGTERM), kill everything after `timeout`, answer once exited.
    Stop {
        /// Task.
        task: TaskId,
        /// Grace period before the kill.
        timeout: Duration,
        /// Signal name as Nomad sent it (empty = default).
        signal: String,
    },
    /// DestroyTask.
    Destroy {
        /// Task.
        task: TaskId,
        /// Kill a running task first.
        force: bool,
    },
    /// InspectTask.
    Inspect(TaskId),
    /// SignalTask.
    Signal {
        /// Task.
        task: TaskId,
        /// Signal name.
        signal: String,
    },
    /// One TaskStats sample.
    Stats(TaskId),
    /// ExecTask / ExecTaskStreaming: returns the plan; the shell runs it.
    Exec {
        /// Task.
        task: TaskId,
        /// argv.
        argv: Vec<String>,
        /// Allocate a pty.
        tty: bool,
    },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// SetConfig accepted.
    Configured(Box<PluginConfig>),
    /// StartTask: the state to put into the handle.
    Started(Box<DriverState>),
    /// RecoverTask done (or already tracked).
    Recovered,
    /// WaitTask.
    Exited(ExitResult),
    /// StopTask: the task has exited.
    Stopped,
    /// DestroyTask.
    Destroyed,
    /// InspectTask.
    Inspected(Box<TaskView>),
    /// SignalTask.
    Signalled,
    /// One raw TaskStats sample; the stream derives CPU percent with
    /// [`crate::stats::cpu_percent`] against the previous sample (the first against
    /// [`Usage::baseline`] at the task's start).
    Stats(Box<Usage>),
    /// Exec: what to run.
    Exec(Box<ExecPlan>),
}

/// What the core produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Execute this, then feed back [`Input::Completed`] with `op`.
    Command {
        /// Operation id.
        op: OpId,
        /// What to do.
        cmd: Command,
    },
    /// The answer to request `req`; exactly one per request.
    Reply {
        /// Request id.
        req: ReqId,
        /// The answer.
        reply: Result<Reply, DriverError>,
    },
    /// A task event for Nomad's TaskEvents stream.
    Event(TaskEvent),
}

/// What the core wants the backend to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Launch a task.
    Launch(Box<SandboxPlan>),
    /// Signal the main process.
    Signal {
        /// Task.
        task: TaskId,
        /// Signal.
        signal: Signal,
    },
    /// Kill the whole task (stop deadline passed, or forced destroy).
    KillAll {
        /// Task.
        task: TaskId,
    },
    /// Re-attach after a plugin restart.
    Reattach {
        /// Persisted state.
        state: Box<DriverState>,
    },
    /// Sample resource usage.
    Sample {
        /// Task.
        task: TaskId,
    },
    /// Remove the task's cgroup and state.
    Cleanup {
        /// Task.
        task: TaskId,
    },
}

/// An input to the state machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A Nomad request.
    Request {
        /// Id chosen by the shell.
        req: ReqId,
        /// The request.
        body: Request,
    },
    /// The result of an earlier [`Command`].
    Completed {
        /// The command's op id.
        op: OpId,
        /// Its outcome.
        outcome: Outcome,
    },
    /// Something the backend saw on its own.
    Observed(Observation),
    /// Only time passed (a deadline may be due).
    Tick,
}

/// A task event for Nomad (routed by alloc id and task name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    /// Task id.
    pub task: TaskId,
    /// Allocation id.
    pub alloc_id: String,
    /// Task name.
    pub task_name: String,
    /// Message shown as the driver message.
    pub message: String,
    /// Details.
    pub annotations: BTreeMap<String, String>,
}

/// Lifecycle phase names, for errors and InspectTask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhaseName {
    /// Launch in progress.
    Starting,
    /// Running.
    Running,
    /// Stop signal sent, waiting for exit or deadline.
    Stopping,
    /// Exited.
    Exited,
    /// Being destroyed.
    Destroying,
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Exited => "exited",
            Self::Destroying => "being destroyed",
        })
    }
}

/// What InspectTask reports about a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    /// Id.
    pub id: TaskId,
    /// Task name.
    pub name: String,
    /// Phase.
    pub phase: PhaseName,
    /// Start time (the original one, also after recovery).
    pub started_at: Option<SystemTime>,
    /// Exit time.
    pub completed_at: Option<SystemTime>,
    /// Exit result, once exited.
    pub result: Option<ExitResult>,
    /// Driver attributes (pid, sandbox report).
    pub attributes: BTreeMap<String, String>,
}
