//! The task's state directory and the messages between plugin, supervisor and task child.
//!
//! Files: `spec.json` (what the supervisor runs, written by the plugin), `exit.json` (how the
//! task ended, written by the supervisor with write-to-temp + rename, so a reader sees the
//! whole record or none), `supervisor.log` (the supervisor's stderr).

use crate::runtime::error::RuntimeError;
use pledge_core::{ExitResult, FailureClass, SandboxPlan};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What the plugin hands the supervisor.
pub const SPEC_FILE: &str = "spec.json";
/// How the task ended.
pub const EXIT_FILE: &str = "exit.json";
/// The supervisor's stderr.
pub const LOG_FILE: &str = "supervisor.log";
/// The fd on which the supervisor reports the launch to the plugin.
pub const REPORT_FD: i32 = 3;

/// Marks every fd above [`REPORT_FD`] close-on-exec. Called in a freshly forked child right
/// before it execs the supervisor or the exec helper: fds the plugin inherited without
/// close-on-exec (from Nomad, a shell, a test harness) must not live on in every supervisor,
/// where they would hold someone's pipe open for the task's whole life. Only a syscall, so
/// async-signal-safe; a kernel without CLOSE_RANGE_CLOEXEC (< 5.11) keeps the old behaviour.
pub fn cloexec_above_report_fd() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let first = libc::c_uint::try_from(REPORT_FD + 1).unwrap_or(4);
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets fd flags and takes no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
}

/// Everything the supervisor needs, resolved by the plugin (cgroup files included), so the
/// supervisor does no policy and no cgroup discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorSpec {
    /// The task's plan.
    pub plan: SandboxPlan,
    /// `cgroup.procs` files the task child joins (writes `0`) before running anything else.
    pub join: Vec<PathBuf>,
    /// File with the `oom_kill N` counter.
    pub oom_file: Option<PathBuf>,
    /// Apply importance with setpriority (v1) instead of cpu.weight.nice (v2).
    pub setpriority: bool,
}

/// One line from the supervisor to the plugin on [`REPORT_FD`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaunchMessage {
    /// First line: the supervisor's identity (so the plugin can kill it on a timeout).
    Supervisor {
        /// pid.
        pid: u32,
        /// start time in ticks.
        start: u64,
    },
    /// The task's program is running (exec succeeded).
    Started {
        /// Host pid of the task's main process.
        pid: u32,
        /// Its start time in ticks.
        start: u64,
        /// How fully the sandbox is enforced.
        sandbox_report: String,
    },
    /// The launch failed; the task child has been reaped.
    Failed {
        /// What failed, with context.
        message: String,
        /// Whether retrying may help.
        class: FailureClass,
    },
}

/// How the task ended, as the supervisor saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code, 0 when killed by a signal.
    pub exit_code: i32,
    /// Terminating signal, 0 when it exited.
    pub signal: i32,
    /// The cgroup's OOM-kill counter rose while the task ran.
    pub oom_killed: bool,
    /// When the supervisor reaped the task.
    pub at: SystemTime,
    /// Set when the supervisor could not learn how the task ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

impl ExitRecord {
    /// As the core's exit result.
    pub fn result(&self) -> ExitResult {
        ExitResult {
            exit_code: self.exit_code,
            signal: self.signal,
            oom_killed: self.oom_killed,
            err: self.err.clone(),
        }
    }
}

/// Writes `bytes` to `dir/name` atomically (temp file in the same dir, then rename).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Reads the exit record, `Ok(None)` if the supervisor has not written one.
pub fn read_exit(dir: &Path) -> Result<Option<ExitRecord>, RuntimeError> {
    let path = dir.join(EXIT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RuntimeError::StateCorrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RuntimeError::StateIo {
            op: "reading",
            path,
            source,
        }),
    }
}

/// Reads the spec written by the plugin.
pub fn read_spec(dir: &Path) -> Result<SupervisorSpec, RuntimeError> {
    let path = dir.join(SPEC_FILE);
    let bytes = std::fs::read(&path).map_err(|source| RuntimeError::StateIo {
        op: "reading",
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| RuntimeError::StateCorrupt { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_record_round_trips_and_a_missing_one_is_none() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        assert!(read_exit(dir.path())?.is_none());
        let rec = ExitRecord {
            exit_code: 7,
            signal: 0,
            oom_killed: true,
            at: SystemTime::UNIX_EPOCH,
            err: None,
        };
        write_atomic(dir.path(), EXIT_FILE, &serde_json::to_vec(&rec)?)?;
        assert_eq!(read_exit(dir.path())?, Some(rec));
        assert!(!dir.path().join(".exit.json.tmp").exists());
        std::fs::write(dir.path().join(EXIT_FILE), b"{not json")?;
        assert!(matches!(
            read_exit(dir.path()),
            Err(RuntimeError::StateCorrupt { .. })
        ));
        Ok(())
    }
}
