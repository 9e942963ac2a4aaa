//! # Task runtime
//!
//! Owns: the per-task supervisor ([`supervisor`]), cgroups v2 and v1 ([`cgroup`]), namespaces
//! and log FIFOs of the task child ([`child`]), stats, OOM, exec into a task ([`exec`]),
//! re-attach after a plugin restart, and the [`pledge_core::Backend`] impl ([`LinuxBackend`]).
//!
//! Must not: decide policy (limits, namespaces and the sandbox come from the core's
//! [`pledge_core::SandboxPlan`]), or leave a process, cgroup or state file behind.
//!
//! Contract: a task is `plugin → supervise (exits at once) → supervisor (own session,
//! reparented) → task`. The supervisor is the task's parent, survives the plugin, and writes
//! `exit.json` atomically into the task's state dir before it exits. The plugin watches the
//! supervisor through a pidfd and reads that file.

pub mod backend;
pub mod cgroup;
pub mod child;
pub mod error;
pub mod exec;
pub mod init;
pub mod probe;
pub mod procfs;
pub mod state;
pub mod supervisor;
mod watcher;

pub use backend::{BackendOptions, LinuxBackend};
pub use error::{CgroupError, RuntimeError};

/// Called from the watcher thread when observations are pending; wakes the shell's loop.
pub type Waker = std::sync::Arc<dyn Fn() + Send + Sync>;

/// `outer: inner: innermost` for logs.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    pledge_core::backend::error_chain(e)
}
