//! Two renderings of one [`SandboxPlan`] as a command line: our built-in launcher
//! (`nomad-pledge-driver sandbox ...`) and an external pledge.com (the original driver's line).

use crate::sandbox::SandboxPlan;

/// argv for `<self_exe> sandbox -p ... -v ... -- command args...`.
pub fn builtin_argv(plan: &SandboxPlan, self_exe: &str) -> Vec<String> {
    let _ = (plan, self_exe);
    todo!("core helper")
}

/// argv for `<pledge_executable> -p ... -v ... -- command args...` (seed-driver.md a8).
pub fn pledge_argv(plan: &SandboxPlan, pledge_exe: &str) -> Vec<String> {
    let _ = (plan, pledge_exe);
    todo!("core helper")
}
