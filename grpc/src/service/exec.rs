//! Running a command inside a task's sandbox (ExecTask, ExecTaskStreaming). The core decides
//! *what* to run (an [`ExecPlan`]); an [`ExecRunner`] provided by the binary runs it. Without
//! one, the exec RPCs answer Unimplemented.

use pledge_core::ExecPlan;
use std::time::Duration;

/// What a finished exec produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit code (128+n style is not used: see `signal`).
    pub exit_code: i32,
    /// Terminating signal, 0 if none.
    pub signal: i32,
}

/// Runs exec plans. Implemented over the Linux runtime by the binary.
pub trait ExecRunner: Send + Sync + 'static {
    /// Runs `plan` to completion, collecting its output; kills it after `timeout` if non-zero.
    fn run(&self, plan: &ExecPlan, timeout: Duration) -> Result<ExecOutput, String>;
}
