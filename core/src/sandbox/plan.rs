//! The sandbox plan: a complete, pure description of how one task is to be launched.

use crate::backend::HostFacts;
use crate::config::{NamespaceMode, PluginConfig, SandboxMode, TaskConfig};
use crate::ids::TaskId;
use crate::sandbox::{PromiseSet, UnveilRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Nomad's facts about a task, from `StartTaskRequest.task` (decoded by the grpc crate).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// `TaskConfig.id`.
    pub id: TaskId,
    /// Task name.
    pub name: String,
    /// Allocation id.
    pub alloc_id: String,
    /// Job name, for events and logs.
    pub job_name: String,
    /// Task group name.
    pub task_group_name: String,
    /// Host path of the allocation dir; the task dir is `alloc_dir/<name>`.
    pub alloc_dir: PathBuf,
    /// Interpolated task environment.
    pub env: BTreeMap<String, String>,
    /// `user` of the task (job `user`, `nomad-<id>` dynamic user), if any.
    pub user: Option<String>,
    /// Nomad's stdout FIFO (or /dev/null).
    pub stdout_path: PathBuf,
    /// Nomad's stderr FIFO (or /dev/null).
    pub stderr_path: PathBuf,
    /// Resources.
    pub resources: TaskResources,
    /// Network namespace path in group (bridge) networking mode.
    pub netns_path: Option<PathBuf>,
}

impl Default for TaskId {
    fn default() -> Self {
        Self::parse("unnamed").unwrap_or_else(|_| unreachable!("constant id is valid"))
    }
}

/// The resource part of `TaskConfig.resources` the driver uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResources {
    /// `cpu` MHz (`linux_resources.cpu_shares`).
    pub cpu_shares: i64,
    /// `memory` MiB.
    pub memory_mb: i64,
    /// `memory_max` MiB (0 = unset, -1 = unlimited).
    pub memory_max_mb: i64,
    /// Reserved cores as `"0,3"` (empty = none).
    pub cpuset_cpus: String,
    /// Cgroup path Nomad assigned (`linux_resources.cpuset_cgroup`), absolute, may be empty.
    pub cpuset_cgroup: String,
}

/// Cgroup settings for the task. Values are final: the backend writes them as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// Path below the v2 mount, e.g. `nomad.slice/share.slice/<alloc>.<task>.scope`.
    pub v2_path: String,
    /// Path below each v1 controller mount, e.g. `nomad/share/<alloc>.<task>`.
    pub v1_path: String,
    /// cpu.shares (v1), from `resources.cpu` MHz (min 2).
    pub cpu_shares: u64,
    /// cpu.weight (v2), 1..=10000, converted from shares as systemd/runc do.
    pub cpu_weight: u64,
    /// Hard cap (quota µs, period µs) when the plugin's `cpu_hard_limit` is on.
    pub cpu_max: Option<(u64, u64)>,
    /// Soft memory limit in bytes (memory.low / memory.soft_limit_in_bytes).
    pub memory_low: Option<u64>,
    /// Hard memory limit in bytes; `None` = unlimited.
    pub memory_max: Option<u64>,
    /// cpuset.cpus for reserved cores.
    pub cpuset_cpus: Option<String>,
    /// pids.max; `None` = unlimited.
    pub pids_max: Option<u64>,
    /// Nice value from importance (cpu.weight.nice on v2, setpriority on v1).
    pub nice: i32,
}

/// Namespace choices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePlan {
    /// New pid namespace with a fresh /proc.
    pub pid: bool,
    /// New ipc namespace.
    pub ipc: bool,
    /// New mount namespace (private propagation; needed for the fresh /proc).
    pub mount: bool,
    /// New uts namespace.
    pub uts: bool,
    /// Network namespace to join (bridge mode).
    pub net_path: Option<PathBuf>,
}

/// Resource limits, `None` = unlimited (RLIM_INFINITY).
pub type RlimitPlan = crate::config::RlimitDefaults;

/// Everything the backend needs to launch one task. Built by [`plan_sandbox`]; persisted inside
/// the task handle's driver state so a recovered task can still be exec'd into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// The task.
    pub task: TaskId,
    /// Allocation id, for events.
    pub alloc_id: String,
    /// Task name, for events.
    pub task_name: String,
    /// Program as configured (resolved against PATH by the backend, which then unveils it rx).
    pub command: String,
    /// argv\[1..].
    pub args: Vec<String>,
    /// Environment, with LD_* and other loader/interpreter hijack variables removed and TMPDIR
    /// pointing at the task's tmp dir.
    pub env: BTreeMap<String, String>,
    /// Working directory (the task dir).
    pub cwd: PathBuf,
    /// User to run as (`None` = the plugin's user, i.e. root).
    pub user: Option<String>,
    /// Group to run as (`None` = the user's primary group).
    pub group: Option<String>,
    /// stdout FIFO.
    pub stdout: PathBuf,
    /// stderr FIFO.
    pub stderr: PathBuf,
    /// Promises.
    pub promises: PromiseSet,
    /// Unveil rules: the explicit ones, then the per-promise and per-task defaults, merged
    /// (same path → union of perms), sorted by path.
    pub unveil: Vec<UnveilRule>,
    /// Whether unveil is applied at all (pledge.com `-V` turns it off).
    pub unveil_enabled: bool,
    /// Accept partial Landlock enforcement.
    pub unveil_best_effort: bool,
    /// Kill instead of EPERM.
    pub kill_on_violation: bool,
    /// Enforce or complain.
    pub mode: SandboxMode,
    /// Namespaces.
    pub namespaces: NamespacePlan,
    /// Cgroup settings.
    pub cgroup: CgroupPlan,
    /// Rlimits.
    pub rlimits: RlimitPlan,
    /// Allowed TCP bind ports (`None` = unrestricted).
    pub bind_ports: Option<Vec<u16>>,
    /// Allowed TCP connect ports (`None` = unrestricted).
    pub connect_ports: Option<Vec<u16>>,
    /// Keep CAP_NET_BIND_SERVICE as an ambient capability.
    pub net_bind_service: bool,
    /// The task's private tmp dir (TMPDIR; unveiled rwc with `tmppath`).
    pub tmp_dir: PathBuf,
    /// External pledge.com, when the plugin config names one.
    pub pledge_executable: Option<PathBuf>,
    /// The task's own state directory: `<plugin state_dir>/<TaskId::file_name()>`.
    pub state_dir: PathBuf,
}

/// A command to run inside a running task's sandbox (`nomad alloc exec`, script checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecPlan {
    /// The task's plan, with `command`/`args` replaced by the exec'd command.
    pub plan: SandboxPlan,
    /// Allocate a pty.
    pub tty: bool,
    /// Pid of the task's main process (whose namespaces are joined).
    pub target_pid: u32,
}

/// Builds the plan for `spec` under `cfg`. Pure and deterministic.
pub fn plan_sandbox(
    spec: &TaskSpec,
    cfg: &TaskConfig,
    plugin: &PluginConfig,
    host: &HostFacts,
) -> SandboxPlan {
    let _ = (spec, cfg, plugin, host, NamespaceMode::Host);
    todo!("core helper")
}
