//! Identifiers: Nomad's task id, and the request/operation ids the shells and the core assign.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nomad's task id (`<alloc_id>/<task_name>/<8 hex>`). Validated: non-empty, at most
/// [`TaskId::MAX_LEN`] bytes, no NUL and no control characters, because it names files and cgroups.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

/// Why a string is not a [`TaskId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("task id must not be empty")]
    Empty,
    /// The id is longer than [`TaskId::MAX_LEN`].
    #[error("task id is {0} bytes long; at most 512 are allowed")]
    TooLong(usize),
    /// The id holds a NUL or another control character.
    #[error("task id contains a control character")]
    ControlChar,
}

impl TaskId {
    /// Longest id accepted, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Validates `s` as a task id.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(IdError::TooLong(s.len()));
        }
        if s.chars().any(char::is_control) {
            return Err(IdError::ControlChar);
        }
        Ok(Self(s))
    }

    /// The id as Nomad sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe as one path component or cgroup name: `/` becomes `_`, and anything outside
    /// `[A-Za-z0-9._-]` is hex-escaped, so distinct ids map to distinct names.
    pub fn file_name(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for b in self.0.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(b as char),
                b'/' => out.push('_'),
                _ => out.push_str(&format!("%{b:02x}")),
            }
        }
        if out.starts_with('.') {
            out.replace_range(0..1, "%2e");
        }
        out
    }
}

impl TryFrom<String> for TaskId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> Self {
        id.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request id, assigned by the shell that submits [`crate::Request`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqId(pub u64);

/// An operation id, assigned by the core to each [`crate::Command`] it emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

impl fmt::Display for ReqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req#{}", self.0)
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op#{}", self.0)
    }
}
