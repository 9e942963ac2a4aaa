//! The agent's `plugin "nomad-pledge-driver" { config { ... } }` block.

use super::CtyNumber;
use crate::error::{ConfigError, ConfigErrors};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The plugin config block exactly as cty-msgpack delivers it: every schema key present, unset
/// attributes as nil, so every field is an `Option`. Field names are the hclspec attribute names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginConfig {
    /// Path of an external pledge.com; when set tasks run under it as the original driver did.
    #[serde(default)]
    pub pledge_executable: Option<String>,
    /// Where supervisors keep per-task state (default `/run/nomad-pledge-driver`).
    #[serde(default)]
    pub state_dir: Option<String>,
    /// Cap CPU at the task's `resources.cpu` share with cpu.max / cfs quota (default false).
    #[serde(default)]
    pub cpu_hard_limit: Option<bool>,
    /// Default pids limit per task (default 4096; 0 means unlimited).
    #[serde(default)]
    pub pids_limit: Option<CtyNumber>,
    /// Allow tasks to opt in to CAP_NET_BIND_SERVICE (default false).
    #[serde(default)]
    pub allow_net_bind_service: Option<bool>,
    /// Start tasks even when the kernel can only partly enforce their unveil (default false).
    #[serde(default)]
    pub unveil_best_effort: Option<bool>,
    /// Default RLIMIT_NOFILE (default 65536).
    #[serde(default)]
    pub rlimit_nofile: Option<CtyNumber>,
    /// Default RLIMIT_NPROC (default unlimited: the pids limit bounds processes).
    #[serde(default)]
    pub rlimit_nproc: Option<CtyNumber>,
    /// Default RLIMIT_FSIZE in bytes (default unlimited).
    #[serde(default)]
    pub rlimit_fsize: Option<CtyNumber>,
    /// Default RLIMIT_CPU in seconds (default unlimited).
    #[serde(default)]
    pub rlimit_cpu: Option<CtyNumber>,
    /// Default RLIMIT_AS in bytes (default unlimited).
    #[serde(default)]
    pub rlimit_as: Option<CtyNumber>,
}

/// Resource limits applied with setrlimit before exec. `None` leaves the limit unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitDefaults {
    /// RLIMIT_NOFILE.
    pub nofile: Option<u64>,
    /// RLIMIT_NPROC.
    pub nproc: Option<u64>,
    /// RLIMIT_FSIZE, bytes.
    pub fsize: Option<u64>,
    /// RLIMIT_CPU, seconds.
    pub cpu: Option<u64>,
    /// RLIMIT_AS, bytes.
    pub address_space: Option<u64>,
}

/// The validated plugin config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginConfig {
    /// External pledge.com, if configured.
    pub pledge_executable: Option<PathBuf>,
    /// Per-task state directory root.
    pub state_dir: PathBuf,
    /// Whether a hard CPU cap is applied.
    pub cpu_hard_limit: bool,
    /// Default pids limit; `None` = unlimited.
    pub pids_limit: Option<u64>,
    /// Whether tasks may keep CAP_NET_BIND_SERVICE.
    pub allow_net_bind_service: bool,
    /// Whether partial Landlock enforcement is acceptable.
    pub unveil_best_effort: bool,
    /// Default rlimits.
    pub rlimits: RlimitDefaults,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            pledge_executable: None,
            state_dir: PathBuf::from(Self::DEFAULT_STATE_DIR),
            cpu_hard_limit: false,
            pids_limit: Some(Self::DEFAULT_PIDS_LIMIT),
            allow_net_bind_service: false,
            unveil_best_effort: false,
            rlimits: RlimitDefaults {
                nofile: Some(Self::DEFAULT_NOFILE),
                ..RlimitDefaults::default()
            },
        }
    }
}

impl PluginConfig {
    /// Default state directory.
    pub const DEFAULT_STATE_DIR: &'static str = "/run/nomad-pledge-driver";
    /// Default pids limit per task.
    pub const DEFAULT_PIDS_LIMIT: u64 = 4096;
    /// Default RLIMIT_NOFILE.
    pub const DEFAULT_NOFILE: u64 = 65536;
}

impl RawPluginConfig {
    /// Validates every field, reporting all problems at once (`plugin.<field>: ...`).
    ///
    /// Unset attributes take the defaults of [`PluginConfig::default`]. An empty
    /// `pledge_executable` counts as unset (built-in sandbox). Counts and limits must not be
    /// negative; `0` means unlimited.
    pub fn validate(self) -> Result<PluginConfig, ConfigErrors> {
        let mut errors = Vec::new();
        let defaults = PluginConfig::default();
        let pledge_executable = match self.pledge_executable.as_deref() {
            None | Some("") => None,
            Some(p) => match absolute_path(p) {
                Ok(p) => Some(p),
                Err(reason) => {
                    errors.push(ConfigError::new(
                        "plugin.pledge_executable",
                        Some(p),
                        reason,
                    ));
                    None
                }
            },
        };
        let state_dir = match self.state_dir.as_deref() {
            None | Some("") => defaults.state_dir.clone(),
            Some(p) => absolute_path(p).unwrap_or_else(|reason| {
                errors.push(ConfigError::new("plugin.state_dir", Some(p), reason));
                defaults.state_dir.clone()
            }),
        };
        let mut limit = |name: &str, v: Option<CtyNumber>, default: Option<u64>| {
            limit_value(&format!("plugin.{name}"), v, default, &mut errors)
        };
        let pids_limit = limit("pids_limit", self.pids_limit, defaults.pids_limit);
        let rlimits = RlimitDefaults {
            nofile: limit("rlimit_nofile", self.rlimit_nofile, defaults.rlimits.nofile),
            nproc: limit("rlimit_nproc", self.rlimit_nproc, None),
            fsize: limit("rlimit_fsize", self.rlimit_fsize, None),
            cpu: limit("rlimit_cpu", self.rlimit_cpu, None),
            address_space: limit("rlimit_as", self.rlimit_as, None),
        };
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(PluginConfig {
            pledge_executable,
            state_dir,
            cpu_hard_limit: self.cpu_hard_limit.unwrap_or(false),
            pids_limit,
            allow_net_bind_service: self.allow_net_bind_service.unwrap_or(false),
            unveil_best_effort: self.unveil_best_effort.unwrap_or(false),
            rlimits,
        })
    }
}

/// A limit attribute: unset → `default`, `0` → unlimited (`None`), negative → error.
pub(crate) fn limit_value(
    field: &str,
    v: Option<CtyNumber>,
    default: Option<u64>,
    errors: &mut Vec<ConfigError>,
) -> Option<u64> {
    match v {
        None => default,
        Some(CtyNumber(0)) => None,
        Some(CtyNumber(n)) => match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(ConfigError::new(
                    field,
                    Some(&n.to_string()),
                    "must not be negative (0 means unlimited)",
                ));
                default
            }
        },
    }
}

/// An absolute path without NUL or `..` components, at most 4096 bytes.
pub(crate) fn absolute_path(p: &str) -> Result<PathBuf, String> {
    if p.len() > 4096 {
        return Err(format!(
            "is {} bytes long; at most 4096 are allowed",
            p.len()
        ));
    }
    if p.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if !p.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if p.split('/').any(|c| c == "..") {
        return Err("must not contain \"..\" components".into());
    }
    Ok(PathBuf::from(p))
}
