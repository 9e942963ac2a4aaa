//! [`Runner`]: applies [`Step`]s to a [`World`], keeps the shadow model (which slot holds which
//! task, which tasks the driver must track, every stop and forced destroy), and checks the
//! invariants after every step (TigerBeetle-style checkers). The fake backend is the oracle for
//! what the "kernel" really did: exit codes, live processes, the time of every kill.

use crate::step::{task_id, GenSignal, Step, SLOTS};
use crate::world::{stamp, Stuck, World};
use pledge_backend_fake::{CallOp, FakeBackend, FaultPlan};
use pledge_core::{
    DriverError, ExitResult, FailureClass, PhaseName, Reply, ReqId, Request, Signal, TaskId,
    TaskResources, TaskSpec, TaskView,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// An invariant failed (or the run got stuck).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("step {step} ({what_step}) at {at}: {what}\n--- trace (last 60 lines) ---\n{trace}")]
pub struct Violation {
    /// Index of the step after which the check failed.
    pub step: usize,
    /// The step, printed.
    pub what_step: String,
    /// Virtual time.
    pub at: String,
    /// What is wrong.
    pub what: String,
    /// The end of the trace.
    pub trace: String,
}

/// Numbers about a finished run, to show that runs reach deep states.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Steps applied.
    pub steps: usize,
    /// Requests submitted.
    pub requests: usize,
    /// Successful starts.
    pub started: usize,
    /// Kills at a stop deadline or forced destroy.
    pub kills: usize,
    /// Plugin restarts.
    pub restarts: usize,
    /// Wait replies with an exit result.
    pub exits_reported: usize,
    /// Tasks whose fake state (cgroup, state dir) was left behind after teardown (a violation;
    /// counted for the report).
    pub leaked_state: usize,
}

#[derive(Clone, Debug, Default)]
struct Slot {
    current: Option<TaskId>,
    fresh: u32,
}

#[derive(Clone, Debug)]
struct StopRec {
    req: ReqId,
    at: Duration,
    timeout: Duration,
    generation: u32,
}

#[derive(Clone, Debug, Default)]
struct TaskModel {
    /// The current driver must track it.
    tracked: bool,
    /// Accepted stops of a running task: each promises death by its deadline.
    stops: Vec<StopRec>,
    /// One deadline per stop episode (stops of a task that is not yet stopping start one; a
    /// stop while stopping only brings its deadline closer): each allows one KillAll, no
    /// earlier than its deadline.
    stop_deadlines: Vec<Duration>,
    force_destroys: Vec<Duration>,
    kills_seen: usize,
}

/// Applies steps and checks invariants.
pub struct Runner {
    /// The system under test.
    pub world: World,
    slots: Vec<Slot>,
    tasks: BTreeMap<TaskId, TaskModel>,
    kills_checked: usize,
    /// Requests not answered at the last check.
    open: BTreeSet<ReqId>,
    /// Requests up to (excluding) this id have been added to `open` once.
    requests_seen: ReqId,
    /// The first exit result a waiter of each task got.
    first_exit: BTreeMap<TaskId, (ReqId, ExitResult)>,
    step_no: usize,
    current_step: String,
    stats: RunStats,
}

type Check = Result<(), String>;

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// The argv every Exec step runs.
pub const EXEC_ARGV: [&str; 3] = ["/bin/sh", "-c", "echo hi"];

fn spec_for(task: &TaskId) -> TaskSpec {
    let alloc = task
        .as_str()
        .split('/')
        .next()
        .unwrap_or("alloc")
        .to_string();
    TaskSpec {
        id: task.clone(),
        name: "web".to_string(),
        alloc_id: alloc.clone(),
        job_name: "job".to_string(),
        task_group_name: "group".to_string(),
        alloc_dir: PathBuf::from("/var/lib/nomad/alloc").join(&alloc),
        env: [("NOMAD_TASK_NAME".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
        user: None,
        stdout_path: PathBuf::from("/dev/null"),
        stderr_path: PathBuf::from("/dev/null"),
        resources: TaskResources {
            cpu_shares: 100,
            memory_mb: 64,
            ..TaskResources::default()
        },
        netns_path: None,
    }
}

fn is_unknown(r: Option<&Result<Reply, DriverError>>, task: &TaskId) -> bool {
    matches!(r, Some(Err(DriverError::UnknownTask(t))) if t == task)
}

impl Runner {
    /// A configured world over a fake with `faults`.
    pub fn new(faults: FaultPlan) -> Result<Self, Violation> {
        let world = World::new(FakeBackend::new(faults)).map_err(|e| Violation {
            step: 0,
            what_step: "init".to_string(),
            at: "+0.000s".to_string(),
            what: format!("stuck while configuring: {e}"),
            trace: String::new(),
        })?;
        Ok(Self {
            world,
            slots: vec![Slot::default(); usize::from(SLOTS)],
            tasks: BTreeMap::new(),
            kills_checked: 0,
            open: BTreeSet::new(),
            requests_seen: ReqId(0),
            first_exit: BTreeMap::new(),
            step_no: 0,
            current_step: "init".to_string(),
            stats: RunStats::default(),
        })
    }

    /// Numbers about the run so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    fn violation(&self, what: String) -> Violation {
        Violation {
            step: self.step_no,
            what_step: self.current_step.clone(),
            at: stamp(self.world.now),
            what,
            trace: self.world.trace_tail(60),
        }
    }

    fn stuck(&self, e: Stuck) -> String {
        format!("liveness: {e}")
    }

    /// The task a slot names: its current task, or an id never started.
    fn slot_task(&self, slot: u8) -> TaskId {
        let s = &self.slots[usize::from(slot % SLOTS)];
        s.current.clone().unwrap_or_else(|| {
            TaskId::parse(format!("ghost-{}/never/started", slot % SLOTS)).unwrap_or_default()
        })
    }

    fn phase_is(&self, task: &TaskId, phase: PhaseName) -> bool {
        self.world.driver.task(task).map(|v| v.phase) == Some(phase)
    }

    fn tracked(&self, task: &TaskId) -> bool {
        self.tasks.get(task).is_some_and(|m| m.tracked)
    }

    fn model(&mut self, task: &TaskId) -> &mut TaskModel {
        self.tasks.entry(task.clone()).or_default()
    }

    /// Applies one step, then checks every invariant.
    pub fn apply(&mut self, step: &Step) -> Result<(), Violation> {
        self.step_no += 1;
        self.stats.steps += 1;
        self.current_step = format!("{step:?}");
        self.world.trace.push(format!(
            "{} step {} {step:?}",
            stamp(self.world.now),
            self.step_no
        ));
        let r = self.apply_inner(step).and_then(|()| self.check_all());
        r.map_err(|what| self.violation(what))
    }

    fn apply_inner(&mut self, step: &Step) -> Check {
        match *step {
            Step::Start {
                slot,
                cfg,
                script,
                reuse,
            } => {
                // Reuse only a tracked id (a duplicate StartTask): Nomad never restarts a
                // destroyed id, and the oracle keeps one run per id.
                let reuse = reuse
                    && self.slots[usize::from(slot % SLOTS)]
                        .current
                        .as_ref()
                        .is_some_and(|t| self.tracked(t));
                let s = &mut self.slots[usize::from(slot % SLOTS)];
                let task = match (&s.current, reuse) {
                    (Some(t), true) => t.clone(),
                    _ => {
                        let t = task_id(slot, s.fresh);
                        s.fresh += 1;
                        t
                    }
                };
                s.current = Some(task.clone());
                self.start(&task, cfg, script)
            }
            Step::Exit { slot, code } => {
                let t = self.slot_task(slot);
                self.world.backend.exit(&t, i32::from(code));
                self.world.settle().map_err(|e| self.stuck(e))
            }
            Step::OomKill { slot } => {
                let t = self.slot_task(slot);
                self.world.backend.oom_kill(&t);
                self.world.settle().map_err(|e| self.stuck(e))
            }
            Step::Fork { slot } => {
                let t = self.slot_task(slot);
                self.world.backend.fork_child(&t);
                Ok(())
            }
            Step::LoseSupervisor { slot } => {
                let t = self.slot_task(slot);
                self.world.backend.lose_supervisor(&t);
                self.world.settle().map_err(|e| self.stuck(e))
            }
            Step::SetSignals { slot, response } => {
                let t = self.slot_task(slot);
                self.world
                    .backend
                    .set_signal_response(&t, response.response());
                Ok(())
            }
            Step::Stop {
                slot,
                timeout_ms,
                signal,
            } => self.stop(slot, Duration::from_millis(u64::from(timeout_ms)), signal),
            Step::Destroy { slot, force } => self.destroy(slot, force),
            Step::Wait { slot, waiters } => self.wait(slot, waiters),
            Step::Inspect { slot } => self.inspect(slot),
            Step::Signal { slot, signal } => self.signal(slot, signal),
            Step::Stats { slot } => self.sample(slot),
            Step::Exec { slot } => self.exec(slot),
            Step::Advance { ms } => self
                .world
                .advance(Duration::from_millis(u64::from(ms)))
                .map_err(|e| self.stuck(e)),
            Step::RestartPlugin => self.restart(),
            Step::Reconfigure { valid } => self.reconfigure(valid),
            Step::Recover { slot } => self.recover_again(slot),
            Step::ArmFault { op, class } => {
                self.world.backend.fail_next(op, class);
                Ok(())
            }
        }
    }

    fn call(&mut self, body: Request) -> Result<ReqId, String> {
        self.stats.requests += 1;
        self.world.call(body).map_err(|e| self.stuck(e))
    }

    fn reply(&self, req: ReqId) -> Option<&Result<Reply, DriverError>> {
        self.world.reply_of(req)
    }

    fn calls_since(&self, from: usize) -> &[pledge_backend_fake::Call] {
        &self.world.backend.calls()[from..]
    }

    fn start(
        &mut self,
        task: &TaskId,
        cfg: crate::step::GenConfig,
        script: crate::step::GenScript,
    ) -> Check {
        let was_tracked = self.tracked(task);
        let before = self.world.backend.calls().len();
        if !was_tracked {
            self.world.backend.set_script(task, script.script());
        }
        let req = self.call(Request::Start {
            spec: Box::new(spec_for(task)),
            config: Box::new(cfg.raw()),
        })?;
        let reply = self.reply(req).cloned();
        let launches: Vec<Option<FailureClass>> = self
            .calls_since(before)
            .iter()
            .filter(|c| matches!(&c.op, CallOp::Launch(t) if t == task))
            .map(|c| c.failed)
            .collect();
        if was_tracked {
            ensure(
                matches!(&reply, Some(Err(DriverError::DuplicateTask(t))) if t == task),
                || format!("duplicate start of {task} answered {reply:?}"),
            )?;
            return ensure(launches.is_empty(), || {
                "a duplicate start reached the backend".to_string()
            });
        }
        if !cfg.is_valid() {
            ensure(
                matches!(&reply, Some(Err(DriverError::InvalidConfig(e))) if !e.0.is_empty()),
                || format!("invalid config {cfg:?} answered {reply:?}"),
            )?;
            return ensure(launches.is_empty(), || {
                format!("invalid config {cfg:?} was launched")
            });
        }
        match launches.as_slice() {
            [None] => {
                let state = self.world.backend.state_of(task).cloned();
                match &reply {
                    Some(Ok(Reply::Started(s)))
                        if Some(&**s) == state.as_ref()
                            && s.plan.state_dir.starts_with("/run/pledge-sim") => {}
                    other => {
                        return Err(format!(
                            "successful launch of {task} answered {other:?}, expected Started \
                             with the launched state"
                        ))
                    }
                }
                self.model(task).tracked = true;
                self.stats.started += 1;
                Ok(())
            }
            [Some(class)] => {
                let class = *class;
                ensure(
                    matches!(&reply, Some(Err(DriverError::Backend { class: c, .. })) if *c == class),
                    || format!("launch failing with {class:?} answered {reply:?}"),
                )?;
                ensure(self.world.backend.live_pids(task).is_empty(), || {
                    "a failed launch left processes".to_string()
                })
            }
            other => Err(format!(
                "valid start of {task} made {} launch calls: {other:?}; reply {reply:?}",
                other.len()
            )),
        }
    }

    fn stop(&mut self, slot: u8, timeout: Duration, signal: GenSignal) -> Check {
        let task = self.slot_task(slot);
        let tracked = self.tracked(&task);
        let running = self.world.backend.is_running(&task);
        let phase = self.world.driver.task(&task).map(|v| v.phase);
        let before = self.world.backend.calls().len();
        let at = self.world.now;
        let m = self.model(&task);
        match (phase, m.stop_deadlines.last_mut()) {
            (Some(PhaseName::Stopping), Some(last)) => *last = (*last).min(at + timeout),
            _ => m.stop_deadlines.push(at + timeout),
        }
        let req = self.call(Request::Stop {
            task: task.clone(),
            timeout,
            signal: signal.name().to_string(),
        })?;
        let reply = self.reply(req).cloned();
        if phase == Some(PhaseName::Destroying) {
            // A forced destroy is already killing it.
            return ensure(
                matches!(&reply, Some(Err(DriverError::WrongState { .. }))),
                || format!("stop while destroying answered {reply:?}"),
            );
        }
        let signals: Vec<(Signal, Option<FailureClass>)> = self
            .calls_since(before)
            .iter()
            .filter_map(|c| match &c.op {
                CallOp::Signal(t, s) if *t == task => Some((*s, c.failed)),
                _ => None,
            })
            .collect();
        if !tracked {
            return ensure(is_unknown(reply.as_ref(), &task), || {
                format!("stop of untracked {task} answered {reply:?}")
            });
        }
        if signal == GenSignal::Bogus {
            let invalid = matches!(&reply, Some(Err(DriverError::InvalidArgument { .. })));
            let stopped = matches!(&reply, Some(Ok(Reply::Stopped)));
            ensure(invalid || (!running && stopped), || {
                format!("stop with signal {:?} answered {reply:?}", signal.name())
            })?;
            return ensure(signals.is_empty(), || {
                "an invalid signal name reached the backend".to_string()
            });
        }
        if !running {
            // StopTask of an exited task succeeds at once.
            return ensure(matches!(&reply, Some(Ok(Reply::Stopped))), || {
                format!("stop of exited {task} answered {reply:?}")
            });
        }
        let expected = if signal == GenSignal::Default {
            Signal::TERM
        } else {
            Signal::parse(signal.name()).map_err(|e| e.to_string())?
        };
        let signal_failed = signals.iter().any(|(_, f)| f.is_some());
        match &reply {
            None | Some(Ok(Reply::Stopped)) => {}
            Some(Err(DriverError::Backend { .. })) if signal_failed => {}
            other => return Err(format!("stop of running {task} answered {other:?}")),
        }
        let m = self.tasks.get(&task);
        let first_stop = m.is_none_or(|m| {
            m.stops
                .iter()
                .all(|s| s.generation != self.world.generation)
        });
        if first_stop {
            ensure(signals.iter().any(|(s, _)| *s == expected), || {
                format!("stop of running {task} sent {signals:?}, expected {expected}")
            })?;
        }
        if !matches!(&reply, Some(Err(_))) {
            let generation = self.world.generation;
            self.model(&task).stops.push(StopRec {
                req,
                at,
                timeout,
                generation,
            });
        }
        Ok(())
    }

    fn destroy(&mut self, slot: u8, force: bool) -> Check {
        let task = self.slot_task(slot);
        let tracked = self.tracked(&task);
        let running = self.world.backend.is_running(&task);
        let view_before = self.world.driver.task(&task);
        let pids_before = self.world.backend.live_pids(&task);
        let before = self.world.backend.calls().len();
        if force {
            let now = self.world.now;
            self.model(&task).force_destroys.push(now);
        }
        let req = self.call(Request::Destroy {
            task: task.clone(),
            force,
        })?;
        let reply = self.reply(req).cloned();
        if !tracked {
            // Not found (after a cleanup of whatever the id left, which must then be gone);
            // or, for a forgotten task whose leak-prevention cleanup failed, the cleanup
            // retried: then it must have worked, or failed in the backend.
            let cleanups: Vec<Option<FailureClass>> = self
                .calls_since(before)
                .iter()
                .filter(|c| matches!(&c.op, CallOp::Cleanup { task: t, .. } if *t == task))
                .map(|c| c.failed)
                .collect();
            return match (&reply, cleanups.as_slice()) {
                (r, []) if is_unknown(r.as_ref(), &task) => Ok(()),
                (r, [None]) if is_unknown(r.as_ref(), &task) => {
                    ensure(!self.world.backend.knows(&task), || {
                        format!("the cleanup of untracked {task} left its state")
                    })
                }
                (Some(Ok(Reply::Destroyed)), [None]) => {
                    ensure(!self.world.backend.knows(&task), || {
                        format!("retried cleanup of {task} left its state")
                    })
                }
                (Some(Err(DriverError::Backend { .. })), [Some(_)]) => Ok(()),
                (r, c) => Err(format!(
                    "destroy of untracked {task} answered {r:?} after cleanups {c:?}"
                )),
            };
        }
        let destroying = view_before.as_ref().map(|v| v.phase) == Some(PhaseName::Destroying);
        if (running && !force) || destroying {
            // Destroy without force of a running task (or any destroy while a forced one waits
            // for its kill to land) is an error that changes nothing.
            ensure(
                matches!(&reply, Some(Err(DriverError::WrongState { task: t, .. })) if *t == task),
                || format!("destroy without force of running {task} answered {reply:?}"),
            )?;
            let view_after = self.world.driver.task(&task);
            ensure(view_after == view_before, || {
                format!("refused destroy changed the task: {view_before:?} -> {view_after:?}")
            })?;
            ensure(self.world.backend.calls().len() == before, || {
                format!(
                    "refused destroy reached the backend: {:?}",
                    self.calls_since(before)
                )
            })?;
            return ensure(self.world.backend.live_pids(&task) == pids_before, || {
                "refused destroy changed the task's processes".to_string()
            });
        }
        let failed = self.calls_since(before).iter().any(|c| c.failed.is_some());
        match &reply {
            Some(Ok(Reply::Destroyed)) => {
                self.model(&task).tracked = false;
                ensure(self.world.backend.live_pids(&task).is_empty(), || {
                    format!(
                        "processes {:?} outlived the destroy of {task}",
                        self.world.backend.live_pids(&task)
                    )
                })?;
                ensure(!self.world.backend.knows(&task), || {
                    format!("destroy of {task} left its cgroup/state behind (no cleanup)")
                })
            }
            Some(Err(DriverError::Backend { .. })) if failed => Ok(()),
            // The kill is delivered and lands later; the reply follows the exit.
            None if running && self.world.backend.is_dying(&task) => Ok(()),
            other => Err(format!(
                "destroy (force={force}) of {task} (running={running}) answered {other:?}"
            )),
        }
    }

    fn wait(&mut self, slot: u8, waiters: u8) -> Check {
        let task = self.slot_task(slot);
        let reqs: Vec<ReqId> = (0..waiters.max(1))
            .map(|_| {
                self.stats.requests += 1;
                self.world.submit(Request::Wait(task.clone()))
            })
            .collect();
        self.world.settle().map_err(|e| self.stuck(e))?;
        if !self.tracked(&task) {
            for r in reqs {
                let reply = self.reply(r);
                ensure(is_unknown(reply, &task), || {
                    format!("wait on untracked {task} answered {reply:?}")
                })?;
            }
        }
        Ok(())
    }

    fn inspect(&mut self, slot: u8) -> Check {
        let task = self.slot_task(slot);
        let req = self.call(Request::Inspect(task.clone()))?;
        let reply = self.reply(req).cloned();
        if !self.tracked(&task) {
            return ensure(is_unknown(reply.as_ref(), &task), || {
                format!("inspect of untracked {task} answered {reply:?}")
            });
        }
        let view = self.world.driver.task(&task);
        match (&reply, view) {
            (Some(Ok(Reply::Inspected(v))), Some(view)) if **v == view => Ok(()),
            (r, v) => Err(format!("inspect answered {r:?}, driver.task says {v:?}")),
        }
    }

    fn signal(&mut self, slot: u8, signal: GenSignal) -> Check {
        let task = self.slot_task(slot);
        let running = self.world.backend.is_running(&task);
        let destroying = self.phase_is(&task, PhaseName::Destroying);
        let before = self.world.backend.calls().len();
        let req = self.call(Request::Signal {
            task: task.clone(),
            signal: signal.name().to_string(),
        })?;
        let reply = self.reply(req).cloned();
        let sent: Vec<(Signal, Option<FailureClass>)> = self
            .calls_since(before)
            .iter()
            .filter_map(|c| match &c.op {
                CallOp::Signal(t, s) if *t == task => Some((*s, c.failed)),
                _ => None,
            })
            .collect();
        if !self.tracked(&task) {
            return ensure(is_unknown(reply.as_ref(), &task), || {
                format!("signal of untracked {task} answered {reply:?}")
            });
        }
        if destroying {
            return ensure(
                matches!(&reply, Some(Err(DriverError::WrongState { .. }))),
                || format!("signal while destroying answered {reply:?}"),
            );
        }
        if signal == GenSignal::Default {
            // Nomad always names the signal; an empty one may be refused or defaulted.
            return ensure(reply.is_some(), || "signal got no reply".to_string());
        }
        if signal == GenSignal::Bogus {
            // Refused: for the name, or (an exited task) for the phase; never sent.
            let invalid = matches!(&reply, Some(Err(DriverError::InvalidArgument { .. })));
            ensure(
                invalid || (!running && matches!(&reply, Some(Err(_)))),
                || format!("signal {:?} answered {reply:?}", signal.name()),
            )?;
            return ensure(sent.is_empty(), || {
                "an invalid signal name reached the backend".to_string()
            });
        }
        if !running {
            return ensure(reply.is_some(), || "signal got no reply".to_string());
        }
        let expected = Signal::parse(signal.name()).map_err(|e| e.to_string())?;
        match (&reply, sent.as_slice()) {
            (Some(Ok(Reply::Signalled)), [(s, None)]) if *s == expected => Ok(()),
            (Some(Err(DriverError::Backend { class, .. })), [(s, Some(c))])
                if *s == expected && c == class =>
            {
                Ok(())
            }
            (r, s) => Err(format!(
                "signal {expected} of running {task} answered {r:?}; backend got {s:?}"
            )),
        }
    }

    fn sample(&mut self, slot: u8) -> Check {
        let task = self.slot_task(slot);
        let running = self.world.backend.is_running(&task);
        let destroying = self.phase_is(&task, PhaseName::Destroying);
        let before = self.world.backend.calls().len();
        let req = self.call(Request::Stats(task.clone()))?;
        let reply = self.reply(req).cloned();
        if !self.tracked(&task) {
            return ensure(is_unknown(reply.as_ref(), &task), || {
                format!("stats of untracked {task} answered {reply:?}")
            });
        }
        if destroying {
            return ensure(
                matches!(&reply, Some(Err(DriverError::WrongState { .. }))),
                || format!("stats while destroying answered {reply:?}"),
            );
        }
        let failed = self.calls_since(before).iter().any(|c| c.failed.is_some());
        if !running {
            return ensure(reply.is_some(), || "stats got no reply".to_string());
        }
        match &reply {
            Some(Ok(Reply::Stats(u))) => {
                ensure(u.pids == self.world.backend.live_pids(&task), || {
                    format!(
                        "stats pids {:?}, the task has {:?}",
                        u.pids,
                        self.world.backend.live_pids(&task)
                    )
                })
            }
            Some(Err(DriverError::Backend { .. })) if failed => Ok(()),
            other => Err(format!("stats of running {task} answered {other:?}")),
        }
    }

    fn exec(&mut self, slot: u8) -> Check {
        let task = self.slot_task(slot);
        let running = self.world.backend.is_running(&task);
        let phase = self.world.driver.task(&task).map(|v| v.phase);
        let req = self.call(Request::Exec {
            task: task.clone(),
            argv: EXEC_ARGV.iter().map(|s| (*s).to_string()).collect(),
            tty: false,
        })?;
        let reply = self.reply(req).cloned();
        if !self.tracked(&task) {
            return ensure(is_unknown(reply.as_ref(), &task), || {
                format!("exec in untracked {task} answered {reply:?}")
            });
        }
        match &reply {
            Some(Ok(Reply::Exec(p))) => {
                ensure(running, || {
                    format!("exec into {task} allowed after its main process exited")
                })?;
                ensure(
                    Some(p.target_pid) == self.world.backend.main_pid(&task),
                    || {
                        format!(
                            "exec targets pid {}, main is {:?}",
                            p.target_pid,
                            self.world.backend.main_pid(&task)
                        )
                    },
                )?;
                ensure(
                    p.plan.command == EXEC_ARGV[0]
                        && p.plan.args == EXEC_ARGV[1..].to_vec()
                        && p.plan.task == task,
                    || format!("exec plan runs {:?} {:?}", p.plan.command, p.plan.args),
                )
            }
            // Refusing exec into a task being stopped is fine too.
            Some(Err(_)) if !running || phase != Some(PhaseName::Running) => Ok(()),
            other => Err(format!("exec in running {task} answered {other:?}")),
        }
    }

    fn reconfigure(&mut self, valid: bool) -> Check {
        let mut cfg = self.world.plugin_config.clone();
        if !valid {
            cfg.state_dir = Some("relative/state".to_string());
        }
        let before = self.world.backend.calls().len();
        let config_before = self.world.driver.plugin_config().cloned();
        let req = self.call(Request::SetConfig(Box::new(cfg)))?;
        let reply = self.reply(req).cloned();
        ensure(self.world.backend.calls().len() == before, || {
            "SetConfig reached the backend".to_string()
        })?;
        if valid {
            let now = self.world.driver.plugin_config().cloned();
            ensure(
                matches!(&reply, Some(Ok(Reply::Configured(c))) if Some(&**c) == now.as_ref()),
                || format!("valid SetConfig answered {reply:?}; the driver holds {now:?}"),
            )
        } else {
            ensure(
                matches!(&reply, Some(Err(DriverError::InvalidConfig(e)))
                    if e.0.iter().any(|f| f.field.contains("state_dir"))),
                || format!("invalid SetConfig answered {reply:?}"),
            )?;
            // The last valid config still applies.
            let now = self.world.driver.plugin_config().cloned();
            ensure(now == config_before, || {
                format!("an invalid SetConfig changed the config: {config_before:?} -> {now:?}")
            })
        }
    }

    /// RecoverTask of a task the driver already tracks: `Recovered` at once, nothing changes.
    fn recover_again(&mut self, slot: u8) -> Check {
        let task = self.slot_task(slot);
        let Some(state) = self.world.handles.get(&task).cloned() else {
            return Ok(());
        };
        let tracked = self.tracked(&task);
        let view_before = self.world.driver.task(&task);
        let before = self.world.backend.calls().len();
        let req = self.call(Request::Recover {
            task: task.clone(),
            state: Box::new(state),
        })?;
        let reply = self.reply(req).cloned();
        if !tracked {
            // A handle Nomad still holds for a task this plugin lost track of (a failed
            // cleanup on destroy keeps it tracked, so this is rare): a fresh re-attach.
            if matches!(&reply, Some(Ok(Reply::Recovered))) {
                self.model(&task).tracked = true;
            }
            return Ok(());
        }
        ensure(matches!(&reply, Some(Ok(Reply::Recovered))), || {
            format!("recover of tracked {task} answered {reply:?}")
        })?;
        ensure(self.world.backend.calls().len() == before, || {
            "recover of a tracked task reached the backend".to_string()
        })?;
        let view_after = self.world.driver.task(&task);
        ensure(view_after == view_before, || {
            format!("recover of tracked task changed it: {view_before:?} -> {view_after:?}")
        })
    }

    fn restart(&mut self) -> Check {
        self.stats.restarts += 1;
        for m in self.tasks.values_mut() {
            m.tracked = false;
        }
        let recovered = self.world.restart_plugin().map_err(|e| self.stuck(e))?;
        for (task, req) in recovered {
            let reply = self.reply(req).cloned();
            let running = self.world.backend.is_running(&task);
            let exited = self.world.backend.recorded_exit(&task).is_some()
                && self.world.backend.knows(&task);
            match &reply {
                Some(Ok(Reply::Recovered)) => self.model(&task).tracked = true,
                Some(Err(_)) if !running && !exited => {
                    // Nomad's restoreHandle: an unrecoverable task is destroyed with force
                    // (ErrTaskNotFound ignored) and its handle dropped.
                    self.world.handles.remove(&task);
                    let now = self.world.now;
                    self.model(&task).force_destroys.push(now);
                    self.call(Request::Destroy {
                        task: task.clone(),
                        force: true,
                    })?;
                }
                other => {
                    return Err(format!(
                        "recover of {task} (running={running}, exited={exited}) answered {other:?}"
                    ))
                }
            }
        }
        Ok(())
    }

    // ---- invariants after every step ----------------------------------------------------------

    fn check_all(&mut self) -> Check {
        // The loop completes every command it runs: nothing may be left in flight.
        let inflight = self.world.driver.pending_ops();
        ensure(inflight == 0, || {
            format!("{inflight} commands still in flight after settle")
        })?;
        self.check_replies()?;
        self.check_tracking_and_phases()?;
        self.check_orphans()?;
        self.check_kills()?;
        self.check_stop_deadlines()
    }

    /// Every request gets exactly one reply; only Wait and Stop of a running task may be
    /// pending; a Stop is answered Stopped only once the process has exited; every waiter of a
    /// task gets the same exit result, and it is the one the process really had (across plugin
    /// restarts too). Incremental: looks at new requests and new replies only.
    fn check_replies(&mut self) -> Check {
        let w = &mut self.world;
        if let Some(req) = w.double_replies.first() {
            let n = w.replies.get(req).map_or(0, Vec::len);
            let body = w
                .requests
                .get(req)
                .map(|s| crate::world::summarize_request(&s.body));
            return Err(format!("{req} ({body:?}) got {n} replies"));
        }
        let fresh = std::mem::take(&mut w.fresh);
        let mut destroyed = Vec::new();
        let w = &self.world;
        for req in fresh {
            let Some(s) = w.requests.get(&req) else {
                return Err(format!("reply to {req}, which was never submitted"));
            };
            match (&s.body, w.reply_of(req)) {
                (Request::Destroy { task, .. }, Some(Ok(Reply::Destroyed))) => {
                    destroyed.push(task.clone());
                    ensure(w.backend.live_pids(task).is_empty(), || {
                        format!(
                            "processes {:?} outlived the destroy of {task}",
                            w.backend.live_pids(task)
                        )
                    })?;
                    ensure(!w.backend.knows(task), || {
                        format!("destroy of {task} left its cgroup/state behind (no cleanup)")
                    })?;
                }
                (Request::Stop { task, .. }, Some(Ok(Reply::Stopped))) => {
                    ensure(!w.backend.is_running(task), || {
                        format!("{req}: Stopped although {task} still runs")
                    })?;
                }
                (Request::Wait(t), Some(Ok(reply))) => {
                    let Reply::Exited(r) = reply else {
                        return Err(format!("{req}: wait answered {reply:?}"));
                    };
                    self.stats.exits_reported += 1;
                    if let Some((first_req, prev)) = self.first_exit.get(t) {
                        ensure(prev == r, || {
                            format!(
                                "waiters of {t} got different results: {first_req} {prev:?} vs \
                                 {req} {r:?}"
                            )
                        })?;
                    } else {
                        self.first_exit.insert(t.clone(), (req, r.clone()));
                    }
                    match w.backend.recorded_exit(t) {
                        Some((real, _)) => ensure(real == r, || {
                            format!("wait on {t} reported {r:?}, the process really ended {real:?}")
                        })?,
                        None => ensure(r.err.is_some(), || {
                            format!(
                                "wait on {t} reported a clean {r:?} but no exit was ever recorded"
                            )
                        })?,
                    }
                }
                _ => {}
            }
        }
        for t in destroyed {
            self.model(&t).tracked = false;
        }
        let w = &self.world;
        let newest = w.requests.keys().next_back().copied();
        let from = self.requests_seen;
        self.open.extend(w.requests.range(from..).map(|(r, _)| *r));
        if let Some(n) = newest {
            self.requests_seen = ReqId(n.0 + 1);
        }
        let open = std::mem::take(&mut self.open);
        for req in open {
            if w.replies.contains_key(&req) || w.abandoned.contains(&req) {
                continue;
            }
            let Some(s) = w.requests.get(&req) else {
                continue;
            };
            match &s.body {
                // A forced destroy waits for its kill to land.
                Request::Wait(t)
                | Request::Stop { task: t, .. }
                | Request::Destroy {
                    task: t,
                    force: true,
                } => {
                    ensure(w.backend.is_running(t), || {
                        format!(
                            "{req} ({}) unanswered although {t}'s process is gone",
                            crate::world::summarize_request(&s.body)
                        )
                    })?;
                }
                other => {
                    return Err(format!(
                        "{req} ({}) got no reply",
                        crate::world::summarize_request(other)
                    ))
                }
            }
            self.open.insert(req);
        }
        Ok(())
    }

    /// The driver tracks exactly the tasks the model says (after restart + recover too), and
    /// what it says about each agrees with the fake kernel.
    fn check_tracking_and_phases(&mut self) -> Check {
        let w = &self.world;
        let listed: Vec<&TaskId> = w.driver.task_ids().collect();
        let expected: Vec<&TaskId> = self
            .tasks
            .iter()
            .filter(|(_, m)| m.tracked)
            .map(|(t, _)| t)
            .collect();
        ensure(listed == expected, || {
            format!("driver lists tasks {listed:?}, the model has {expected:?}")
        })?;
        for (task, m) in &self.tasks {
            let view: Option<TaskView> = w.driver.task(task);
            ensure(view.is_some() == m.tracked, || {
                format!(
                    "driver {} {task}, the model says it {}",
                    if view.is_some() {
                        "tracks"
                    } else {
                        "does not track"
                    },
                    if m.tracked { "must" } else { "must not" }
                )
            })?;
            let Some(view) = view else { continue };
            if w.backend.is_running(task) {
                let destroying = view.phase == PhaseName::Destroying && w.backend.is_dying(task);
                ensure(
                    matches!(view.phase, PhaseName::Running | PhaseName::Stopping) || destroying,
                    || format!("{task} runs but the driver says {:?}", view.phase),
                )?;
                ensure(view.result.is_none(), || {
                    format!(
                        "{task} runs but the driver reports a result {:?}",
                        view.result
                    )
                })?;
            } else if let Some((real, _)) = w.backend.recorded_exit(task) {
                ensure(view.phase == PhaseName::Exited, || {
                    format!("{task} exited but the driver says {:?}", view.phase)
                })?;
                ensure(view.result.as_ref() == Some(real), || {
                    format!("{task} exited {real:?}, driver reports {:?}", view.result)
                })?;
            }
            if let Some(state) = w.backend.state_of(task) {
                // Driver attributes: the main pid, and the backend's sandbox report.
                let pid = state.process.pid.to_string();
                ensure(view.attributes.get("pid") == Some(&pid), || {
                    format!("{task}: attributes {:?} lack pid {pid}", view.attributes)
                })?;
                // (Every running task came through a launch or re-attach that reported it.)
                ensure(
                    !w.backend.is_running(task)
                        || view
                            .attributes
                            .get("sandbox")
                            .is_some_and(|s| s.starts_with("fake backend: ")),
                    || {
                        format!(
                            "{task}: attributes {:?} lack the sandbox report",
                            view.attributes
                        )
                    },
                )?;
                ensure(view.started_at == Some(state.started_at), || {
                    format!(
                        "{task} started at {:?}, driver reports {:?}",
                        state.started_at, view.started_at
                    )
                })?;
            }
        }
        Ok(())
    }

    /// No fake process outlives its task: every live process belongs to a tracked task.
    fn check_orphans(&mut self) -> Check {
        for (pid, task, role) in self.world.backend.processes() {
            ensure(self.world.driver.task(task).is_some(), || {
                format!("{role:?} pid {pid} of {task} is alive but the driver does not track it")
            })?;
        }
        Ok(())
    }

    /// Every KillAll comes no earlier than a stop's deadline (or with a forced destroy), and
    /// there is at most one per stop or forced destroy.
    fn check_kills(&mut self) -> Check {
        let calls = self.world.backend.calls();
        let new: Vec<(Duration, TaskId)> = calls[self.kills_checked..]
            .iter()
            .filter_map(|c| match &c.op {
                CallOp::KillAll(t) => Some((c.at, t.clone())),
                _ => None,
            })
            .collect();
        self.kills_checked = calls.len();
        for (at, task) in new {
            self.stats.kills += 1;
            let m = self.model(&task);
            m.kills_seen += 1;
            let stops_due = m.stop_deadlines.iter().filter(|d| **d <= at).count();
            let forced = m.force_destroys.iter().filter(|t| **t <= at).count();
            let (kills, stops, first_stop) = (
                m.kills_seen,
                m.stops.len(),
                m.stops.iter().map(|s| (s.req, s.at, s.timeout)).next(),
            );
            ensure(kills <= stops_due + forced, || {
                format!(
                    "KillAll #{kills} of {task} at {}: only {stops_due} stop deadline(s) passed \
                     (of {stops} stops, first {first_stop:?}) and {forced} forced destroy(s)",
                    stamp(at)
                )
            })?;
        }
        Ok(())
    }

    /// A stopped task is dead by its deadline: the kill comes no later than stop + timeout.
    fn check_stop_deadlines(&mut self) -> Check {
        let w = &self.world;
        for (task, m) in &self.tasks {
            for s in &m.stops {
                if s.generation != w.generation || w.abandoned.contains(&s.req) {
                    continue;
                }
                if s.at + s.timeout <= w.now {
                    // Dead, or the kill delivered and landing (kills are asynchronous).
                    ensure(
                        !w.backend.is_running(task) || w.backend.is_dying(task),
                        || {
                            format!(
                                "{task} still runs at {}, past the deadline {} of stop {}",
                                stamp(w.now),
                                stamp(s.at + s.timeout),
                                s.req
                            )
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Ends the run as an operator would: destroy every tracked task with force (retrying
    /// failed cleanups), then require that no process and no task state is left.
    pub fn teardown(&mut self) -> Result<RunStats, Violation> {
        self.current_step = "teardown".to_string();
        let r = self.teardown_inner();
        r.map_err(|what| self.violation(what))?;
        Ok(self.stats.clone())
    }

    fn teardown_inner(&mut self) -> Check {
        self.world.backend.disarm();
        // Every task the driver tracks, then every id the fake still holds state for (a lost
        // task whose cleanup failed): DestroyTask with force, retried like Nomad's GC would.
        let mut ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, m)| m.tracked)
            .map(|(t, _)| t.clone())
            .collect();
        ids.extend(
            self.world
                .backend
                .live()
                .filter(|t| !self.tracked(t))
                .cloned()
                .collect::<Vec<_>>(),
        );
        for task in ids {
            for _attempt in 0..4 {
                let now = self.world.now;
                self.model(&task).force_destroys.push(now);
                let req = self.call(Request::Destroy {
                    task: task.clone(),
                    force: true,
                })?;
                if self.reply(req).is_none() {
                    // A delayed kill: let it land.
                    self.world
                        .advance(Duration::from_secs(1))
                        .map_err(|e| self.stuck(e))?;
                }
                match self.reply(req) {
                    Some(Ok(Reply::Destroyed)) => {
                        self.model(&task).tracked = false;
                        break;
                    }
                    Some(Err(DriverError::UnknownTask(_))) if !self.tracked(&task) => break,
                    // Busy (an earlier destroy is landing) or a failed cleanup: retry later.
                    _ => self
                        .world
                        .advance(Duration::from_secs(1))
                        .map_err(|e| self.stuck(e))?,
                }
            }
        }
        self.check_all()?;
        let left: Vec<String> = self
            .world
            .backend
            .processes()
            .map(|(pid, t, r)| format!("{r:?} {pid} of {t}"))
            .collect();
        ensure(left.is_empty(), || {
            format!("processes left after teardown: {left:?}")
        })?;
        let state: Vec<&TaskId> = self.world.backend.live().collect();
        self.stats.leaked_state = state.len();
        ensure(state.is_empty(), || {
            format!("cgroup/state of {state:?} left after destroying everything")
        })
    }
}

/// Runs `steps` over a fresh world with `faults`, checking after every step, then tears down.
pub fn run(faults: FaultPlan, steps: &[Step]) -> Result<(RunStats, u64), Violation> {
    let mut r = Runner::new(faults)?;
    for s in steps {
        r.apply(s)?;
    }
    let stats = r.teardown()?;
    Ok((stats, r.world.fingerprint()))
}
