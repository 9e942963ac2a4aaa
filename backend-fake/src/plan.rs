//! A minimal, complete [`SandboxPlan`] for tests that need one without going through config
//! validation (conformance scenarios, unit tests).

use pledge_core::{CgroupPlan, PromiseSet, RlimitPlan, SandboxMode, SandboxPlan, TaskId};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A plan running `command args…` for `task` with promises `stdio rpath`, no unveil rules, and
/// every path below `/tmp/pledge-fake/<task file name>`. The fake backend ignores the paths;
/// a real backend's rig should build its plans with `plan_sandbox` instead.
pub fn plan_for(task: &TaskId, command: &str, args: &[&str]) -> SandboxPlan {
    let root = PathBuf::from("/tmp/pledge-fake").join(task.file_name());
    SandboxPlan {
        task: task.clone(),
        alloc_id: "fake-alloc".to_string(),
        task_name: "fake-task".to_string(),
        command: command.to_string(),
        args: args.iter().map(|a| (*a).to_string()).collect(),
        env: BTreeMap::new(),
        cwd: root.join("task"),
        user: None,
        group: None,
        stdout: PathBuf::from("/dev/null"),
        stderr: PathBuf::from("/dev/null"),
        promises: PromiseSet::default_cli(),
        unveil: Vec::new(),
        unveil_enabled: false,
        unveil_best_effort: true,
        kill_on_violation: false,
        mode: SandboxMode::Enforce,
        namespaces: Default::default(),
        cgroup: CgroupPlan::default(),
        rlimits: RlimitPlan::default(),
        bind_ports: None,
        connect_ports: None,
        net_bind_service: false,
        tmp_dir: root.join("tmp"),
        pledge_executable: None,
        state_dir: root.join("state"),
    }
}
