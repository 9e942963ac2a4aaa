//! The backend conformance scenarios of `pledge_backend_fake::conformance`, run against the real
//! kernel. backend-fake runs the same functions against the fake; when both pass, the fake the
//! simulation relies on predicts Linux for every behaviour the scenarios name (exit codes and
//! signals, one observation per exit, kill_all reaching children, ignored SIGTERM, reattach of
//! running and exited tasks, samples, unknown and exited ids).

mod runtime_common;

use pledge_backend_fake::conformance::{self, Rig};
use pledge_backend_linux::runtime::cgroup::{CgroupOps, CgroupRoots, TaskCgroup};
use pledge_backend_linux::runtime::LinuxBackend;
use pledge_core::{CgroupPlan, SandboxPlan, TaskId};
use runtime_common::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the shells of the plans below exec besides themselves.
const SLEEP: &str = "/usr/bin/sleep";

struct LinuxRig {
    // Field order: the backend goes before the scratch area that removes its cgroups.
    backend: LinuxBackend,
    wake: Wake,
    scratch: Scratch,
    roots: CgroupRoots,
    /// Every planned task's cgroup, so live processes are seen also after cleanup.
    cgroups: BTreeMap<TaskId, CgroupPlan>,
    /// Files launched tasks create once their setup (a `trap`) is in effect; the next
    /// `pass_time` waits for them, since real time passes unevenly (a TCG guest is slow).
    ready: Vec<std::path::PathBuf>,
}

impl LinuxRig {
    fn new() -> Self {
        let wake = Wake::default();
        Self {
            backend: backend(&wake),
            wake,
            scratch: Scratch::new(),
            roots: CgroupRoots::detect(),
            cgroups: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    fn shell(&mut self, script: &str) -> SandboxPlan {
        let args = ["-c", script];
        let shape = TaskShape::new("conformance", "/bin/sh", &args);
        let plan = plan(&self.scratch, &shape);
        self.cgroups.insert(plan.task.clone(), plan.cgroup.clone());
        plan
    }
}

impl Rig for LinuxRig {
    type B = LinuxBackend;

    fn backend(&mut self) -> &mut LinuxBackend {
        &mut self.backend
    }

    fn plan_exiting(&mut self, code: i32) -> SandboxPlan {
        self.shell(&format!("exit {code}"))
    }

    fn plan_running(&mut self) -> SandboxPlan {
        // exec: the task's main process is sleep itself, with default dispositions.
        self.shell(&format!("exec {SLEEP} 1000"))
    }

    fn plan_ignoring_term(&mut self) -> SandboxPlan {
        // Ignored dispositions survive exec. The scenario signals after one pass_time, which
        // must not come before the trap: the shell says when it is set.
        let plan = self.shell(&format!(
            "trap '' TERM INT HUP; : > local/ready; exec {SLEEP} 1000"
        ));
        self.ready.push(plan.cwd.join("local/ready"));
        plan
    }

    fn plan_forking(&mut self, children: u8) -> SandboxPlan {
        let kids = (0..children)
            .map(|_| format!("{SLEEP} 1000 &"))
            .collect::<Vec<_>>()
            .join(" ");
        self.shell(&format!("{kids} wait"))
    }

    fn pass_time(&mut self) {
        for file in std::mem::take(&mut self.ready) {
            let ready = (0..1000).any(|_| {
                if file.exists() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
                false
            });
            assert!(ready, "{} did not appear within 10 s", file.display());
        }
        self.wake.wait(Duration::from_millis(25));
    }

    fn live_pids(&mut self, task: &TaskId) -> Vec<u32> {
        let Some(plan) = self.cgroups.get(task) else {
            return Vec::new();
        };
        match TaskCgroup::for_plan(&self.roots, plan) {
            Ok(cg) => cg.pids(),
            Err(e) => panic!("cgroup of {task}: {e}"),
        }
    }

    fn restart_plugin(&mut self) {
        // The old backend goes away without cleanup, as a killed plugin would; tasks run on.
        self.wake = Wake::default();
        self.backend = backend(&self.wake);
    }
}

pledge_backend_fake::conformance_tests!(|name: &str| privileged(name).then(LinuxRig::new));

/// The whole suite on one backend in sequence: nothing leaks across scenarios.
#[test]
fn every_scenario_runs_on_linux() {
    if !privileged("every_scenario_runs_on_linux") {
        return;
    }
    let mut rig = LinuxRig::new();
    let results = conformance::all(&mut rig);
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(_, r)| r.err().map(|e| e.to_string()))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let left: Vec<u32> = rig
        .cgroups
        .clone()
        .keys()
        .flat_map(|t| rig.live_pids(t))
        .collect();
    assert!(left.is_empty(), "scenarios leaked processes {left:?}");
}
