//! The sandbox plan: a complete, pure description of how one task is to be launched.

use crate::backend::HostFacts;
use crate::config::{NamespaceMode, PluginConfig, SandboxMode, TaskConfig};
use crate::ids::TaskId;
use crate::policy::unveils::{self, TaskDirs};
use crate::sandbox::{PromiseSet, UnveilRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
///
/// - cwd = the task dir `<alloc_dir>/<name>`; TMPDIR = its `tmp/` (Nomad creates it, mode 1777).
/// - env = Nomad's task env minus the loader/allocator/locale hijack variables
///   ([`is_dangerous_env`]) and keys execve cannot carry, plus `TMPDIR`.
/// - unveil = the explicit rules merged with the policy table's defaults for the promises and
///   the task's directories ([`crate::policy::unveils`]; same path → union of perms), sorted
///   by path. Rows needing IO (the program, its interpreter) are the backend's.
/// - namespaces: pid and ipc private unless `pid_mode`/`ipc_mode = "host"`; mount and uts
///   always private; the alloc's netns joined when Nomad gave one.
/// - cgroup: see [`plan_cgroup`].
pub fn plan_sandbox(
    spec: &TaskSpec,
    cfg: &TaskConfig,
    plugin: &PluginConfig,
    host: &HostFacts,
) -> SandboxPlan {
    let task_dir = task_dir(spec);
    let tmp_dir = task_dir.join(TASK_TMP_DIR);
    let mut env: BTreeMap<String, String> = spec
        .env
        .iter()
        .filter(|(k, v)| env_key_ok(k) && !v.contains('\0') && !is_dangerous_env(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.insert("TMPDIR".to_string(), tmp_dir.display().to_string());

    let defaults = unveils::default_unveils(&cfg.promises, &task_dirs(spec, &tmp_dir));
    let unveil = unveils::merge(cfg.unveil.iter().cloned().chain(defaults));

    SandboxPlan {
        task: spec.id.clone(),
        alloc_id: spec.alloc_id.clone(),
        task_name: spec.name.clone(),
        command: cfg.command.clone(),
        args: cfg.args.clone(),
        env,
        cwd: task_dir,
        user: spec.user.clone().filter(|u| !u.is_empty()),
        group: None,
        stdout: spec.stdout_path.clone(),
        stderr: spec.stderr_path.clone(),
        promises: cfg.promises.clone(),
        unveil,
        unveil_enabled: true,
        unveil_best_effort: plugin.unveil_best_effort,
        kill_on_violation: cfg.kill_on_violation,
        mode: cfg.sandbox_mode,
        namespaces: NamespacePlan {
            pid: cfg.pid_mode == NamespaceMode::Private,
            ipc: cfg.ipc_mode == NamespaceMode::Private,
            mount: true,
            uts: true,
            net_path: spec
                .netns_path
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
        },
        cgroup: plan_cgroup(spec, cfg, plugin, host),
        rlimits: cfg.rlimits.clone(),
        bind_ports: cfg.bind_ports.clone(),
        connect_ports: cfg.connect_ports.clone(),
        net_bind_service: cfg.net_bind_service,
        tmp_dir,
        pledge_executable: plugin.pledge_executable.clone(),
        state_dir: plugin.state_dir.join(spec.id.file_name()),
    }
}

/// Name of the per-task tmp dir inside the task dir (Nomad `allocdir.TmpDirName`).
pub const TASK_TMP_DIR: &str = "tmp";
/// Nomad's `allocdir.TaskLocal` (`NOMAD_TASK_DIR`).
pub const TASK_LOCAL_DIR: &str = "local";
/// Nomad's `allocdir.TaskSecrets` (`NOMAD_SECRETS_DIR`).
pub const TASK_SECRETS_DIR: &str = "secrets";
/// Nomad's `allocdir.SharedAllocName` (`NOMAD_ALLOC_DIR`), inside the alloc dir.
pub const SHARED_ALLOC_DIR: &str = "alloc";

/// The task dir: `<alloc_dir>/<task name>`, the name made safe as one path component.
pub fn task_dir(spec: &TaskSpec) -> PathBuf {
    spec.alloc_dir.join(path_component(&spec.name))
}

/// The task's own directories, for [`crate::policy::unveils::default_unveils`].
pub fn task_dirs(spec: &TaskSpec, tmp_dir: &Path) -> TaskDirs {
    let task = task_dir(spec);
    TaskDirs {
        local_dir: task.join(TASK_LOCAL_DIR),
        secrets_dir: task.join(TASK_SECRETS_DIR),
        alloc_data_dir: spec.alloc_dir.join(SHARED_ALLOC_DIR),
        tmp_dir: tmp_dir.to_path_buf(),
    }
}

/// Variables that make the dynamic loader, libc or an interpreter load code or data chosen by
/// whoever set them: glibc's `UNSECURE_ENVVARS` (what it strips for setuid programs), any
/// `LD_*`, `MALLOC_*` and `GLIBC_TUNABLES`, plus the display/session variables the original
/// driver dropped. `TMPDIR` is replaced by the task's own.
pub fn is_dangerous_env(key: &str) -> bool {
    const EXACT: &[&str] = &[
        // glibc sysdeps/generic/unsecvars.h
        "GCONV_PATH",
        "GETCONF_DIR",
        "GLIBC_TUNABLES",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
        // dropped by the original driver's flatten()
        "LS_COLORS",
        "XAUTHORITY",
        "DISPLAY",
        "COLORTERM",
        "MAIL",
    ];
    key.starts_with("LD_") || key.starts_with("MALLOC_") || EXACT.contains(&key)
}

/// Whether execve can carry `key` as a variable name.
fn env_key_ok(key: &str) -> bool {
    !key.is_empty() && !key.contains('=') && !key.contains('\0')
}

/// `s` usable as one path component: `/`, NUL and a leading `.` escaped as `%xx`, so Nomad's
/// ordinary names (`<uuid>.<task>`) are unchanged and no name can climb out of its parent.
fn path_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '/' | '\0' | '%' => out.push_str(&format!("%{:02x}", c as u32)),
            '.' if i == 0 => out.push_str("%2e"),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// v1 `cpu.shares` bounds.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// CFS period for the hard cap, µs.
pub const CPU_PERIOD_US: u64 = 100_000;
/// MHz per core assumed when the host did not say (see [`plan_cgroup`]).
pub const FALLBACK_MHZ_PER_CORE: u64 = 1000;

/// cpu.weight (v2) for v1 shares, as runc and systemd convert: `1 + ((s - 2) * 9999) / 262142`.
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    let s = shares.clamp(MIN_SHARES, MAX_SHARES);
    (1 + ((s - 2) * 9999) / 262_142).clamp(1, 10_000)
}

/// The cgroup part of the plan.
///
/// - v2 path: Nomad's `cpuset_cgroup` made relative to `/sys/fs/cgroup` when the host is v2
///   and it is given and sane; else `nomad.slice/{share|reserve}.slice/<alloc>.<task>.scope`.
/// - v1 path: `nomad/{share|reserve}/<alloc>.<task>` below each controller mount (Nomad's
///   cgroupslib `LinuxResourcesPath` for the cpuset controller; we use the same leaf for cpu,
///   cpuacct, memory, pids and freezer). `reserve` when the task has reserved cores.
/// - memory: `memory` MiB is the hard limit; with `memory_max > 0` it is the soft limit and
///   `memory_max` the hard one; `memory_max = -1` leaves the hard limit unlimited.
/// - cpu: shares = `cpu` MHz (2..=262144) and the cpu.weight conversion; with the plugin's
///   `cpu_hard_limit`, quota = shares / MHz-per-core × period (period 100 ms, minimum quota
///   1 ms). MHz per core comes from [`HostFacts::cpu_mhz_per_core`], else 1000 is assumed.
/// - cpuset.cpus = the reserved cores, pids.max = the pids limit, nice = importance.
pub fn plan_cgroup(
    spec: &TaskSpec,
    cfg: &TaskConfig,
    plugin: &PluginConfig,
    host: &HostFacts,
) -> CgroupPlan {
    let r = &spec.resources;
    let cpus = r.cpuset_cpus.trim();
    let cpuset_cpus = (!cpus.is_empty()
        && cpus
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-'))
    .then(|| cpus.to_string());
    let reserve = cpuset_cpus.is_some();
    let scope = format!(
        "{}.{}",
        path_component(&spec.alloc_id),
        path_component(&spec.name)
    );
    let computed_v2 = format!(
        "nomad.slice/{}/{scope}.scope",
        if reserve {
            "reserve.slice"
        } else {
            "share.slice"
        }
    );
    let v2_path = match (host.cgroup, nomad_v2_path(&r.cpuset_cgroup)) {
        (crate::backend::CgroupMode::V2, Some(p)) => p,
        _ => computed_v2,
    };
    let v1_path = format!(
        "nomad/{}/{scope}",
        if reserve { "reserve" } else { "share" }
    );

    let shares = u64::try_from(r.cpu_shares)
        .unwrap_or(0)
        .clamp(MIN_SHARES, MAX_SHARES);
    let cpu_max = plugin.cpu_hard_limit.then(|| {
        let mhz = if host.cpu_mhz_per_core > 0 {
            host.cpu_mhz_per_core
        } else {
            FALLBACK_MHZ_PER_CORE
        };
        let quota = (u128::from(shares) * u128::from(CPU_PERIOD_US) / u128::from(mhz)).max(1000);
        (u64::try_from(quota).unwrap_or(u64::MAX), CPU_PERIOD_US)
    });

    const MIB: u64 = 1024 * 1024;
    let mib = |m: i64| {
        u64::try_from(m)
            .ok()
            .filter(|m| *m > 0)
            .map(|m| m.saturating_mul(MIB))
    };
    let (memory_low, memory_max) = match (mib(r.memory_mb), r.memory_max_mb) {
        (None, -1) => (None, None),
        (None, max) => (None, mib(max)),
        (Some(mem), -1) => (Some(mem), None),
        (Some(mem), max) => match mib(max) {
            Some(hard) => (Some(mem), Some(hard.max(mem))),
            None => (None, Some(mem)),
        },
    };

    CgroupPlan {
        v2_path,
        v1_path,
        cpu_shares: shares,
        cpu_weight: cpu_weight_from_shares(shares),
        cpu_max,
        memory_low,
        memory_max,
        cpuset_cpus,
        pids_max: cfg.pids_limit,
        nice: cfg.importance.nice(),
    }
}

/// Nomad's v2 `cpuset_cgroup` as a path below `/sys/fs/cgroup`, if it is one: absolute or
/// relative, no `..`, no NUL, not the root itself.
fn nomad_v2_path(given: &str) -> Option<String> {
    let rel = match given.strip_prefix("/sys/fs/cgroup/") {
        Some(rel) => rel,
        None if given.starts_with('/') => return None, // absolute but outside the cgroup mount
        None => given,
    };
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.iter().any(|p| *p == ".." || p.contains('\0')) {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_component_keeps_nomad_names_and_escapes_the_rest() {
        assert_eq!(path_component("web"), "web");
        assert_eq!(path_component("8f3c-1.web-2"), "8f3c-1.web-2");
        assert_eq!(path_component(".."), "%2e.");
        assert_eq!(path_component("a/b"), "a%2fb");
        assert_eq!(path_component("a%2fb"), "a%252fb", "escapes stay injective");
        assert_eq!(path_component(""), "%00");
        assert_eq!(path_component("x\0"), "x%00");
    }

    #[test]
    fn nomad_v2_path_accepts_only_paths_below_the_mount() {
        assert_eq!(
            nomad_v2_path("/sys/fs/cgroup/nomad.slice/share.slice/a.t.scope").as_deref(),
            Some("nomad.slice/share.slice/a.t.scope")
        );
        assert_eq!(
            nomad_v2_path("nomad.slice//./x.scope/").as_deref(),
            Some("nomad.slice/x.scope")
        );
        for bad in [
            "",
            "/",
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/",
            "/sys/fs/cgroupx/y",
            "/etc",
            "nomad.slice/../../x",
            "a\0b",
        ] {
            assert_eq!(nomad_v2_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dangerous_env_list() {
        for k in [
            "LD_PRELOAD",
            "LD_",
            "MALLOC_ARENA_MAX",
            "GLIBC_TUNABLES",
            "TMPDIR",
            "NLSPATH",
        ] {
            assert!(is_dangerous_env(k), "{k}");
        }
        for k in ["PATH", "HOME", "LDFLAGS", "NOMAD_TASK_DIR", "ld_preload"] {
            assert!(!is_dangerous_env(k), "{k}");
        }
    }
}
