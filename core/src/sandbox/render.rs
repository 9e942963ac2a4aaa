//! Two renderings of one [`SandboxPlan`] as a command line: our built-in launcher
//! (`nomad-pledge-driver sandbox ...`) and an external pledge.com (the original driver's line).
//!
//! Both are deterministic: promises in canonical order as one `-p` element, one `-v` per unveil
//! rule in path order, always with an explicit perm prefix (so a path containing `:` survives).
//! `-p` is always given, even when it equals pledge.com's default, so the tool's defaults never
//! decide what a task may do. Namespaces, the cgroup, the user switch (for pledge.com),
//! rlimits and ports are applied by the backend around the exec, not rendered here.

use crate::sandbox::SandboxPlan;

/// argv for `<self_exe> sandbox -p ... -v ... [-V] [-k] [-u USER] [-g GROUP] -- command args...`
/// (the launcher subcommand of issue 4, which takes pledge.com's flags).
pub fn builtin_argv(plan: &SandboxPlan, self_exe: &str) -> Vec<String> {
    let mut argv = vec![self_exe.to_string(), "sandbox".to_string()];
    sandbox_flags(plan, &mut argv);
    if let Some(u) = &plan.user {
        argv.push("-u".into());
        argv.push(u.clone());
    }
    if let Some(g) = &plan.group {
        argv.push("-g".into());
        argv.push(g.clone());
    }
    command_tail(plan, &mut argv);
    argv
}

/// argv for `<pledge_executable> -p ... -v ... -- command args...` (seed-driver.md a8). As in
/// the original driver the user switch happens before pledge.com runs (the original used
/// `unshare --setuid`), so no `-u`/`-g` is rendered.
pub fn pledge_argv(plan: &SandboxPlan, pledge_exe: &str) -> Vec<String> {
    let mut argv = vec![pledge_exe.to_string()];
    sandbox_flags(plan, &mut argv);
    command_tail(plan, &mut argv);
    argv
}

/// `-p <promises>`, then `-v <rule>`... or `-V`, then `-k`.
fn sandbox_flags(plan: &SandboxPlan, argv: &mut Vec<String>) {
    argv.push("-p".into());
    argv.push(plan.promises.to_string());
    if plan.unveil_enabled {
        for rule in &plan.unveil {
            argv.push("-v".into());
            argv.push(rule.to_string());
        }
    } else {
        argv.push("-V".into());
    }
    if plan.kill_on_violation {
        argv.push("-k".into());
    }
}

/// `-- command args...`
fn command_tail(plan: &SandboxPlan, argv: &mut Vec<String>) {
    argv.push("--".into());
    argv.push(plan.command.clone());
    argv.extend(plan.args.iter().cloned());
}
