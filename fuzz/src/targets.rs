//! Fuzz harness bodies for the core's parsers. Each takes raw bytes, must accept any input
//! without panicking, and panics (a finding) only when an invariant below is broken.
//!
//! Shared verbatim by the libFuzzer targets (`fuzz/fuzz_targets/*.rs`, through the
//! `pledge-fuzz` lib) and the stable test pass (`core/tests/fuzz_cty.rs`, via `#[path]`), so
//! this file depends on nothing but `pledge_core`, `serde` and `std`.
//!
//! Invariants checked:
//! - every [`ConfigErrors`] is non-empty and each error names a field under its root
//!   (`config`, `config.args[1]`, `plugin.pids_limit`), has a reason, and stays readable
//!   (bounded length, whatever the input size);
//! - a task config that validates always yields a plan: deterministic, with the validated
//!   command/args/promises, absolute normalized unveil paths merged to one rule per path,
//!   no loader-hijack variables in the environment, and both argv renderings exec-able
//!   (no NUL, ending in `-- command args...`);
//! - promise sets and unveil rules print in a form that parses back to the same value.

use pledge_core::backend::CgroupMode;
use pledge_core::config::{decode_plugin_config, decode_task_config};
use pledge_core::sandbox::render::{builtin_argv, pledge_argv};
use pledge_core::{
    plan_sandbox, ConfigErrors, HostFacts, PluginConfig, PromiseSet, RawPluginConfig,
    RawTaskConfig, SandboxPlan, TaskConfig, TaskId, TaskResources, TaskSpec, UnveilRule,
};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Longest acceptable rendering of one config error, in bytes, whatever the input's size. The
/// core shows at most 80 characters of a value (and of up to 8 unknown promise words), which
/// `{:?}` may escape to 10 bytes each (`\u{10ffff}`); past this bound an error echoes its input.
pub const MAX_ERROR_DISPLAY: usize = 8192;

/// The executable name used for the built-in rendering.
const SELF_EXE: &str = "/usr/local/bin/nomad-pledge-driver";
/// The pledge.com used for the external rendering.
const PLEDGE_EXE: &str = "/opt/bin/pledge-1.8.com";

/// SetConfig's `msgpack_config` → raw plugin config → validated plugin config.
pub fn plugin_config(data: &[u8]) {
    let keys = struct_fields::<RawPluginConfig>();
    let raw = match decode_plugin_config(data) {
        Ok(raw) => raw,
        Err(e) => return check_errors(&e, "plugin", keys, data),
    };
    match raw.validate() {
        Ok(cfg) => {
            assert!(cfg.state_dir.is_absolute(), "state_dir {:?}", cfg.state_dir);
            if let Some(p) = &cfg.pledge_executable {
                assert!(p.is_absolute(), "pledge_executable {p:?}");
            }
        }
        Err(e) => check_errors(&e, "plugin", keys, data),
    }
}

/// StartTask's `msgpack_driver_config` → raw task config → validated task config (under each
/// of a few plugin configs and hosts) → sandbox plan → both argv renderings. Pure: nothing runs.
pub fn task_config(data: &[u8]) {
    let keys = struct_fields::<RawTaskConfig>();
    let raw = match decode_task_config(data) {
        Ok(raw) => raw,
        Err(e) => return check_errors(&e, "config", keys, data),
    };
    for (plugin, host) in environments() {
        match raw.clone().validate(&plugin, &host) {
            Ok(cfg) => check_plan(&cfg, &plugin, &host),
            Err(e) => check_errors(&e, "config", keys, data),
        }
    }
}

/// A `promises` string (the input as UTF-8, lossily).
pub fn promises(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    match PromiseSet::parse(&s) {
        Ok(set) => {
            let shown = set.to_string();
            let again = PromiseSet::parse(&shown)
                .unwrap_or_else(|e| panic!("{shown:?} (from {s:?}) does not parse back: {e}"));
            assert_eq!(again, set, "round trip of {s:?}");
            assert!(set.len() <= pledge_core::Promise::ALL.len());
        }
        Err(e) => {
            assert_eq!(e.field, "promises", "PromiseSet::parse error field");
            assert!(!e.reason.is_empty());
            let shown = e.to_string();
            assert!(
                shown.len() <= MAX_ERROR_DISPLAY,
                "promise error is {} bytes for {} input bytes",
                shown.len(),
                data.len()
            );
        }
    }
}

/// One unveil rule (the input as UTF-8, lossily).
pub fn unveil(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    match UnveilRule::parse(&s) {
        Ok(rule) => check_rule(&rule, &s),
        Err(reason) => {
            assert!(!reason.is_empty(), "empty reason for {s:?}");
            assert!(
                reason.len() <= MAX_ERROR_DISPLAY,
                "unveil error is {} bytes for {} input bytes",
                reason.len(),
                data.len()
            );
        }
    }
}

/// A parsed rule is absolute, normalized, NUL-free, and prints as text that parses back to it.
fn check_rule(rule: &UnveilRule, from: &str) {
    assert!(
        is_normal_absolute(&rule.path),
        "{:?} from {from:?}",
        rule.path
    );
    assert!(!rule.perm.is_empty(), "empty perm from {from:?}");
    let shown = rule.to_string();
    let again = UnveilRule::parse(&shown)
        .unwrap_or_else(|e| panic!("{shown:?} (from {from:?}) does not parse back: {e}"));
    assert_eq!(&again, rule, "round trip of {from:?} via {shown:?}");
}

/// Absolute, no `.`/`..` components, no empty components, no NUL.
fn is_normal_absolute(p: &Path) -> bool {
    let Some(s) = p.to_str() else { return false };
    s.starts_with('/')
        && !s.contains('\0')
        && (s == "/" || !s.ends_with('/'))
        && !s.contains("//")
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// Every error is under `root` (`root`, `root.attr...` or `root[..]`), says why, and is short.
pub fn check_errors(errors: &ConfigErrors, root: &str, keys: &[&str], input: &[u8]) {
    assert!(
        !errors.0.is_empty(),
        "empty ConfigErrors for {} bytes",
        input.len()
    );
    for e in &errors.0 {
        let rest = e
            .field
            .strip_prefix(root)
            .unwrap_or_else(|| panic!("error field {:?} is not under {root:?}: {e}", e.field));
        if let Some(attr) = rest.strip_prefix('.') {
            // A known attribute (`args`, `args[1]`), or one the input itself spelled: an
            // unknown key may hold any characters, `.` and `[` included, or be shortened.
            let known = keys.iter().any(|k| {
                attr.strip_prefix(k)
                    .is_some_and(|t| t.is_empty() || t.starts_with('[') || t.starts_with('.'))
            });
            let spelled = contains_bytes(input, attr.as_bytes())
                || attr.contains("...")
                || attr
                    .split('[')
                    .next()
                    .is_some_and(|a| contains_bytes(input, a.as_bytes()));
            assert!(
                known || spelled,
                "error field {:?} names an attribute neither in the schema nor in the input",
                e.field
            );
        } else {
            assert!(
                rest.is_empty() || rest.starts_with('['),
                "error field {:?} is not an attribute path under {root:?}",
                e.field
            );
        }
        assert!(
            !e.reason.trim().is_empty(),
            "error for {:?} has no reason",
            e.field
        );
        let shown = e.to_string();
        assert!(
            shown.len() <= MAX_ERROR_DISPLAY,
            "error for {:?} is {} bytes long (input {} bytes)",
            e.field,
            shown.len(),
            input.len()
        );
    }
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The plan for a validated config honours it, is deterministic and renders exec-able argv.
fn check_plan(cfg: &TaskConfig, plugin: &PluginConfig, host: &HostFacts) {
    let spec = task_spec();
    let plan = plan_sandbox(&spec, cfg, plugin, host);
    assert_eq!(
        plan,
        plan_sandbox(&spec, cfg, plugin, host),
        "plan_sandbox is not deterministic"
    );
    assert_eq!(plan.command, cfg.command);
    assert_eq!(plan.args, cfg.args);
    assert_eq!(plan.promises, cfg.promises);
    assert_eq!(plan.task, spec.id);

    // Unveil: one rule per path, sorted, each absolute and normalized, each covering what the
    // config asked for that path.
    for w in plan.unveil.windows(2) {
        assert!(
            w[0].path < w[1].path,
            "unveil not sorted/merged: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    for rule in &plan.unveil {
        check_rule(rule, "plan");
    }
    if plan.unveil_enabled {
        for asked in &cfg.unveil {
            let got = plan
                .unveil
                .iter()
                .find(|r| r.path == asked.path)
                .unwrap_or_else(|| panic!("configured unveil {asked} missing from the plan"));
            assert!(
                got.perm.contains(asked.perm),
                "plan weakened {asked} to {got}"
            );
        }
    }
    for key in plan.env.keys() {
        assert!(
            !key.starts_with("LD_"),
            "loader variable {key} reached the task environment"
        );
    }
    assert!(plan.cwd.is_absolute() && plan.tmp_dir.is_absolute() && plan.state_dir.is_absolute());

    check_argv(&builtin_argv(&plan, SELF_EXE), SELF_EXE, &plan);
    check_argv(&pledge_argv(&plan, PLEDGE_EXE), PLEDGE_EXE, &plan);
}

/// argv starts with the launcher, ends with `-- command args...`, and holds no NUL (execve
/// cannot carry one: it would be a late, unclear failure instead of a validation error).
fn check_argv(argv: &[String], exe: &str, plan: &SandboxPlan) {
    assert_eq!(argv.first().map(String::as_str), Some(exe), "argv {argv:?}");
    for a in argv {
        assert!(!a.contains('\0'), "argv element with NUL: {a:?}");
    }
    let tail_len = plan.args.len() + 2;
    assert!(argv.len() > tail_len, "argv too short: {argv:?}");
    let tail = &argv[argv.len() - tail_len..];
    assert_eq!(tail[0], "--", "argv {argv:?}");
    assert_eq!(tail[1], plan.command, "argv {argv:?}");
    assert_eq!(&tail[2..], plan.args.as_slice(), "argv {argv:?}");
}

/// Plugin configs × hosts a task config is validated against: a full host with defaults, and
/// a degraded one (no Landlock, no cgroups, not root) with every permissive plugin option.
pub fn environments() -> Vec<(PluginConfig, HostFacts)> {
    let full = HostFacts {
        cgroup: CgroupMode::V1,
        landlock_abi: 7,
        seccomp: true,
        root: true,
        cpus: vec![0, 1],
        kernel: "6.18.0".into(),
        ..HostFacts::default()
    };
    let degraded = HostFacts {
        cgroup: CgroupMode::None,
        landlock_abi: 0,
        seccomp: true,
        root: false,
        cpus: vec![0],
        kernel: "5.4.0".into(),
        ..HostFacts::default()
    };
    let permissive = PluginConfig {
        pledge_executable: Some(PathBuf::from(PLEDGE_EXE)),
        cpu_hard_limit: true,
        pids_limit: None,
        allow_net_bind_service: true,
        unveil_best_effort: true,
        ..PluginConfig::default()
    };
    vec![(PluginConfig::default(), full), (permissive, degraded)]
}

/// A realistic task as Nomad describes it (the hack/http.hcl task), with a hostile environment.
pub fn task_spec() -> TaskSpec {
    let alloc = "5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30";
    let alloc_dir = PathBuf::from(format!("/var/lib/nomad/alloc/{alloc}"));
    let env: BTreeMap<String, String> = [
        (
            "NOMAD_TASK_DIR",
            format!("{}/http/local", alloc_dir.display()),
        ),
        ("NOMAD_ALLOC_ID", alloc.to_string()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("LD_PRELOAD", "/tmp/evil.so".to_string()),
        ("LD_LIBRARY_PATH", "/tmp".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    TaskSpec {
        id: TaskId::parse(format!("{alloc}/http/8c1f2a3b")).unwrap_or_default(),
        name: "http".into(),
        alloc_id: alloc.into(),
        job_name: "http".into(),
        task_group_name: "web".into(),
        stdout_path: alloc_dir.join("alloc/logs/.http.stdout.fifo"),
        stderr_path: alloc_dir.join("alloc/logs/.http.stderr.fifo"),
        alloc_dir,
        env,
        user: Some("nobody".into()),
        resources: TaskResources {
            cpu_shares: 100,
            memory_mb: 128,
            memory_max_mb: 200,
            cpuset_cpus: String::new(),
            ..TaskResources::default()
        },
        ..TaskSpec::default()
    }
}

/// The attribute names serde expects for `T` (its struct field names, i.e. the hclspec keys),
/// read from the derive without a hand-kept list that could drift.
pub fn struct_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldProbe) {
        Err(ProbeResult(Some(fields))) => fields,
        _ => &[],
    }
}

/// Deserializer that answers `deserialize_struct` by reporting the struct's field list.
struct FieldProbe;

#[derive(Debug)]
struct ProbeResult(Option<&'static [&'static str]>);

impl std::fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeResult {}

impl serde::de::Error for ProbeResult {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Self(None)
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe {
    type Error = ProbeResult;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeResult> {
        Err(ProbeResult(None))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeResult> {
        Err(ProbeResult(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
