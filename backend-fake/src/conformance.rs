//! Backend conformance scenarios, written once over any [`Backend`] (tvix's backend template,
//! turmoil's real/sim arms). `backend-fake/tests/` runs them against [`crate::FakeBackend`];
//! `backend-linux`'s privileged tests run the same functions against the real kernel. If both
//! pass, the fake predicts Linux for everything the sim relies on.
//!
//! A backend takes part through a [`Rig`]: it makes plans with the wanted behaviour, lets time
//! pass (virtual or real), lists a task's live processes as the OS sees them, and restarts the
//! "plugin". Scenarios return a [`ScenarioError`] naming what differed instead of panicking, so
//! a caller can report every failing scenario.

use pledge_core::{
    Backend, Classify, Effect, ExitResult, FailureClass, Observation, SandboxPlan, Signal, TaskId,
};

/// How many times a scenario calls [`Rig::pass_time`] waiting for something before it fails.
pub const MAX_ROUNDS: usize = 400;

/// What a backend must provide to run the scenarios.
pub trait Rig {
    /// The backend under test.
    type B: Backend;
    /// The backend.
    fn backend(&mut self) -> &mut Self::B;
    /// A plan for a new task (fresh id) whose program exits by itself with `code`, soon.
    fn plan_exiting(&mut self, code: i32) -> SandboxPlan;
    /// A plan for a new task that runs until signalled, with default signal handling.
    fn plan_running(&mut self) -> SandboxPlan;
    /// A plan for a new task that ignores SIGTERM (and every catchable signal).
    fn plan_ignoring_term(&mut self) -> SandboxPlan;
    /// A plan for a new task that runs until signalled and forks `children` processes that
    /// keep running, in the task's cgroup, as long as they are not killed.
    fn plan_forking(&mut self, children: u8) -> SandboxPlan;
    /// Lets a little time pass (the fake: its virtual clock; Linux: a short sleep).
    fn pass_time(&mut self);
    /// The task's live processes as the OS sees them, main process included.
    fn live_pids(&mut self, task: &TaskId) -> Vec<u32>;
    /// The plugin restarts: in-memory watches are lost, tasks and their records survive.
    fn restart_plugin(&mut self);
}

/// A scenario found the backend not behaving as specified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{scenario}: {what}")]
pub struct ScenarioError {
    /// Which scenario.
    pub scenario: &'static str,
    /// What differed.
    pub what: String,
}

type Outcome = Result<(), ScenarioError>;

fn fail(scenario: &'static str, what: impl Into<String>) -> ScenarioError {
    ScenarioError {
        scenario,
        what: what.into(),
    }
}

/// One `#[test]` per scenario, for a test file of any backend: `make` is called with the
/// scenario's name and returns the rig, or `None` to skip (a missing privilege, said why).
/// The list lives here once, beside [`all`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            launch_then_exit_is_observed,
            exit_is_observed_once,
            cleanup_twice_ok,
            kill_all_kills_children,
            sigterm_ends_default_process,
            ignored_sigterm_then_kill_all,
            reattach_running_keeps_identity,
            reattach_exited_reports_status,
            sample_lists_main_pid,
            unknown_task_is_gone,
            signal_after_exit_is_gone,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let Some(mut rig) = ($make)(stringify!($name)) else {
                return;
            };
            if let Err(e) = $crate::conformance::$name(&mut rig) {
                panic!("{e}");
            }
        }
    )*};
}

/// Every scenario by name, for a caller that runs them all and reports each.
pub fn all<R: Rig>(rig: &mut R) -> Vec<(&'static str, Outcome)> {
    vec![
        (
            "launch_then_exit_is_observed",
            launch_then_exit_is_observed(rig),
        ),
        ("exit_is_observed_once", exit_is_observed_once(rig)),
        ("cleanup_twice_ok", cleanup_twice_ok(rig)),
        ("kill_all_kills_children", kill_all_kills_children(rig)),
        (
            "sigterm_ends_default_process",
            sigterm_ends_default_process(rig),
        ),
        (
            "ignored_sigterm_then_kill_all",
            ignored_sigterm_then_kill_all(rig),
        ),
        (
            "reattach_running_keeps_identity",
            reattach_running_keeps_identity(rig),
        ),
        (
            "reattach_exited_reports_status",
            reattach_exited_reports_status(rig),
        ),
        ("sample_lists_main_pid", sample_lists_main_pid(rig)),
        ("unknown_task_is_gone", unknown_task_is_gone(rig)),
        ("signal_after_exit_is_gone", signal_after_exit_is_gone(rig)),
    ]
}

fn launch<R: Rig>(
    rig: &mut R,
    s: &'static str,
    plan: &SandboxPlan,
) -> Result<TaskId, ScenarioError> {
    let launched = rig
        .backend()
        .launch(plan)
        .map_err(|e| fail(s, format!("launch failed: {e}")))?;
    if launched.state.plan.task != plan.task {
        return Err(fail(s, "launched state names another task"));
    }
    if launched.state.plan != *plan {
        return Err(fail(
            s,
            "launched state does not carry the plan it was given",
        ));
    }
    Ok(plan.task.clone())
}

/// Passes time until the backend reports `task`'s exit; returns it and every other exit
/// observation of `task` seen in the same drains.
fn wait_exit<R: Rig>(
    rig: &mut R,
    s: &'static str,
    task: &TaskId,
) -> Result<Vec<ExitResult>, ScenarioError> {
    let mut seen = Vec::new();
    let mut exits = Vec::new();
    for _ in 0..MAX_ROUNDS {
        rig.backend().drain_observations(&mut seen);
        for o in seen.drain(..) {
            if let Observation::Exited {
                task: t, result, ..
            } = o
            {
                if &t == task {
                    exits.push(result);
                }
            }
        }
        if !exits.is_empty() {
            return Ok(exits);
        }
        rig.pass_time();
    }
    Err(fail(
        s,
        format!("no exit of {task} observed after {MAX_ROUNDS} rounds"),
    ))
}

/// Drains for a few rounds and returns the exits of `task` seen (expected: none).
fn exits_during<R: Rig>(rig: &mut R, task: &TaskId, rounds: usize) -> Vec<ExitResult> {
    let mut seen = Vec::new();
    let mut exits = Vec::new();
    for _ in 0..rounds {
        rig.pass_time();
        rig.backend().drain_observations(&mut seen);
        for o in seen.drain(..) {
            if let Observation::Exited {
                task: t, result, ..
            } = o
            {
                if &t == task {
                    exits.push(result);
                }
            }
        }
    }
    exits
}

fn cleanup<R: Rig>(rig: &mut R, s: &'static str, task: &TaskId) -> Outcome {
    rig.backend()
        .cleanup(task)
        .map_err(|e| fail(s, format!("cleanup failed: {e}")))?;
    let left = rig.live_pids(task);
    if !left.is_empty() {
        return Err(fail(s, format!("processes {left:?} survived cleanup")));
    }
    Ok(())
}

fn expect_code(s: &'static str, got: &ExitResult, code: i32, signal: i32) -> Outcome {
    if got.exit_code != code || got.signal != signal || got.oom_killed {
        return Err(fail(
            s,
            format!("exit {got:?}, expected code {code} signal {signal} without OOM"),
        ));
    }
    Ok(())
}

/// A program that exits with 7 is reported as exit code 7, signal 0.
pub fn launch_then_exit_is_observed<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "launch_then_exit_is_observed";
    let plan = rig.plan_exiting(7);
    let task = launch(rig, S, &plan)?;
    let exits = wait_exit(rig, S, &task)?;
    expect_code(S, &exits[0], 7, 0)?;
    cleanup(rig, S, &task)
}

/// One exit is one observation, however long one keeps draining.
pub fn exit_is_observed_once<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "exit_is_observed_once";
    let plan = rig.plan_exiting(0);
    let task = launch(rig, S, &plan)?;
    let mut exits = wait_exit(rig, S, &task)?;
    exits.extend(exits_during(rig, &task, 5));
    if exits.len() != 1 {
        return Err(fail(
            S,
            format!("{} exit observations: {exits:?}", exits.len()),
        ));
    }
    cleanup(rig, S, &task)
}

/// Cleanup is idempotent, also for an id that was never launched.
pub fn cleanup_twice_ok<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "cleanup_twice_ok";
    let plan = rig.plan_exiting(0);
    let task = launch(rig, S, &plan)?;
    wait_exit(rig, S, &task)?;
    cleanup(rig, S, &task)?;
    cleanup(rig, S, &task)?;
    let never = TaskId::parse(format!("{}-never-launched", task.as_str()))
        .map_err(|e| fail(S, e.to_string()))?;
    cleanup(rig, S, &never)
}

/// `kill_all` ends the main process and every child; the exit is reported as SIGKILL.
pub fn kill_all_kills_children<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "kill_all_kills_children";
    let plan = rig.plan_forking(2);
    let task = launch(rig, S, &plan)?;
    let mut before = rig.live_pids(&task);
    for _ in 0..MAX_ROUNDS {
        if before.len() >= 3 {
            break;
        }
        rig.pass_time();
        before = rig.live_pids(&task);
    }
    if before.len() < 3 {
        return Err(fail(
            S,
            format!("expected main + 2 children, saw pids {before:?}"),
        ));
    }
    rig.backend()
        .kill_all(&task)
        .map_err(|e| fail(S, format!("kill_all failed: {e}")))?;
    let exits = wait_exit(rig, S, &task)?;
    expect_code(S, &exits[0], 0, Signal::KILL.number())?;
    let mut after = rig.live_pids(&task);
    for _ in 0..MAX_ROUNDS {
        if after.is_empty() {
            break;
        }
        rig.pass_time();
        after = rig.live_pids(&task);
    }
    if !after.is_empty() {
        return Err(fail(S, format!("pids {after:?} survived kill_all")));
    }
    cleanup(rig, S, &task)
}

/// SIGTERM ends a process with default handling; the exit names the signal.
pub fn sigterm_ends_default_process<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "sigterm_ends_default_process";
    let plan = rig.plan_running();
    let task = launch(rig, S, &plan)?;
    rig.pass_time();
    rig.backend()
        .signal(&task, Signal::TERM)
        .map_err(|e| fail(S, format!("signal failed: {e}")))?;
    let exits = wait_exit(rig, S, &task)?;
    expect_code(S, &exits[0], 0, Signal::TERM.number())?;
    cleanup(rig, S, &task)
}

/// A process ignoring SIGTERM keeps running after it; `kill_all` still ends it.
pub fn ignored_sigterm_then_kill_all<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "ignored_sigterm_then_kill_all";
    let plan = rig.plan_ignoring_term();
    let task = launch(rig, S, &plan)?;
    rig.pass_time();
    rig.backend()
        .signal(&task, Signal::TERM)
        .map_err(|e| fail(S, format!("signal failed: {e}")))?;
    let early = exits_during(rig, &task, 3);
    if !early.is_empty() {
        return Err(fail(
            S,
            format!("exited although SIGTERM is ignored: {early:?}"),
        ));
    }
    if rig.live_pids(&task).is_empty() {
        return Err(fail(S, "no live process after an ignored SIGTERM"));
    }
    rig.backend()
        .kill_all(&task)
        .map_err(|e| fail(S, format!("kill_all failed: {e}")))?;
    let exits = wait_exit(rig, S, &task)?;
    expect_code(S, &exits[0], 0, Signal::KILL.number())?;
    cleanup(rig, S, &task)
}

/// After a plugin restart, reattach to a running task returns its original state (start time
/// included) and its later exit is observed again.
pub fn reattach_running_keeps_identity<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "reattach_running_keeps_identity";
    let plan = rig.plan_running();
    let launched = rig
        .backend()
        .launch(&plan)
        .map_err(|e| fail(S, format!("launch failed: {e}")))?;
    let task = plan.task.clone();
    rig.restart_plugin();
    match rig.backend().reattach(&launched.state) {
        Ok(Effect::Launched(l)) => {
            if l.state.started_at != launched.state.started_at {
                return Err(fail(S, "reattach changed the start time"));
            }
            if l.state.process != launched.state.process {
                return Err(fail(S, "reattach changed the process identity"));
            }
        }
        Ok(other) => {
            return Err(fail(
                S,
                format!("reattach to a running task gave {other:?}"),
            ))
        }
        Err(e) => return Err(fail(S, format!("reattach failed: {e}"))),
    }
    rig.backend()
        .kill_all(&task)
        .map_err(|e| fail(S, format!("kill_all failed: {e}")))?;
    let exits = wait_exit(rig, S, &task)?;
    expect_code(S, &exits[0], 0, Signal::KILL.number())?;
    cleanup(rig, S, &task)
}

/// A task that exited while the plugin was down is reattached as already exited, with the exit
/// code it really had.
pub fn reattach_exited_reports_status<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "reattach_exited_reports_status";
    let plan = rig.plan_exiting(3);
    let launched = rig
        .backend()
        .launch(&plan)
        .map_err(|e| fail(S, format!("launch failed: {e}")))?;
    let task = plan.task.clone();
    rig.restart_plugin();
    // Let it exit while nobody watches.
    for _ in 0..MAX_ROUNDS {
        if rig.live_pids(&task).is_empty() {
            break;
        }
        rig.pass_time();
    }
    let mut result = None;
    for _ in 0..MAX_ROUNDS {
        match rig.backend().reattach(&launched.state) {
            Ok(Effect::AlreadyExited {
                result: r, state, ..
            }) => {
                if state.started_at != launched.state.started_at {
                    return Err(fail(S, "reattach changed the start time"));
                }
                result = Some(r);
                break;
            }
            // The supervisor may not have recorded the status yet.
            Ok(Effect::Launched(_)) => rig.pass_time(),
            Ok(other) => return Err(fail(S, format!("reattach gave {other:?}"))),
            Err(e) => return Err(fail(S, format!("reattach failed: {e}"))),
        }
    }
    let Some(result) = result else {
        return Err(fail(S, "reattach never reported the exit"));
    };
    expect_code(S, &result, 3, 0)?;
    cleanup(rig, S, &task)
}

/// A sample of a running task lists its main pid.
pub fn sample_lists_main_pid<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "sample_lists_main_pid";
    let plan = rig.plan_running();
    let launched = rig
        .backend()
        .launch(&plan)
        .map_err(|e| fail(S, format!("launch failed: {e}")))?;
    let task = plan.task.clone();
    rig.pass_time();
    let usage = rig
        .backend()
        .sample(&task)
        .map_err(|e| fail(S, format!("sample failed: {e}")))?;
    if !usage.pids.contains(&launched.state.process.pid) {
        return Err(fail(
            S,
            format!(
                "pids {:?} lack the main pid {}",
                usage.pids, launched.state.process.pid
            ),
        ));
    }
    if usage.at.is_none() {
        return Err(fail(S, "sample has no timestamp"));
    }
    rig.backend()
        .kill_all(&task)
        .map_err(|e| fail(S, format!("kill_all failed: {e}")))?;
    wait_exit(rig, S, &task)?;
    cleanup(rig, S, &task)
}

fn expect_gone<T: std::fmt::Debug, E: Classify + std::fmt::Display>(
    s: &'static str,
    what: &str,
    r: Result<T, E>,
) -> Outcome {
    match r {
        Err(e) if e.class() == FailureClass::Gone => Ok(()),
        Err(e) => Err(fail(
            s,
            format!("{what}: class {:?} ({e}), expected Gone", e.class()),
        )),
        Ok(v) => Err(fail(
            s,
            format!("{what} succeeded ({v:?}), expected a Gone error"),
        )),
    }
}

/// Signal, kill_all and sample of an id the backend never launched fail with class Gone.
pub fn unknown_task_is_gone<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "unknown_task_is_gone";
    let plan = rig.plan_running();
    let task = TaskId::parse(format!("{}-unknown", plan.task.as_str()))
        .map_err(|e| fail(S, e.to_string()))?;
    expect_gone(S, "signal", rig.backend().signal(&task, Signal::TERM))?;
    expect_gone(S, "kill_all", rig.backend().kill_all(&task))?;
    expect_gone(S, "sample", rig.backend().sample(&task))
}

/// Signalling a task whose main process has exited fails with class Gone (ESRCH), and does
/// not disturb the recorded exit.
pub fn signal_after_exit_is_gone<R: Rig>(rig: &mut R) -> Outcome {
    const S: &str = "signal_after_exit_is_gone";
    let plan = rig.plan_exiting(5);
    let task = launch(rig, S, &plan)?;
    let exits = wait_exit(rig, S, &task)?;
    expect_code(S, &exits[0], 5, 0)?;
    expect_gone(
        S,
        "signal after exit",
        rig.backend().signal(&task, Signal::TERM),
    )?;
    let later = exits_during(rig, &task, 2);
    if !later.is_empty() {
        return Err(fail(
            S,
            format!("signal after exit produced exits {later:?}"),
        ));
    }
    cleanup(rig, S, &task)
}
