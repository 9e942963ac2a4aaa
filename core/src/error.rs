//! Errors of the core: config validation ([`ConfigError`]) and request handling ([`DriverError`]).
//! The grpc crate maps [`DriverError`] to a gRPC status in exactly one place.

use crate::backend::FailureClass;
use crate::ids::TaskId;
use crate::lifecycle::PhaseName;
use std::fmt;

/// One invalid field. `field` is the attribute path (`config.unveil[2]`, `plugin.pids_limit`),
/// `value` the offending value (shortened when huge), `reason` why it is wrong.
/// Displayed as `field = "value": reason`, or `field: reason` when there is no value to show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Attribute path, e.g. `promises` or `unveil[1]`.
    pub field: String,
    /// The value as given, truncated to a readable length.
    pub value: Option<String>,
    /// Why it was rejected, e.g. `unknown promise "inett" (known: stdio rpath ...)`.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{} = {v:?}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

impl ConfigError {
    /// An error for `field` holding `value` (shortened for display), rejected for `reason`.
    pub fn new(field: impl Into<String>, value: Option<&str>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: value.map(shorten),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put in front of the field (`promises` → `config.promises`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// Longest value shown in an error, in characters; a 1 MB string must not become a 1 MB message.
pub const MAX_SHOWN_CHARS: usize = 80;

/// `s` cut to [`MAX_SHOWN_CHARS`] characters, with the total length noted when cut.
pub fn shorten(s: &str) -> String {
    let count = s.chars().count();
    if count <= MAX_SHOWN_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{head}... ({} bytes)", s.len())
}

/// Every invalid field of one config, in field order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// One error.
    pub fn one(e: ConfigError) -> Self {
        Self(vec![e])
    }

    /// The errors for `field`, for tests and callers that branch on a field.
    pub fn for_field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.0.iter().filter(move |e| e.field == field)
    }
}

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
