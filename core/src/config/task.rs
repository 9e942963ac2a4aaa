//! The job's `config { ... }` block for a `driver = "pledge"` task.

use super::CtyNumber;
use crate::backend::HostFacts;
use crate::config::plugin::limit_value;
use crate::config::{PluginConfig, RlimitDefaults};
use crate::error::{ConfigError, ConfigErrors};
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

/// Longest single argument Linux accepts (`MAX_ARG_STRLEN`, 32 pages).
pub const MAX_ARG_BYTES: usize = 131_072;
/// Most `args` entries accepted.
pub const MAX_ARGS: usize = 4096;
/// Most `unveil` rules accepted (Landlock rules cost kernel memory per rule).
pub const MAX_UNVEIL_RULES: usize = 1024;
/// Landlock ABI that added TCP bind/connect rules.
pub const LANDLOCK_NET_ABI: u32 = 4;

impl RawTaskConfig {
    /// Validates every field against the plugin config and what the host can enforce,
    /// reporting all problems at once, each naming the field, the value and the reason.
    ///
    /// Defaults and decisions (also in the README):
    /// - `command` is required: non-empty, no NUL, at most 4096 bytes. A bare name is looked up
    ///   in PATH by the backend, as pledge.com does.
    /// - `promises` unset or blank → `stdio rpath` (what pledge.com applies without `-p`, and
    ///   therefore what the original driver ran with).
    /// - `importance`, `pid_mode`, `ipc_mode`, `sandbox_mode`: case-insensitive, blank = default.
    /// - `bind_ports`/`connect_ports` need Landlock ABI >= 4 and the built-in sandbox, unless
    ///   the plugin's `unveil_best_effort` accepts them unenforced; sorted and deduplicated.
    /// - `net_bind_service = true` needs the plugin's `allow_net_bind_service`.
    /// - `sandbox_mode = "complain"` needs the built-in sandbox (pledge.com cannot complain).
    /// - `pids_limit` and `rlimit_*` override the plugin's defaults; `0` = unlimited.
    pub fn validate(
        self,
        plugin: &PluginConfig,
        host: &HostFacts,
    ) -> Result<TaskConfig, ConfigErrors> {
        let mut errors: Vec<ConfigError> = Vec::new();
        let builtin = plugin.pledge_executable.is_none();

        let command = match self.command {
            None => {
                errors.push(ConfigError::new(
                    "config.command",
                    None,
                    "is required: name the program to run",
                ));
                String::new()
            }
            Some(c) => {
                if c.trim().is_empty() {
                    errors.push(ConfigError::new(
                        "config.command",
                        Some(&c),
                        "must not be empty",
                    ));
                } else if c.contains('\0') {
                    errors.push(ConfigError::new(
                        "config.command",
                        Some(&c),
                        "contains a NUL byte",
                    ));
                } else if c.len() > 4096 {
                    errors.push(ConfigError::new(
                        "config.command",
                        Some(&c),
                        format!("is {} bytes long; at most 4096 are allowed", c.len()),
                    ));
                }
                c
            }
        };

        let args = self.args.unwrap_or_default();
        if args.len() > MAX_ARGS {
            errors.push(ConfigError::new(
                "config.args",
                None,
                format!("has {} entries; at most {MAX_ARGS} are allowed", args.len()),
            ));
        }
        for (i, a) in args.iter().enumerate().take(MAX_ARGS) {
            let field = format!("config.args[{i}]");
            if a.contains('\0') {
                errors.push(ConfigError::new(field, Some(a), "contains a NUL byte"));
            } else if a.len() > MAX_ARG_BYTES {
                errors.push(ConfigError::new(
                    field,
                    Some(a),
                    format!(
                        "is {} bytes long; Linux allows at most {MAX_ARG_BYTES} per argument",
                        a.len()
                    ),
                ));
            }
        }

        let promises = match self.promises.as_deref() {
            None => PromiseSet::default_cli(),
            Some(p) if p.trim().is_empty() => PromiseSet::default_cli(),
            Some(p) => PromiseSet::parse(p).unwrap_or_else(|e| {
                errors.push(e.within("config"));
                PromiseSet::default_cli()
            }),
        };

        let raw_unveil = self.unveil.unwrap_or_default();
        if raw_unveil.len() > MAX_UNVEIL_RULES {
            errors.push(ConfigError::new(
                "config.unveil",
                None,
                format!(
                    "has {} rules; at most {MAX_UNVEIL_RULES} are allowed",
                    raw_unveil.len()
                ),
            ));
        }
        let mut unveil = Vec::with_capacity(raw_unveil.len().min(MAX_UNVEIL_RULES));
        for (i, r) in raw_unveil.iter().enumerate().take(MAX_UNVEIL_RULES) {
            match UnveilRule::parse(r) {
                Ok(rule) => unveil.push(rule),
                Err(reason) => errors.push(ConfigError::new(
                    format!("config.unveil[{i}]"),
                    Some(r),
                    reason,
                )),
            }
        }

        let importance = keyword(
            "config.importance",
            self.importance.as_deref(),
            &[
                ("lowest", Importance::Lowest),
                ("low", Importance::Low),
                ("normal", Importance::Normal),
                ("high", Importance::High),
                ("highest", Importance::Highest),
            ],
            &mut errors,
        );
        let ns = [
            ("private", NamespaceMode::Private),
            ("host", NamespaceMode::Host),
        ];
        let pid_mode = keyword(
            "config.pid_mode",
            self.pid_mode.as_deref(),
            &ns,
            &mut errors,
        );
        let ipc_mode = keyword(
            "config.ipc_mode",
            self.ipc_mode.as_deref(),
            &ns,
            &mut errors,
        );
        let sandbox_mode = keyword(
            "config.sandbox_mode",
            self.sandbox_mode.as_deref(),
            &[
                ("enforce", SandboxMode::Enforce),
                ("complain", SandboxMode::Complain),
            ],
            &mut errors,
        );
        if sandbox_mode == SandboxMode::Complain && !builtin {
            errors.push(ConfigError::new(
                "config.sandbox_mode",
                Some("complain"),
                "needs the built-in sandbox, but the plugin runs tasks under pledge_executable",
            ));
        }

        let bind_ports = ports(
            "config.bind_ports",
            self.bind_ports,
            0,
            plugin,
            host,
            &mut errors,
        );
        let connect_ports = ports(
            "config.connect_ports",
            self.connect_ports,
            1,
            plugin,
            host,
            &mut errors,
        );

        let net_bind_service = self.net_bind_service.unwrap_or(false);
        if net_bind_service && !plugin.allow_net_bind_service {
            errors.push(ConfigError::new(
                "config.net_bind_service",
                Some("true"),
                "is not allowed: the plugin config must set allow_net_bind_service = true",
            ));
        }

        let pids_limit = limit_value(
            "config.pids_limit",
            self.pids_limit,
            plugin.pids_limit,
            &mut errors,
        );
        let d = &plugin.rlimits;
        let mut limit = |name: &str, v: Option<CtyNumber>, default: Option<u64>| {
            limit_value(&format!("config.{name}"), v, default, &mut errors)
        };
        let rlimits = RlimitDefaults {
            nofile: limit("rlimit_nofile", self.rlimit_nofile, d.nofile),
            nproc: limit("rlimit_nproc", self.rlimit_nproc, d.nproc),
            fsize: limit("rlimit_fsize", self.rlimit_fsize, d.fsize),
            cpu: limit("rlimit_cpu", self.rlimit_cpu, d.cpu),
            address_space: limit("rlimit_as", self.rlimit_as, d.address_space),
        };

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(TaskConfig {
            command,
            args,
            promises,
            unveil,
            importance,
            pid_mode,
            ipc_mode,
            bind_ports,
            connect_ports,
            sandbox_mode,
            kill_on_violation: self.kill_on_violation.unwrap_or(false),
            net_bind_service,
            pids_limit,
            rlimits,
        })
    }
}

/// A keyword attribute: case-insensitive, surrounding space ignored, blank/unset → default.
fn keyword<T: Copy + Default>(
    field: &str,
    v: Option<&str>,
    choices: &[(&str, T)],
    errors: &mut Vec<ConfigError>,
) -> T {
    let Some(raw) = v else {
        return T::default();
    };
    let word = raw.trim().to_lowercase();
    if word.is_empty() {
        return T::default();
    }
    if let Some((_, t)) = choices.iter().find(|(n, _)| *n == word) {
        return *t;
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    errors.push(ConfigError::new(
        field,
        Some(raw),
        format!("expected one of {}", names.join(", ")),
    ));
    T::default()
}

/// A port list: each `min..=65535`, sorted and deduplicated; needs Landlock network rules.
fn ports(
    field: &str,
    v: Option<Vec<CtyNumber>>,
    min: i64,
    plugin: &PluginConfig,
    host: &HostFacts,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<u16>> {
    let list = v?;
    let mut out = std::collections::BTreeSet::new();
    for (i, CtyNumber(n)) in list.iter().copied().enumerate() {
        match u16::try_from(n) {
            Ok(p) if i64::from(p) >= min => {
                out.insert(p);
            }
            _ => errors.push(ConfigError::new(
                format!("{field}[{i}]"),
                Some(&n.to_string()),
                format!("is not a TCP port ({min}..=65535)"),
            )),
        }
    }
    if !plugin.unveil_best_effort {
        if plugin.pledge_executable.is_some() {
            errors.push(ConfigError::new(
                field,
                None,
                "needs the built-in sandbox (pledge.com cannot restrict ports); unset \
                 pledge_executable or set the plugin's unveil_best_effort",
            ));
        } else if host.landlock_abi < LANDLOCK_NET_ABI {
            errors.push(ConfigError::new(
                field,
                None,
                format!(
                    "cannot be enforced: Landlock ABI {} on this host, TCP port rules need ABI \
                     {LANDLOCK_NET_ABI} (Linux 6.7); set the plugin's unveil_best_effort to run \
                     without them",
                    host.landlock_abi
                ),
            ));
        }
    }
    Some(out.into_iter().collect())
}
