//! Plugin and task config validation: defaults, every field named, host limits, bad input.

use pledge_core::config::CtyNumber;
use pledge_core::{
    HostFacts, Importance, NamespaceMode, PluginConfig, Promise, PromiseSet, RawPluginConfig,
    RawTaskConfig, SandboxMode, TaskConfig,
};
use std::path::PathBuf;

fn host(abi: u32) -> HostFacts {
    HostFacts {
        landlock_abi: abi,
        ..HostFacts::default()
    }
}

fn task(cmd: &str) -> RawTaskConfig {
    RawTaskConfig {
        command: Some(cmd.into()),
        ..RawTaskConfig::default()
    }
}

fn ok(raw: RawTaskConfig) -> TaskConfig {
    raw.validate(&PluginConfig::default(), &host(7))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn fields(raw: RawTaskConfig, plugin: &PluginConfig, h: &HostFacts) -> Vec<String> {
    match raw.validate(plugin, h) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.0.into_iter().map(|e| e.field).collect(),
    }
}

#[test]
fn plugin_defaults() {
    let p = RawPluginConfig::default().validate().unwrap();
    assert_eq!(p, PluginConfig::default());
    assert_eq!(p.pids_limit, Some(4096));
    assert_eq!(p.rlimits.nofile, Some(65536));
    assert_eq!(p.pledge_executable, None);
    let p = RawPluginConfig {
        pledge_executable: Some(String::new()),
        ..RawPluginConfig::default()
    }
    .validate()
    .unwrap();
    assert_eq!(p.pledge_executable, None, "empty means built-in");
}

#[test]
fn plugin_values_and_zero_means_unlimited() {
    let p = RawPluginConfig {
        pledge_executable: Some("/opt/bin/pledge-1.8.com".into()),
        state_dir: Some("/var/lib/pledge".into()),
        cpu_hard_limit: Some(true),
        pids_limit: Some(CtyNumber(0)),
        rlimit_nofile: Some(CtyNumber(1024)),
        rlimit_as: Some(CtyNumber(0)),
        allow_net_bind_service: Some(true),
        unveil_best_effort: Some(true),
        ..RawPluginConfig::default()
    }
    .validate()
    .unwrap();
    assert_eq!(
        p.pledge_executable,
        Some(PathBuf::from("/opt/bin/pledge-1.8.com"))
    );
    assert_eq!(p.state_dir, PathBuf::from("/var/lib/pledge"));
    assert!(p.cpu_hard_limit && p.allow_net_bind_service && p.unveil_best_effort);
    assert_eq!(p.pids_limit, None);
    assert_eq!(p.rlimits.nofile, Some(1024));
    assert_eq!(p.rlimits.address_space, None);
}

#[test]
fn plugin_reports_every_bad_field() {
    let e = RawPluginConfig {
        pledge_executable: Some("pledge.com".into()),
        state_dir: Some("/run/../etc".into()),
        pids_limit: Some(CtyNumber(-1)),
        rlimit_cpu: Some(CtyNumber(-5)),
        ..RawPluginConfig::default()
    }
    .validate()
    .unwrap_err();
    let f: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        f,
        [
            "plugin.pledge_executable",
            "plugin.state_dir",
            "plugin.pids_limit",
            "plugin.rlimit_cpu"
        ]
    );
    let msg = e.to_string();
    assert!(
        msg.contains(r#"plugin.pledge_executable = "pledge.com": must be an absolute path"#),
        "{msg}"
    );
}

#[test]
fn task_defaults_match_the_original_driver() {
    let c = ok(task("/bin/true"));
    assert_eq!(c.promises, PromiseSet::default_cli());
    assert_eq!(c.promises.to_string(), "stdio rpath");
    assert_eq!(c.importance, Importance::Normal);
    assert_eq!(c.importance.nice(), -5);
    assert_eq!(
        (c.pid_mode, c.ipc_mode),
        (NamespaceMode::Private, NamespaceMode::Private)
    );
    assert_eq!(c.sandbox_mode, SandboxMode::Enforce);
    assert!(c.args.is_empty() && c.unveil.is_empty());
    assert_eq!(
        (c.bind_ports.clone(), c.connect_ports.clone()),
        (None, None)
    );
    assert_eq!(c.pids_limit, Some(4096));
    assert_eq!(c.rlimits.nofile, Some(65536));
    // Blank strings are the defaults too.
    let c = ok(RawTaskConfig {
        promises: Some("  ".into()),
        importance: Some("".into()),
        pid_mode: Some(" ".into()),
        ..task("/bin/true")
    });
    assert_eq!(c.promises, PromiseSet::default_cli());
    assert_eq!(c.importance, Importance::Normal);
}

#[test]
fn task_keywords_are_case_insensitive() {
    let c = ok(RawTaskConfig {
        importance: Some(" Lowest ".into()),
        pid_mode: Some("HOST".into()),
        ipc_mode: Some("host".into()),
        sandbox_mode: Some("Complain".into()),
        promises: Some("STDIO Inet".into()),
        ..task("python3")
    });
    assert_eq!(c.importance.nice(), 19);
    assert_eq!(c.pid_mode, NamespaceMode::Host);
    assert_eq!(c.ipc_mode, NamespaceMode::Host);
    assert_eq!(c.sandbox_mode, SandboxMode::Complain);
    assert_eq!(
        c.promises,
        [Promise::Stdio, Promise::Inet].into_iter().collect()
    );
    for (word, nice) in [
        ("lowest", 19),
        ("low", 10),
        ("normal", -5),
        ("high", -10),
        ("highest", -20),
    ] {
        let c = ok(RawTaskConfig {
            importance: Some(word.into()),
            ..task("x")
        });
        assert_eq!(c.importance.nice(), nice, "{word}");
    }
}

#[test]
fn task_reports_every_bad_field_at_once() {
    let raw = RawTaskConfig {
        command: Some(String::new()),
        args: Some(vec!["ok".into(), "bad\0arg".into()]),
        promises: Some("stdio inett".into()),
        unveil: Some(vec!["r:/ok".into(), "/a/../b".into(), "rel".into()]),
        importance: Some("urgent".into()),
        pid_mode: Some("shared".into()),
        sandbox_mode: Some("audit".into()),
        pids_limit: Some(CtyNumber(-3)),
        ..RawTaskConfig::default()
    };
    let e = raw
        .validate(&PluginConfig::default(), &host(7))
        .unwrap_err();
    let f: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        f,
        [
            "config.command",
            "config.args[1]",
            "config.promises",
            "config.unveil[1]",
            "config.unveil[2]",
            "config.importance",
            "config.pid_mode",
            "config.sandbox_mode",
            "config.pids_limit"
        ]
    );
    let msg = e.to_string();
    assert!(
        msg.contains(
            r#"config.promises = "stdio inett": unknown promise "inett" (known: stdio rpath"#
        ),
        "{msg}"
    );
    assert!(
        msg.contains(
            r#"config.importance = "urgent": expected one of lowest, low, normal, high, highest"#
        ),
        "{msg}"
    );
}

#[test]
fn missing_and_hostile_commands() {
    let f = fields(RawTaskConfig::default(), &PluginConfig::default(), &host(7));
    assert_eq!(f, ["config.command"]);
    for c in ["", "   ", "/bin/\0sh"] {
        let f = fields(task(c), &PluginConfig::default(), &host(7));
        assert_eq!(f, ["config.command"], "{c:?}");
    }
    let huge = "a".repeat(1 << 20);
    let e = task(&huge)
        .validate(&PluginConfig::default(), &host(7))
        .unwrap_err();
    assert!(e.to_string().len() < 400, "the message stays short");
    // Unicode commands are fine.
    assert_eq!(ok(task("/opt/données/app")).command, "/opt/données/app");
}

#[test]
fn huge_args_and_unveil_lists_are_bounded() {
    let f = fields(
        RawTaskConfig {
            args: Some(vec!["a".repeat(200_000)]),
            ..task("x")
        },
        &PluginConfig::default(),
        &host(7),
    );
    assert_eq!(f, ["config.args[0]"]);
    let f = fields(
        RawTaskConfig {
            unveil: Some(vec!["/x".into(); 5000]),
            ..task("x")
        },
        &PluginConfig::default(),
        &host(7),
    );
    assert_eq!(f, ["config.unveil"]);
}

#[test]
fn ports_need_landlock_abi_4_and_the_builtin_sandbox_unless_best_effort() {
    let raw = || RawTaskConfig {
        bind_ports: Some(vec![CtyNumber(8080), CtyNumber(80), CtyNumber(8080)]),
        connect_ports: Some(vec![CtyNumber(443)]),
        ..task("x")
    };
    let c = raw().validate(&PluginConfig::default(), &host(4)).unwrap();
    assert_eq!(c.bind_ports, Some(vec![80, 8080]));
    assert_eq!(c.connect_ports, Some(vec![443]));

    let e = raw()
        .validate(&PluginConfig::default(), &host(3))
        .unwrap_err();
    let f: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(f, ["config.bind_ports", "config.connect_ports"]);
    assert!(e.to_string().contains("Landlock ABI 3"), "{e}");

    let best = PluginConfig {
        unveil_best_effort: true,
        ..PluginConfig::default()
    };
    assert!(raw().validate(&best, &host(0)).is_ok());

    let external = PluginConfig {
        pledge_executable: Some("/opt/pledge.com".into()),
        ..PluginConfig::default()
    };
    let e = raw().validate(&external, &host(7)).unwrap_err();
    assert!(
        e.to_string().contains("pledge.com cannot restrict ports"),
        "{e}"
    );

    let f = fields(
        RawTaskConfig {
            bind_ports: Some(vec![CtyNumber(70000), CtyNumber(-1)]),
            connect_ports: Some(vec![CtyNumber(0)]),
            ..task("x")
        },
        &PluginConfig::default(),
        &host(7),
    );
    assert_eq!(
        f,
        [
            "config.bind_ports[0]",
            "config.bind_ports[1]",
            "config.connect_ports[0]"
        ]
    );
}

#[test]
fn net_bind_service_needs_the_plugin_opt_in() {
    let raw = || RawTaskConfig {
        net_bind_service: Some(true),
        ..task("x")
    };
    let f = fields(raw(), &PluginConfig::default(), &host(7));
    assert_eq!(f, ["config.net_bind_service"]);
    let allow = PluginConfig {
        allow_net_bind_service: true,
        ..PluginConfig::default()
    };
    assert!(raw().validate(&allow, &host(7)).unwrap().net_bind_service);
}

#[test]
fn complain_mode_needs_the_builtin_sandbox() {
    let external = PluginConfig {
        pledge_executable: Some("/opt/pledge.com".into()),
        ..PluginConfig::default()
    };
    let f = fields(
        RawTaskConfig {
            sandbox_mode: Some("complain".into()),
            ..task("x")
        },
        &external,
        &host(7),
    );
    assert_eq!(f, ["config.sandbox_mode"]);
}

#[test]
fn task_limits_override_plugin_defaults() {
    let c = ok(RawTaskConfig {
        pids_limit: Some(CtyNumber(10)),
        rlimit_nofile: Some(CtyNumber(0)),
        rlimit_cpu: Some(CtyNumber(30)),
        ..task("x")
    });
    assert_eq!(c.pids_limit, Some(10));
    assert_eq!(c.rlimits.nofile, None, "0 = unlimited");
    assert_eq!(c.rlimits.cpu, Some(30));
}
