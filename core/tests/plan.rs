//! The sandbox plan: cgroup values (issue 5's examples), env scrubbing, namespaces, unveil
//! merging, and snapshots of both command-line renderings.

use pledge_core::backend::CgroupMode;
use pledge_core::sandbox::render::{builtin_argv, pledge_argv};
use pledge_core::{
    plan_sandbox, HostFacts, PluginConfig, RawTaskConfig, SandboxPlan, TaskId, TaskResources,
    TaskSpec,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ALLOC: &str = "8f3c0a2e-1111-2222-3333-444455556666";

fn spec() -> TaskSpec {
    TaskSpec {
        id: TaskId::parse(format!("{ALLOC}/web/abcd1234")).unwrap(),
        name: "web".into(),
        alloc_id: ALLOC.into(),
        job_name: "http".into(),
        task_group_name: "g".into(),
        alloc_dir: PathBuf::from(format!("/var/nomad/alloc/{ALLOC}")),
        env: BTreeMap::new(),
        user: Some("nobody".into()),
        stdout_path: PathBuf::from("/var/nomad/alloc/x/alloc/logs/.web.stdout.fifo"),
        stderr_path: PathBuf::from("/var/nomad/alloc/x/alloc/logs/.web.stderr.fifo"),
        resources: TaskResources {
            cpu_shares: 100,
            memory_mb: 200,
            ..TaskResources::default()
        },
        netns_path: None,
    }
}

fn v2_host() -> HostFacts {
    HostFacts {
        cgroup: CgroupMode::V2,
        landlock_abi: 7,
        seccomp: true,
        root: true,
        cpus: vec![0, 1],
        kernel: "6.18".into(),
        cpu_mhz_per_core: 2000,
    }
}

fn plan_with(
    spec: &TaskSpec,
    raw: RawTaskConfig,
    plugin: &PluginConfig,
    host: &HostFacts,
) -> SandboxPlan {
    let cfg = raw.validate(plugin, host).unwrap();
    plan_sandbox(spec, &cfg, plugin, host)
}

fn http_config() -> RawTaskConfig {
    RawTaskConfig {
        command: Some("python3".into()),
        args: Some(vec!["-m".into(), "http.server".into(), "8181".into()]),
        promises: Some("inet stdio rpath".into()),
        unveil: Some(vec![
            "r:/etc/mime.types".into(),
            format!("rw:/var/nomad/alloc/{ALLOC}/web/local"),
        ]),
        importance: Some("low".into()),
        ..RawTaskConfig::default()
    }
}

fn plan() -> SandboxPlan {
    plan_with(&spec(), http_config(), &PluginConfig::default(), &v2_host())
}

#[test]
fn memory_200_is_a_209715200_hard_limit() {
    let p = plan();
    assert_eq!(p.cgroup.memory_max, Some(209_715_200));
    assert_eq!(p.cgroup.memory_low, None);
}

#[test]
fn memory_150_max_250_is_soft_and_hard() {
    let mut s = spec();
    s.resources.memory_mb = 150;
    s.resources.memory_max_mb = 250;
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v2_host());
    assert_eq!(p.cgroup.memory_low, Some(157_286_400));
    assert_eq!(p.cgroup.memory_max, Some(262_144_000));
}

#[test]
fn memory_max_minus_one_is_unlimited_hard() {
    let mut s = spec();
    s.resources.memory_mb = 150;
    s.resources.memory_max_mb = -1;
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v2_host());
    assert_eq!(p.cgroup.memory_low, Some(157_286_400));
    assert_eq!(p.cgroup.memory_max, None);
    s.resources.memory_mb = 0;
    s.resources.memory_max_mb = 0;
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v2_host());
    assert_eq!((p.cgroup.memory_low, p.cgroup.memory_max), (None, None));
}

#[test]
fn cpu_shares_weight_and_hard_limit() {
    use pledge_core::sandbox::plan::cpu_weight_from_shares;
    assert_eq!(cpu_weight_from_shares(2), 1);
    assert_eq!(cpu_weight_from_shares(1024), 39);
    assert_eq!(cpu_weight_from_shares(262_144), 10_000);
    assert_eq!(cpu_weight_from_shares(0), 1);
    assert_eq!(cpu_weight_from_shares(u64::MAX), 10_000);
    let p = plan();
    assert_eq!(p.cgroup.cpu_shares, 100);
    assert_eq!(p.cgroup.cpu_weight, 4);
    assert_eq!(p.cgroup.cpu_max, None, "no hard cap unless the plugin asks");
    let hard = PluginConfig {
        cpu_hard_limit: true,
        ..PluginConfig::default()
    };
    let mut s = spec();
    s.resources.cpu_shares = 1000;
    let p = plan_with(&s, http_config(), &hard, &v2_host());
    assert_eq!(
        p.cgroup.cpu_max,
        Some((50_000, 100_000)),
        "1000 of 2000 MHz"
    );
    let p = plan_with(&s, http_config(), &hard, &HostFacts::default());
    assert_eq!(
        p.cgroup.cpu_max,
        Some((100_000, 100_000)),
        "fallback 1000 MHz"
    );
    s.resources.cpu_shares = 0;
    let p = plan_with(&s, http_config(), &hard, &v2_host());
    assert_eq!(p.cgroup.cpu_shares, 2);
    assert_eq!(p.cgroup.cpu_max, Some((1000, 100_000)), "minimum quota");
}

#[test]
fn cgroup_paths_v2_given_computed_and_v1() {
    let p = plan();
    assert_eq!(
        p.cgroup.v2_path,
        format!("nomad.slice/share.slice/{ALLOC}.web.scope")
    );
    assert_eq!(p.cgroup.v1_path, format!("nomad/share/{ALLOC}.web"));
    let mut s = spec();
    s.resources.cpuset_cpus = "1".into();
    s.resources.cpuset_cgroup =
        format!("/sys/fs/cgroup/nomad.slice/reserve.slice/{ALLOC}.web.scope");
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v2_host());
    assert_eq!(
        p.cgroup.v2_path,
        format!("nomad.slice/reserve.slice/{ALLOC}.web.scope")
    );
    assert_eq!(p.cgroup.v1_path, format!("nomad/reserve/{ALLOC}.web"));
    assert_eq!(p.cgroup.cpuset_cpus.as_deref(), Some("1"));
    // Nomad's path is ignored when it escapes the mount; the computed one is used.
    for bad in ["/etc/x", "/sys/fs/cgroup/../../etc", "/sys/fs/cgroup"] {
        s.resources.cpuset_cgroup = bad.into();
        let p = plan_with(&s, http_config(), &PluginConfig::default(), &v2_host());
        assert_eq!(
            p.cgroup.v2_path,
            format!("nomad.slice/reserve.slice/{ALLOC}.web.scope"),
            "{bad}"
        );
    }
    // On v1 hosts Nomad's cpuset path is not a v2 path.
    s.resources.cpuset_cgroup = format!("/sys/fs/cgroup/cpuset/nomad/reserve/{ALLOC}.web");
    let v1 = HostFacts {
        cgroup: CgroupMode::V1,
        ..v2_host()
    };
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v1);
    assert_eq!(p.cgroup.v1_path, format!("nomad/reserve/{ALLOC}.web"));
    // A hostile task name cannot climb out of its parent cgroup or alloc dir.
    s.name = "../../x".into();
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v1);
    assert!(!p.cgroup.v2_path.contains("/../"), "{}", p.cgroup.v2_path);
    assert!(!p.cgroup.v1_path.contains("/../"), "{}", p.cgroup.v1_path);
    assert!(p.cwd.starts_with(&s.alloc_dir) && !p.cwd.ends_with(".."));
    // Garbage cpuset strings are dropped.
    s.resources.cpuset_cpus = "0; rm -rf /".into();
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v1);
    assert_eq!(p.cgroup.cpuset_cpus, None);
}

#[test]
fn pids_and_nice() {
    let p = plan();
    assert_eq!(p.cgroup.pids_max, Some(4096));
    assert_eq!(p.cgroup.nice, 10);
}

#[test]
fn env_is_scrubbed_and_tmpdir_is_the_task_tmp() {
    let mut s = spec();
    for (k, v) in [
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("LD_LIBRARY_PATH", "/tmp"),
        ("LD_AUDIT", "x"),
        ("GCONV_PATH", "/tmp"),
        ("MALLOC_CHECK_", "3"),
        ("GLIBC_TUNABLES", "glibc.malloc.check=3"),
        ("TMPDIR", "/tmp"),
        ("LOCPATH", "/x"),
        ("BAD=KEY", "v"),
        ("", "v"),
        ("NUL", "a\0b"),
        ("NOMAD_TASK_DIR", "/local"),
        ("PATH", "/usr/bin:/bin"),
        ("LDFLAGS", "-O2"),
    ] {
        s.env.insert(k.into(), v.into());
    }
    let p = plan_with(&s, http_config(), &PluginConfig::default(), &v2_host());
    let keys: Vec<&str> = p.env.keys().map(String::as_str).collect();
    assert_eq!(keys, ["LDFLAGS", "NOMAD_TASK_DIR", "PATH", "TMPDIR"]);
    assert_eq!(p.env["TMPDIR"], format!("/var/nomad/alloc/{ALLOC}/web/tmp"));
    assert_eq!(p.tmp_dir, Path::new(&p.env["TMPDIR"]));
    assert_eq!(
        p.cwd,
        PathBuf::from(format!("/var/nomad/alloc/{ALLOC}/web"))
    );
}

#[test]
fn namespaces_default_private_with_host_opt_out_and_netns() {
    let p = plan();
    assert!(p.namespaces.pid && p.namespaces.ipc && p.namespaces.mount && p.namespaces.uts);
    assert_eq!(p.namespaces.net_path, None);
    let mut s = spec();
    s.netns_path = Some("/var/run/netns/abc".into());
    let raw = RawTaskConfig {
        pid_mode: Some("host".into()),
        ipc_mode: Some("host".into()),
        ..http_config()
    };
    let p = plan_with(&s, raw, &PluginConfig::default(), &v2_host());
    assert!(!p.namespaces.pid && !p.namespaces.ipc);
    assert!(p.namespaces.mount && p.namespaces.uts);
    assert_eq!(
        p.namespaces.net_path,
        Some(PathBuf::from("/var/run/netns/abc"))
    );
}

#[test]
fn unveil_merges_explicit_and_default_rules_sorted() {
    let p = plan();
    let local = format!("/var/nomad/alloc/{ALLOC}/web/local");
    let rules: Vec<String> = p.unveil.iter().map(ToString::to_string).collect();
    // Explicit rw on local/ unions with the default rwc.
    assert!(rules.contains(&format!("rwc:{local}")), "{rules:?}");
    assert!(
        rules.contains(&"r:/etc/mime.types".to_string()),
        "{rules:?}"
    );
    let mut sorted = p.unveil.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(sorted, p.unveil);
    let mut paths: Vec<_> = p.unveil.iter().map(|r| &r.path).collect();
    paths.dedup();
    assert_eq!(paths.len(), p.unveil.len(), "one rule per path");
}

#[test]
fn plan_is_deterministic() {
    assert_eq!(plan(), plan());
    assert_eq!(
        builtin_argv(&plan(), "/x/nomad-pledge-driver"),
        builtin_argv(&plan(), "/x/nomad-pledge-driver")
    );
}

/// The expected `-v` list for [`plan`], built from the plan itself would be circular, so the
/// snapshot names every rule: the explicit ones and the policy table's rows for
/// `stdio rpath inet` plus the task's directories.
fn expected_unveil_flags(p: &SandboxPlan) -> Vec<String> {
    p.unveil
        .iter()
        .flat_map(|r| ["-v".to_string(), r.to_string()])
        .collect()
}

#[test]
fn builtin_rendering_snapshot() {
    let p = plan();
    let argv = builtin_argv(&p, "/opt/nomad/plugins/nomad-pledge-driver");
    let mut want: Vec<String> = vec![
        "/opt/nomad/plugins/nomad-pledge-driver".into(),
        "sandbox".into(),
        "-p".into(),
        "stdio rpath inet".into(),
    ];
    want.extend(expected_unveil_flags(&p));
    want.extend(
        ["-u", "nobody", "--", "python3", "-m", "http.server", "8181"]
            .iter()
            .map(ToString::to_string),
    );
    assert_eq!(argv, want);
    // The rule list itself, pinned: explicit rules and the task dirs are always there.
    let local = format!("/var/nomad/alloc/{ALLOC}/web/local");
    let secrets = format!("/var/nomad/alloc/{ALLOC}/web/secrets");
    let shared = format!("/var/nomad/alloc/{ALLOC}/alloc");
    for must in [
        "r:/etc/mime.types".to_string(),
        format!("rwc:{local}"),
        format!("r:{secrets}"),
        format!("rwc:{shared}"),
    ] {
        assert!(argv.contains(&must), "{must} in {argv:?}");
    }
}

#[test]
fn pledge_rendering_snapshot() {
    let ext = PluginConfig {
        pledge_executable: Some("/opt/bin/pledge-1.8.com".into()),
        ..PluginConfig::default()
    };
    let raw = RawTaskConfig {
        kill_on_violation: Some(true),
        ..http_config()
    };
    let p = plan_with(&spec(), raw, &ext, &v2_host());
    assert_eq!(
        p.pledge_executable,
        Some(PathBuf::from("/opt/bin/pledge-1.8.com"))
    );
    let argv = pledge_argv(&p, "/opt/bin/pledge-1.8.com");
    let mut want: Vec<String> = vec![
        "/opt/bin/pledge-1.8.com".into(),
        "-p".into(),
        "stdio rpath inet".into(),
    ];
    want.extend(expected_unveil_flags(&p));
    want.extend(
        ["-k", "--", "python3", "-m", "http.server", "8181"]
            .iter()
            .map(ToString::to_string),
    );
    assert_eq!(argv, want);
    assert!(
        !argv.contains(&"-u".to_string()),
        "user switch happens before pledge.com"
    );
}

#[test]
fn rendering_of_a_minimal_plan_exactly() {
    // A hand-built plan pins the full argv, rule by rule.
    let mut p = plan();
    p.unveil = vec![
        pledge_core::UnveilRule::parse("r:/etc/weird:name").unwrap(),
        pledge_core::UnveilRule::parse("rwc:/data").unwrap(),
    ];
    p.user = None;
    p.group = Some("nogroup".into());
    p.args = vec!["--flag=a b".into(), String::new()];
    assert_eq!(
        builtin_argv(&p, "/self"),
        [
            "/self",
            "sandbox",
            "-p",
            "stdio rpath inet",
            "-v",
            "r:/etc/weird:name",
            "-v",
            "rwc:/data",
            "-g",
            "nogroup",
            "--",
            "python3",
            "--flag=a b",
            ""
        ]
    );
    p.unveil_enabled = false;
    assert_eq!(
        pledge_argv(&p, "/pledge"),
        [
            "/pledge",
            "-p",
            "stdio rpath inet",
            "-V",
            "--",
            "python3",
            "--flag=a b",
            ""
        ]
    );
}

#[test]
fn from_cty_msgpack_bytes_to_argv() {
    use rmpv::Value;
    // Every schema key present, nil when unset, numbers in cty's forms (protocol.md §3.3).
    let keys = [
        (
            "args",
            Value::Array(vec![Value::from("-c"), Value::from("echo hi")]),
        ),
        ("bind_ports", Value::Nil),
        ("command", Value::from("/bin/sh")),
        ("connect_ports", Value::Nil),
        ("importance", Value::from("HIGH")),
        ("ipc_mode", Value::Nil),
        ("kill_on_violation", Value::Nil),
        ("net_bind_service", Value::Nil),
        ("pid_mode", Value::Nil),
        ("pids_limit", Value::from("64")),
        ("promises", Value::from("stdio rpath proc exec")),
        ("rlimit_as", Value::Nil),
        ("rlimit_cpu", Value::F64(30.0)),
        ("rlimit_fsize", Value::Nil),
        ("rlimit_nofile", Value::from(1024)),
        ("rlimit_nproc", Value::Nil),
        ("sandbox_mode", Value::Nil),
        ("unveil", Value::Array(vec![Value::from("rx:/usr/bin")])),
    ];
    let v = Value::Map(keys.into_iter().map(|(k, v)| (Value::from(k), v)).collect());
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &v).unwrap();
    let raw = pledge_core::config::decode_task_config(&bytes).unwrap();
    let plan = plan_with(&spec(), raw, &PluginConfig::default(), &v2_host());
    assert_eq!(plan.cgroup.pids_max, Some(64));
    assert_eq!(plan.cgroup.nice, -10);
    assert_eq!(plan.rlimits.cpu, Some(30));
    assert_eq!(plan.rlimits.nofile, Some(1024));
    let argv = builtin_argv(&plan, "/self");
    assert_eq!(
        &argv[..4],
        ["/self", "sandbox", "-p", "stdio rpath proc exec"]
    );
    assert!(argv.contains(&"rx:/usr/bin".to_string()));
    assert_eq!(&argv[argv.len() - 4..], ["--", "/bin/sh", "-c", "echo hi"]);
}
