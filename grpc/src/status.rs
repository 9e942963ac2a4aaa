//! The ONE mapping from errors to gRPC statuses. Nomad's client reads only the message, except
//! for StartTask, where a `RecoverableError` detail (in `grpc-status-details-bin`) tells the
//! restart policy whether to retry (protocol.md §4.9). `Unavailable` is never used: Nomad takes
//! it for a crashed plugin.

use crate::pb::rpc_status;
use crate::pb::structs::RecoverableError;
use crate::shell::ShellError;
use pledge_core::{DriverError, FailureClass};
use prost::Message;
use tonic::{Code, Status};

/// Type URL of the RecoverableError detail, as Go's `anypb` writes it.
pub const RECOVERABLE_ERROR_TYPE_URL: &str =
    "type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError";

/// Errors of the grpc layer itself (before a request reaches the core).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// A request field is missing or malformed; names the field.
    #[error("{field}: {reason}")]
    BadRequest {
        /// e.g. `task.id`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The feature needs the Linux task runtime, which this build does not wire in.
    #[error("{0} is not available: the task runtime is not built into this plugin")]
    Unimplemented(&'static str),
    /// The shell failed.
    #[error(transparent)]
    Shell(#[from] ShellError),
    /// The core answered with a reply of the wrong kind (a bug).
    #[error("internal error: unexpected reply to {0}")]
    UnexpectedReply(&'static str),
    /// Something else on our side failed.
    #[error("{0}")]
    Internal(String),
}

impl From<DriverError> for RpcError {
    fn from(e: DriverError) -> Self {
        Self::Shell(ShellError::Driver(e))
    }
}

/// Maps any error of ours to the status Nomad receives.
pub fn to_status(e: &RpcError) -> Status {
    match e {
        RpcError::BadRequest { .. } => Status::invalid_argument(e.to_string()),
        RpcError::Unimplemented(_) => Status::unimplemented(e.to_string()),
        RpcError::Shell(ShellError::Stopped) => Status::internal(e.to_string()),
        RpcError::Shell(ShellError::Driver(d)) => driver_status(d),
        RpcError::UnexpectedReply(_) | RpcError::Internal(_) => Status::internal(e.to_string()),
    }
}

impl From<RpcError> for Status {
    fn from(e: RpcError) -> Self {
        to_status(&e)
    }
}

fn driver_status(e: &DriverError) -> Status {
    let msg = e.to_string();
    match e {
        DriverError::UnknownTask(_) => Status::not_found(msg),
        DriverError::DuplicateTask(_) => Status::already_exists(msg),
        DriverError::InvalidConfig(_) | DriverError::InvalidArgument { .. } => {
            Status::invalid_argument(msg)
        }
        DriverError::NotConfigured | DriverError::WrongState { .. } => {
            Status::failed_precondition(msg)
        }
        DriverError::Backend { class, .. } => match class {
            FailureClass::Retryable => with_recoverable(Code::FailedPrecondition, msg, true),
            FailureClass::Fatal => with_recoverable(Code::Internal, msg, false),
            FailureClass::Gone => Status::failed_precondition(msg),
        },
        _ => Status::internal(msg),
    }
}

/// A status carrying `google.rpc.Status { details: [Any(RecoverableError)] }`, the shape Go's
/// `status.WithDetails` produces and Nomad's client decodes.
fn with_recoverable(code: Code, message: String, recoverable: bool) -> Status {
    let detail = prost_types::Any {
        type_url: RECOVERABLE_ERROR_TYPE_URL.to_owned(),
        value: RecoverableError { recoverable }.encode_to_vec(),
    };
    let rich = rpc_status::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![detail],
    };
    Status::with_details(code, message, rich.encode_to_vec().into())
}

/// The RecoverableError detail of a status, if it has one (tests and clients).
pub fn recoverable_detail(status: &Status) -> Option<bool> {
    let rich = rpc_status::Status::decode(status.details()).ok()?;
    let any = rich.details.first()?;
    if any.type_url != RECOVERABLE_ERROR_TYPE_URL {
        return None;
    }
    RecoverableError::decode(any.value.as_slice())
        .ok()
        .map(|r| r.recoverable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pledge_core::TaskId;

    fn id() -> TaskId {
        TaskId::parse("a/b/c").unwrap_or_default()
    }

    #[test]
    fn unknown_task_has_nomads_message() {
        let s = to_status(&DriverError::UnknownTask(id()).into());
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "task not found for given id");
    }

    #[test]
    fn retryable_backend_failure_is_recoverable() {
        let e = DriverError::Backend {
            class: FailureClass::Retryable,
            message: "cgroup busy".into(),
        };
        let s = to_status(&e.into());
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(recoverable_detail(&s), Some(true));
        let rich = rpc_status::Status::decode(s.details()).ok();
        assert_eq!(rich.map(|r| r.message), Some("cgroup busy".to_owned()));
    }

    #[test]
    fn fatal_backend_failure_is_not_recoverable() {
        let e = DriverError::Backend {
            class: FailureClass::Fatal,
            message: "no such program".into(),
        };
        let s = to_status(&e.into());
        assert_eq!(recoverable_detail(&s), Some(false));
        assert_ne!(s.code(), Code::Unavailable);
    }

    #[test]
    fn other_errors_carry_no_detail_and_never_unavailable() {
        let cases: Vec<RpcError> = vec![
            DriverError::NotConfigured.into(),
            DriverError::DuplicateTask(id()).into(),
            RpcError::BadRequest {
                field: "task.id".into(),
                reason: "empty".into(),
            },
            RpcError::Unimplemented("ExecTask"),
            RpcError::Shell(ShellError::Stopped),
        ];
        for e in &cases {
            let s = to_status(e);
            assert_eq!(recoverable_detail(&s), None, "{e}");
            assert_ne!(s.code(), Code::Unavailable, "{e}");
        }
        assert_eq!(to_status(&cases[1]).code(), Code::AlreadyExists);
        assert_eq!(to_status(&cases[3]).code(), Code::Unimplemented);
        assert!(to_status(&cases[2]).message().contains("task.id"));
    }
}
