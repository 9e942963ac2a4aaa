//! Every job file in hack/ parses, and each of its pledge tasks goes through exactly what the
//! local runner (and Nomad's client) does before StartTask — alloc dir, env, templates,
//! interpolation, cty-msgpack encoding against the plugin's own TaskConfigSchema — and then
//! decodes and validates with the core's decoder and validator, as the plugin would.
//! hack/client.hcl's plugin block goes through ConfigSchema the same way.

use pledge_core::backend::CgroupMode;
use pledge_core::config::{decode_plugin_config, decode_task_config};
use pledge_core::{HostFacts, PluginConfig};
use pledge_grpc::runner::allocdir::RunDir;
use pledge_grpc::runner::cgroup;
use pledge_grpc::runner::env::NodeFacts;
use pledge_grpc::runner::job::Job;
use pledge_grpc::runner::ports;
use pledge_grpc::runner::session::{prepare_task, PrepareInputs};
use pledge_grpc::runner::spec::Spec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn hack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack")
}

/// A host that can enforce everything, so validation judges the job files, not this machine.
fn capable_host() -> HostFacts {
    HostFacts {
        cgroup: CgroupMode::V2,
        landlock_abi: 7,
        seccomp: true,
        root: true,
        cpus: vec![0, 1],
        kernel: "6.18.0".into(),
        cpu_mhz_per_core: 2000,
    }
}

fn job_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(hack_dir())
        .expect("hack/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .filter(|p| p.file_name().is_some_and(|n| n != "client.hcl"))
        .collect();
    files.sort();
    files
}

#[test]
fn hack_has_every_example_the_issue_lists() {
    let names: Vec<String> = job_files()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for want in [
        "env",
        "sleep",
        "http",
        "bridge",
        "cgroup",
        "ps",
        "passwd",
        "resources",
        "ignore",
        "curl",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "hack/{want}.hcl is missing"
        );
    }
    assert!(hack_dir().join("client.hcl").is_file());
}

#[test]
fn every_job_file_parses_encodes_and_validates() {
    let spec = Spec::from_proto(&pledge_grpc::schema::task_config_spec()).expect("task spec");
    let plugin = PluginConfig::default();
    let host = capable_host();
    let node = NodeFacts::probe("5d0f8b1e-0000-4000-8000-000000000001".into());
    let host_env: BTreeMap<String, String> =
        [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into();
    let run = RunDir::create(None).expect("run dir");
    let mut checked = 0;
    for file in job_files() {
        let job = Job::from_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut pledge_tasks = 0;
        for group in &job.groups {
            let alloc_id = uuid::Uuid::new_v4().to_string();
            let alloc = run.alloc(&alloc_id).expect("alloc dir");
            // Static ports may be taken on this machine; validation does not depend on them.
            let allocation = ports::allocate(None).expect("no ports");
            for task in group.tasks.iter().filter(|t| t.driver == "pledge") {
                let prepared = prepare_task(&PrepareInputs {
                    job: &job,
                    group,
                    task,
                    alloc: &alloc,
                    alloc_id: &alloc_id,
                    ports: &fake_ports(group),
                    node: &node,
                    host_env: &host_env,
                    cgroup_mode: cgroup::Mode::V2,
                    spec: &spec,
                })
                .unwrap_or_else(|e| panic!("{} task {:?}: {e}", file.display(), task.name));
                let raw = decode_task_config(&prepared.msgpack)
                    .unwrap_or_else(|e| panic!("{} task {:?}: {e}", file.display(), task.name));
                let cfg = raw
                    .validate(&plugin, &host)
                    .unwrap_or_else(|e| panic!("{} task {:?}: {e}", file.display(), task.name));
                assert!(!cfg.command.is_empty());
                for tpl in &task.templates {
                    assert!(
                        prepared.dirs.dir.join(&tpl.destination).is_file(),
                        "{}: template {} not written",
                        file.display(),
                        tpl.destination
                    );
                }
                pledge_tasks += 1;
            }
            drop(allocation);
        }
        assert!(pledge_tasks > 0, "{} has no pledge task", file.display());
        checked += 1;
    }
    assert_eq!(checked, job_files().len());
    assert!(checked >= 10, "only {checked} job files");
}

/// Ports as the runner would allocate them, without binding (the values do not matter here).
fn fake_ports(group: &pledge_grpc::runner::job::Group) -> Vec<ports::AllocatedPort> {
    group
        .network
        .iter()
        .flat_map(|n| n.ports.iter())
        .enumerate()
        .map(|(i, p)| ports::AllocatedPort {
            label: p.label.clone(),
            value: p
                .static_port
                .unwrap_or(20000 + u16::try_from(i).unwrap_or(0)),
            to: 0,
            host_ip: ports::HOST_IP.into(),
        })
        .collect()
}

#[test]
fn http_job_encodes_the_sandbox_the_issue_asks_for() {
    let spec = Spec::from_proto(&pledge_grpc::schema::task_config_spec()).expect("task spec");
    let job = Job::from_file(&hack_dir().join("http.hcl")).expect("http.hcl");
    let (group, task) = job.tasks().next().expect("task");
    assert_eq!(task.user.as_deref(), Some("nobody"));
    assert_eq!(task.resources.memory, 128);
    assert_eq!(task.resources.memory_max, 200);
    let run = RunDir::create(None).expect("run dir");
    let alloc = run
        .alloc("7e57a110-0000-4000-8000-000000000002")
        .expect("alloc");
    let node = NodeFacts::probe("n".into());
    let prepared = prepare_task(&PrepareInputs {
        job: &job,
        group,
        task,
        alloc: &alloc,
        alloc_id: "7e57a110-0000-4000-8000-000000000002",
        ports: &fake_ports(group),
        node: &node,
        host_env: &BTreeMap::new(),
        cgroup_mode: cgroup::Mode::V2,
        spec: &spec,
    })
    .expect("prepare");
    let cfg = decode_task_config(&prepared.msgpack)
        .expect("decode")
        .validate(&PluginConfig::default(), &capable_host())
        .expect("validate");
    assert_eq!(cfg.promises.to_string(), "stdio rpath inet");
    assert_eq!(format!("{:?}", cfg.importance), "Low");
    let local = prepared.dirs.local.display().to_string();
    assert!(cfg.args.contains(&local), "{:?}", cfg.args);
    assert!(cfg.args.contains(&"20000".to_owned()), "{:?}", cfg.args);
    let index = std::fs::read_to_string(prepared.dirs.local.join("index.html")).expect("index");
    assert!(index.contains("<title>example</title>"));
}

#[test]
fn client_hcl_plugin_block_validates_against_config_schema() {
    let spec = Spec::from_proto(&pledge_grpc::schema::plugin_config_spec()).expect("plugin spec");
    let body = pledge_grpc::runner::agent::plugin_config_body(&hack_dir().join("client.hcl"))
        .expect("plugin block");
    let bytes = pledge_grpc::runner::encode::encode_body(&spec, &body, "plugin").expect("encode");
    let cfg = decode_plugin_config(&bytes)
        .expect("decode")
        .validate()
        .expect("validate");
    // client.hcl documents the defaults: decoding it must give exactly the defaults.
    assert_eq!(cfg, PluginConfig::default());
    // And it shows every option of the schema (pledge_executable commented out).
    let text = std::fs::read_to_string(hack_dir().join("client.hcl")).expect("client.hcl");
    for (name, _) in pledge_grpc::schema::PLUGIN_ATTRS {
        assert!(
            text.contains(name),
            "client.hcl does not show plugin option {name}"
        );
    }
}
