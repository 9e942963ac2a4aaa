//! Fingerprint: health and `driver.pledge.*` node attributes from what the backend probed on
//! this host (cgroups, Landlock ABI, seccomp, root) and the plugin config.

use crate::pb::drivers::{fingerprint_response::HealthState, FingerprintResponse};
use crate::pb::structs::{attribute::Value, Attribute};
use pledge_core::backend::CgroupMode;
use pledge_core::{HostFacts, PluginConfig};
use std::collections::HashMap;
use std::time::Duration;

/// How often the fingerprint is re-sent even without a change (Nomad's own drivers: 30 s).
pub const PERIOD: Duration = Duration::from_secs(30);

fn attr(v: Value) -> Attribute {
    Attribute {
        value: Some(v),
        unit: String::new(),
    }
}

/// The fingerprint for `host` under `config` (`None` before SetConfig). `runtime` says whether
/// the task runtime is built in.
pub fn fingerprint(
    host: &HostFacts,
    config: Option<&PluginConfig>,
    runtime: bool,
) -> FingerprintResponse {
    let prefix = format!("driver.{}", super::base::DRIVER_NAME);
    let mut a: HashMap<String, Attribute> = HashMap::new();
    let mut put = |k: &str, v: Value| {
        a.insert(format!("{prefix}.{k}"), attr(v));
    };
    put(
        "version",
        Value::StringVal(env!("CARGO_PKG_VERSION").to_owned()),
    );
    put("landlock_abi", Value::IntVal(i64::from(host.landlock_abi)));
    put(
        "cgroup",
        Value::StringVal(
            match host.cgroup {
                CgroupMode::V2 => "v2",
                CgroupMode::V1 => "v1",
                CgroupMode::None => "none",
            }
            .to_owned(),
        ),
    );
    put("seccomp", Value::BoolVal(host.seccomp));
    if !host.kernel.is_empty() {
        put("kernel", Value::StringVal(host.kernel.clone()));
    }
    if let Some(cfg) = config {
        put(
            "cap.net_bind",
            Value::BoolVal(cfg.allow_net_bind_service && host.root),
        );
        put(
            "mode",
            Value::StringVal(
                if cfg.pledge_executable.is_some() {
                    "external"
                } else {
                    "builtin"
                }
                .to_owned(),
            ),
        );
    }
    let (health, description) = health(host, runtime);
    FingerprintResponse {
        attributes: a,
        health: health as i32,
        health_description: description,
        err: String::new(),
    }
}

fn health(host: &HostFacts, runtime: bool) -> (HealthState, String) {
    let mut problems = Vec::new();
    if !runtime {
        problems.push("the task runtime is not built into this plugin".to_owned());
    }
    if !host.root {
        problems.push("the plugin must run as root to sandbox tasks".to_owned());
    }
    if !host.seccomp {
        problems
            .push("the kernel offers no seccomp filters (promises cannot be enforced)".to_owned());
    }
    if host.cgroup == CgroupMode::None {
        problems.push("no usable cgroup hierarchy (resources cannot be enforced)".to_owned());
    }
    if !problems.is_empty() {
        return (HealthState::Unhealthy, problems.join("; "));
    }
    if host.landlock_abi == 0 {
        return (
            HealthState::Healthy,
            "Healthy (Landlock unavailable: tasks that unveil paths will not start)".to_owned(),
        );
    }
    if host.landlock_abi < 6 {
        // Refinements of newer ABIs (TRUNCATE 3, ports 4, IOCTL_DEV 5, scopes 6) are missing:
        // tasks run with unveil reported `partial`, and port rules need ABI 4.
        return (
            HealthState::Healthy,
            format!(
                "Healthy (Landlock ABI {}: unveil partially enforced{})",
                host.landlock_abi,
                if host.landlock_abi < 4 {
                    "; bind_ports/connect_ports need ABI 4"
                } else {
                    ""
                }
            ),
        );
    }
    (HealthState::Healthy, "Healthy".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_host() -> HostFacts {
        HostFacts {
            cgroup: CgroupMode::V1,
            landlock_abi: 7,
            seccomp: true,
            root: true,
            cpus: vec![0, 1],
            kernel: "6.18.0".into(),
            ..HostFacts::default()
        }
    }

    #[test]
    fn capable_host_is_healthy_with_attributes() {
        let cfg = PluginConfig {
            allow_net_bind_service: true,
            ..PluginConfig::default()
        };
        let f = fingerprint(&good_host(), Some(&cfg), true);
        assert_eq!(f.health, HealthState::Healthy as i32);
        assert_eq!(f.health_description, "Healthy");
        let get = |k: &str| f.attributes.get(k).and_then(|a| a.value.clone());
        assert_eq!(get("driver.pledge.landlock_abi"), Some(Value::IntVal(7)));
        assert_eq!(
            get("driver.pledge.cgroup"),
            Some(Value::StringVal("v1".into()))
        );
        assert_eq!(
            get("driver.pledge.cap.net_bind"),
            Some(Value::BoolVal(true))
        );
        assert_eq!(
            get("driver.pledge.mode"),
            Some(Value::StringVal("builtin".into()))
        );
        assert!(get("driver.pledge.version").is_some());
    }

    #[test]
    fn missing_root_or_seccomp_is_unhealthy_and_says_why() {
        let mut h = good_host();
        h.root = false;
        h.seccomp = false;
        let f = fingerprint(&h, None, true);
        assert_eq!(f.health, HealthState::Unhealthy as i32);
        assert!(f.health_description.contains("root"));
        assert!(f.health_description.contains("seccomp"));
        assert!(!f.attributes.contains_key("driver.pledge.cap.net_bind"));
    }

    #[test]
    fn no_runtime_is_unhealthy() {
        let f = fingerprint(&good_host(), None, false);
        assert_eq!(f.health, HealthState::Unhealthy as i32);
        assert!(f.health_description.contains("runtime"));
    }

    #[test]
    fn no_landlock_is_healthy_but_described() {
        let mut h = good_host();
        h.landlock_abi = 0;
        let f = fingerprint(&h, None, true);
        assert_eq!(f.health, HealthState::Healthy as i32);
        assert!(f.health_description.contains("Landlock"));
    }
}
