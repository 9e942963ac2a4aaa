//! The job's `config { ... }` block for a `driver = "pledge"` task.

use super::CtyNumber;
use crate::backend::HostFacts;
use crate::config::{PluginConfig, RlimitDefaults};
use crate::error::ConfigErrors;
use crate::sandbox::{PromiseSet, UnveilRule};
use serde::{Deserialize, Serialize};

/// The task config exactly as cty-msgpack delivers it (every key present, nil when unset).
/// Field names are the hclspec attribute names returned by TaskConfigSchema.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTaskConfig {
    /// Program to run (required): an absolute path or a name looked up in PATH.
    #[serde(default)]
    pub command: Option<String>,
    /// Arguments after the program name.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Space-separated pledge promises (default `stdio rpath`... see the README).
    #[serde(default)]
    pub promises: Option<String>,
    /// Unveil rules, each `[perm:]path`.
    #[serde(default)]
    pub unveil: Option<Vec<String>>,
    /// `lowest|low|normal|high|highest` (default normal).
    #[serde(default)]
    pub importance: Option<String>,
    /// `private` (default) or `host`.
    #[serde(default)]
    pub pid_mode: Option<String>,
    /// `private` (default) or `host`.
    #[serde(default)]
    pub ipc_mode: Option<String>,
    /// TCP ports the task may bind (Landlock ABI >= 4); unset = not restricted.
    #[serde(default)]
    pub bind_ports: Option<Vec<CtyNumber>>,
    /// TCP ports the task may connect to (Landlock ABI >= 4); unset = not restricted.
    #[serde(default)]
    pub connect_ports: Option<Vec<CtyNumber>>,
    /// `enforce` (default) or `complain`.
    #[serde(default)]
    pub sandbox_mode: Option<String>,
    /// Kill the task on a violation instead of failing the call with EPERM (pledge.com `-k`).
    #[serde(default)]
    pub kill_on_violation: Option<bool>,
    /// Keep CAP_NET_BIND_SERVICE (needs the plugin's `allow_net_bind_service`).
    #[serde(default)]
    pub net_bind_service: Option<bool>,
    /// Pids limit for this task (overrides the plugin default; 0 = unlimited).
    #[serde(default)]
    pub pids_limit: Option<CtyNumber>,
    /// RLIMIT_NOFILE override.
    #[serde(default)]
    pub rlimit_nofile: Option<CtyNumber>,
    /// RLIMIT_NPROC override.
    #[serde(default)]
    pub rlimit_nproc: Option<CtyNumber>,
    /// RLIMIT_FSIZE override, bytes.
    #[serde(default)]
    pub rlimit_fsize: Option<CtyNumber>,
    /// RLIMIT_CPU override, seconds.
    #[serde(default)]
    pub rlimit_cpu: Option<CtyNumber>,
    /// RLIMIT_AS override, bytes.
    #[serde(default)]
    pub rlimit_as: Option<CtyNumber>,
}

/// Scheduling importance, mapped to a nice value like the original driver.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    /// nice 19
    Lowest,
    /// nice 10
    Low,
    /// nice -5
    #[default]
    Normal,
    /// nice -10
    High,
    /// nice -20
    Highest,
}

impl Importance {
    /// The nice value (cpu.weight.nice on v2, setpriority on v1).
    pub fn nice(self) -> i32 {
        match self {
            Self::Lowest => 19,
            Self::Low => 10,
            Self::Normal => -5,
            Self::High => -10,
            Self::Highest => -20,
        }
    }
}

/// Whether a namespace is private to the task or shared with the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceMode {
    /// A new namespace for the task (default).
    #[default]
    Private,
    /// The host's namespace.
    Host,
}

/// Enforce the sandbox, or only report what it would deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Violations are denied (default).
    #[default]
    Enforce,
    /// Everything is allowed; each would-be violation is reported once.
    Complain,
}

/// The validated task config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// Program, as written (resolution against PATH happens in the backend).
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Promises.
    pub promises: PromiseSet,
    /// Explicit unveil rules, in the order written.
    pub unveil: Vec<UnveilRule>,
    /// Importance.
    pub importance: Importance,
    /// pid namespace.
    pub pid_mode: NamespaceMode,
    /// ipc namespace.
    pub ipc_mode: NamespaceMode,
    /// Allowed TCP bind ports; `None` = unrestricted.
    pub bind_ports: Option<Vec<u16>>,
    /// Allowed TCP connect ports; `None` = unrestricted.
    pub connect_ports: Option<Vec<u16>>,
    /// Enforce or complain.
    pub sandbox_mode: SandboxMode,
    /// Kill on violation.
    pub kill_on_violation: bool,
    /// Keep CAP_NET_BIND_SERVICE.
    pub net_bind_service: bool,
    /// Pids limit; `None` = unlimited.
    pub pids_limit: Option<u64>,
    /// Effective rlimits (plugin defaults with task overrides).
    pub rlimits: RlimitDefaults,
}

impl RawTaskConfig {
    /// Validates every field against the plugin config and what the host can enforce,
    /// reporting all problems at once, each naming the field, the value and the reason.
    pub fn validate(
        self,
        plugin: &PluginConfig,
        host: &HostFacts,
    ) -> Result<TaskConfig, ConfigErrors> {
        let _ = (plugin, host);
        todo!("core helper")
    }
}
