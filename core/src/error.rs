//! Errors of the core: config validation ([`ConfigError`]) and request handling ([`DriverError`]).
//! The grpc crate maps [`DriverError`] to a gRPC status in exactly one place.

use crate::backend::FailureClass;
use crate::ids::TaskId;
use crate::lifecycle::PhaseName;
use std::fmt;

/// One invalid field. `field` is the attribute path (`config.unveil[2]`, `plugin.pids_limit`),
/// `value` the offending value (shortened when huge), `reason` why it is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// Attribute path, e.g. `promises` or `unveil[1]`.
    pub field: String,
    /// The value as given, truncated to a readable length.
    pub value: Option<String>,
    /// Why it was rejected, e.g. `unknown promise "inett" (known: stdio rpath ...)`.
    pub reason: String,
}

/// Every invalid field of one config, in field order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid config: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What a request can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// SetConfig has not been called yet.
    #[error("plugin not configured: SetConfig has not been called")]
    NotConfigured,
    /// The id is not tracked. The message is the one Nomad's own drivers use.
    #[error("task not found for given id")]
    UnknownTask(TaskId),
    /// StartTask with an id that is already tracked.
    #[error("task with id {0} already started")]
    DuplicateTask(TaskId),
    /// The config did not validate.
    #[error(transparent)]
    InvalidConfig(#[from] ConfigErrors),
    /// The request is not legal in the task's current phase.
    #[error("task {task} is {phase}; cannot {op}")]
    WrongState {
        /// The task.
        task: TaskId,
        /// Its phase.
        phase: PhaseName,
        /// What was asked.
        op: &'static str,
    },
    /// A request argument was invalid (e.g. an unknown signal name).
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// Which argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The backend failed.
    #[error("{message}")]
    Backend {
        /// Retryable or not, as Nomad's RecoverableError needs.
        class: FailureClass,
        /// What failed, with context.
        message: String,
    },
}
