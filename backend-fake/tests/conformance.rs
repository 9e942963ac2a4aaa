//! The backend conformance scenarios, run against the fake. backend-linux runs the same
//! functions against the kernel.

use pledge_backend_fake::conformance::{self, Rig};
use pledge_backend_fake::{plan_for, FakeBackend, ProcScript};
use pledge_core::{SandboxPlan, TaskId};
use std::time::Duration;

/// Each `pass_time` moves the virtual clock by this much; scripted exits happen within it.
const TICK: Duration = Duration::from_millis(50);

struct FakeRig {
    backend: FakeBackend,
    next: u32,
}

impl FakeRig {
    fn new() -> Self {
        Self {
            backend: FakeBackend::default(),
            next: 0,
        }
    }

    fn plan(&mut self, script: ProcScript) -> SandboxPlan {
        self.next += 1;
        let task = TaskId::parse(format!("alloc-{}/task/{:08x}", self.next, self.next))
            .unwrap_or_default();
        self.backend.set_script(&task, script);
        plan_for(&task, "/bin/true", &[])
    }
}

impl Rig for FakeRig {
    type B = FakeBackend;
    fn backend(&mut self) -> &mut FakeBackend {
        &mut self.backend
    }
    fn plan_exiting(&mut self, code: i32) -> SandboxPlan {
        self.plan(ProcScript::exits(TICK / 2, code))
    }
    fn plan_running(&mut self) -> SandboxPlan {
        self.plan(ProcScript::forever())
    }
    fn plan_ignoring_term(&mut self) -> SandboxPlan {
        self.plan(ProcScript::forever().ignoring_signals())
    }
    fn plan_forking(&mut self, children: u8) -> SandboxPlan {
        self.plan(ProcScript::forever().with_children(children))
    }
    fn pass_time(&mut self) {
        let t = self.backend.now() + TICK;
        self.backend.set_time(t);
    }
    fn live_pids(&mut self, task: &TaskId) -> Vec<u32> {
        self.backend.live_pids(task)
    }
    fn restart_plugin(&mut self) {
        self.backend.crash_plugin();
    }
}

pledge_backend_fake::conformance_tests!(|_name: &str| Some(FakeRig::new()));

#[test]
fn all_scenarios_pass_on_one_backend_in_sequence() {
    let mut rig = FakeRig::new();
    let results = conformance::all(&mut rig);
    assert_eq!(results.len(), 11);
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(_, r)| r.err().map(|e| e.to_string()))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(
        rig.backend.processes().count(),
        0,
        "scenarios leaked processes"
    );
}
