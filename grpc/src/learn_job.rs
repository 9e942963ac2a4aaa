//! `nomad-pledge-driver learn --job JOB.hcl [--task NAME]`: learn a task of a job file.
//!
//! The task is laid out exactly as `run` lays it out (the runner's job parsing, alloc dir,
//! environment, ports, templates and config encoding against the plugin's own schema), the
//! encoded config is decoded and validated by the core and turned into a [`SandboxPlan`] by
//! `plan_sandbox`, as the plugin would. Then, instead of starting it through the plugin, the
//! learn observer runs the plan's command with its env and cwd directly: observing needs the
//! seccomp listener in this process, and the supervisor's namespaces, cgroup and user switch
//! do not change which promises and unveils the program needs (paths are the host's either
//! way: the driver does not change the root). Ctrl-C (or `--seconds`) stops the task; the
//! learned block is printed at the end. Without `--job`, this is `learn -- COMMAND`.

use crate::runner::allocdir::RunDir;
use crate::runner::env::NodeFacts;
use crate::runner::job::Job;
use crate::runner::session::{prepare_task, PrepareInputs};
use crate::runner::spec::Spec;
use crate::runner::{cgroup, ports};
use pledge_backend_linux::learn::cli::{self, Settings};
use pledge_core::config::decode_task_config;
use pledge_core::sandbox::plan::{plan_sandbox, task_dirs, TaskSpec};
use pledge_core::{PluginConfig, TaskId};
use std::collections::BTreeMap;
use std::ffi::OsString;

/// Entry point of the `learn` subcommand.
pub fn main(args: &[OsString]) -> i32 {
    let settings = match cli::parse(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nomad-pledge-driver learn: {e}\n{}", cli::USAGE);
            return 1;
        }
    };
    if settings.help {
        print!("{}", cli::USAGE);
        return 0;
    }
    if settings.job.is_none() {
        return cli::run_command(&settings);
    }
    if !settings.command.is_empty() {
        eprintln!("nomad-pledge-driver learn: give either --job or a COMMAND, not both");
        return 1;
    }
    match run_job(&settings) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nomad-pledge-driver learn: {e}");
            1
        }
    }
}

fn run_job(settings: &Settings) -> Result<i32, String> {
    let path = settings
        .job
        .as_ref()
        .ok_or_else(|| "--job: missing".to_string())?;
    let job = Job::from_file(path).map_err(|e| e.to_string())?;
    let pledge: Vec<_> = job
        .tasks()
        .filter(|(_, t)| t.driver == "pledge")
        .filter(|(_, t)| settings.task.as_deref().is_none_or(|n| n == t.name))
        .collect();
    let (group, task) = match pledge.as_slice() {
        [one] => *one,
        [] => {
            return Err(match &settings.task {
                Some(n) => format!("--task: job {:?} has no pledge task {n:?}", job.name),
                None => format!("job {:?} has no driver = \"pledge\" task", job.name),
            })
        }
        many => {
            let names: Vec<&str> = many.iter().map(|(_, t)| t.name.as_str()).collect();
            return Err(format!(
                "job {:?} has several pledge tasks ({}); choose one with --task",
                job.name,
                names.join(", ")
            ));
        }
    };
    let run_dir = RunDir::create(None).map_err(|e| e.to_string())?;
    let alloc_id = uuid::Uuid::new_v4().to_string();
    let alloc = run_dir.alloc(&alloc_id).map_err(|e| e.to_string())?;
    let allocation = ports::allocate(group.network.as_ref()).map_err(|e| e.to_string())?;
    for p in &allocation.ports {
        eprintln!(
            "nomad-pledge-driver learn: port {:?}: {}:{}",
            p.label, p.host_ip, p.value
        );
    }
    let node = NodeFacts::probe(uuid::Uuid::new_v4().to_string());
    let host_env: BTreeMap<String, String> = std::env::vars().collect();
    let spec = Spec::from_proto(&crate::schema::task_config_spec())?;
    let prepared = prepare_task(&PrepareInputs {
        job: &job,
        group,
        task,
        alloc: &alloc,
        alloc_id: &alloc_id,
        ports: &allocation.ports,
        node: &node,
        host_env: &host_env,
        cgroup_mode: cgroup::Mode::detect(),
        spec: &spec,
    })
    .map_err(|e| e.to_string())?;
    let raw = decode_task_config(&prepared.msgpack).map_err(|e| e.to_string())?;
    let roots = pledge_backend_linux::runtime::cgroup::CgroupRoots::detect();
    let host = pledge_backend_linux::runtime::probe::host_facts(&roots);
    let plugin = PluginConfig::default();
    let cfg = raw.validate(&plugin, &host).map_err(|e| e.to_string())?;
    let id = TaskId::parse(format!("{alloc_id}/{}/learn", task.name)).map_err(|e| e.to_string())?;
    let tspec = TaskSpec {
        id,
        name: task.name.clone(),
        alloc_id: alloc_id.clone(),
        job_name: job.name.clone(),
        task_group_name: group.name.clone(),
        alloc_dir: alloc.path().to_path_buf(),
        env: prepared.env.env.clone(),
        user: task.user.clone(),
        ..TaskSpec::default()
    };
    let plan = plan_sandbox(&tspec, &cfg, &plugin, &host);
    let dirs = task_dirs(&tspec, &plan.tmp_dir);
    eprintln!(
        "nomad-pledge-driver learn: task {:?} of job {:?}: {} {} (Ctrl-C to stop and print what it needed)",
        task.name,
        job.name,
        plan.command,
        plan.args.join(" ")
    );
    if plan.user.is_some() {
        eprintln!(
            "nomad-pledge-driver learn: note: observed as the current user, not {:?}",
            plan.user.as_deref().unwrap_or("")
        );
    }
    let (learned, observed) =
        cli::learn_plan(&plan, Some((dirs, tspec.alloc_dir.clone())), settings, true)
            .map_err(|e| pledge_core::backend::error_chain(&e))?;
    Ok(cli::finish(&learned, &observed, settings))
}
