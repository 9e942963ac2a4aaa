//! [`Driver`]: the task table, timers and the transition rules.
//!
//! Rules (issue 2 item 5, architecture §5.2), each covered by a test in `tests`:
//! - Every request gets exactly one reply; illegal requests get an error reply and change
//!   nothing. Nothing here panics on any input sequence; a completion for an unknown op is
//!   ignored, an observation for an unknown task is dropped.
//! - Requests other than SetConfig before the first valid SetConfig → `NotConfigured`.
//!   SetConfig may come any number of times; the last valid one applies to new tasks.
//! - Start: duplicate id → `DuplicateTask`; bad config → `InvalidConfig` (every field);
//!   launch failure → the backend error (its class tells grpc whether it is recoverable),
//!   the task is forgotten and a `Cleanup` is issued so nothing leaks.
//! - Stop: exited → succeeds at once. Running → the signal (empty = SIGTERM, unknown →
//!   `InvalidArgument`), a deadline at now + timeout, `KillAll` exactly once when it passes;
//!   the reply comes once the task has exited.
//! - Wait: any number, concurrently, before or after exit; all get the same result.
//! - Destroy: exited → `Cleanup`, then `Destroyed` and the task is forgotten; live without
//!   force → `WrongState`, nothing changes; live with force → `KillAll`, exit, `Cleanup`,
//!   `Destroyed`.
//! - Recover: tracked → `Recovered` at once; else `Reattach`; the original start time is kept;
//!   a failed re-attach → error, not tracked, and `KillAll` + `Cleanup` so nothing runs
//!   unmanaged (class `Gone` = the task was lost). If that cleanup (or the one after a failed
//!   launch) fails, a later Destroy of the forgotten id retries it (Nomad sends DestroyTask
//!   with force after a failed RecoverTask), so its cgroup and state dir do not leak. A
//!   Destroy of any untracked id issues that `Cleanup` too (the failure may predate a plugin
//!   restart, which forgets it) and answers "not found" once it succeeded.
//! - Stats of an exited task → `WrongState` with phase `Exited` (Nomad ends the stream).
//!   Exec and Signal need a live task.
//! - A lost supervisor is reported by the backend as `Observation::Exited` with `err` set.

use super::task::{Phase, Task};
use super::{Command, Input, Output, PhaseName, Reply, Request, TaskEvent, TaskView};
use crate::backend::{
    DriverState, Effect, ExitResult, FailureClass, HostFacts, Observation, Outcome,
};
use crate::config::{PluginConfig, RawPluginConfig, RawTaskConfig};
use crate::error::DriverError;
use crate::ids::{OpId, ReqId, TaskId};
use crate::sandbox::plan::{plan_sandbox, ExecPlan, TaskSpec};
use crate::sandbox::Signal;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

/// What an in-flight command was for.
#[derive(Clone, Debug)]
enum Pending {
    Launch {
        task: TaskId,
    },
    Reattach {
        task: TaskId,
        started_at: SystemTime,
    },
    /// A stop signal (no reply of its own) or a SignalTask (`req` gets the reply).
    Signal {
        task: TaskId,
        signal: Signal,
        req: Option<ReqId>,
    },
    /// Stop deadline or forced destroy.
    KillAll {
        task: TaskId,
        destroy: bool,
    },
    Sample {
        req: ReqId,
    },
    /// Destroy (`req` set, task still tracked) or leak prevention (`req` None, task forgotten).
    Cleanup {
        task: TaskId,
        req: Option<ReqId>,
    },
    /// DestroyTask retrying the failed leak-prevention cleanup of a forgotten task.
    Purge {
        task: TaskId,
        req: ReqId,
    },
}

/// The lifecycle state machine for all tasks of one plugin instance.
#[derive(Debug)]
pub struct Driver {
    host: HostFacts,
    plugin: Option<PluginConfig>,
    tasks: BTreeMap<TaskId, Task>,
    /// Forgotten tasks whose leak-prevention cleanup is still in flight (a Start with the same
    /// id must not race it).
    cleaning: BTreeMap<TaskId, OpId>,
    /// Forgotten tasks whose leak-prevention cleanup failed, so their cgroup or state dir may
    /// remain. A DestroyTask naming one (Nomad sends one with force after a failed
    /// RecoverTask) retries the cleanup instead of answering "not found".
    unclean: BTreeSet<TaskId>,
    ops: BTreeMap<OpId, Pending>,
    /// Stop deadlines.
    timers: BTreeSet<(Instant, TaskId)>,
    outbox: VecDeque<Output>,
    next_op: u64,
    last_now: Option<Instant>,
}

impl Driver {
    /// A driver for a host with the given facts. It refuses task requests until SetConfig.
    pub fn new(host: HostFacts) -> Self {
        Self {
            host,
            plugin: None,
            tasks: BTreeMap::new(),
            cleaning: BTreeMap::new(),
            unclean: BTreeSet::new(),
            ops: BTreeMap::new(),
            timers: BTreeSet::new(),
            outbox: VecDeque::new(),
            next_op: 1,
            last_now: None,
        }
    }

    /// Fires timers due at or before `now`, then applies `input`. A `now` earlier than a
    /// previous one is treated as the previous one (time never runs backwards here).
    pub fn handle(&mut self, now: Instant, input: Input) {
        let now = match self.last_now {
            Some(last) if now < last => last,
            _ => now,
        };
        self.last_now = Some(now);
        self.fire_timers(now);
        match input {
            Input::Request { req, body } => self.handle_request(now, req, body),
            Input::Completed { op, outcome } => self.handle_completed(now, op, outcome),
            Input::Observed(o) => self.handle_observed(o),
            Input::Tick => {}
        }
        // A zero stop timeout is due at once.
        self.fire_timers(now);
    }

    /// The next output, if any. Drain until `None` after every [`Driver::handle`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.pop_front()
    }

    /// The earliest pending deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// A snapshot of one task, for InspectTask and the sim's invariants.
    pub fn task(&self, id: &TaskId) -> Option<TaskView> {
        self.tasks.get(id).map(view)
    }

    /// Ids of every tracked task, in order.
    pub fn task_ids(&self) -> impl Iterator<Item = &TaskId> + '_ {
        self.tasks.keys()
    }

    /// The validated plugin config, once SetConfig succeeded.
    pub fn plugin_config(&self) -> Option<&PluginConfig> {
        self.plugin.as_ref()
    }

    /// Commands issued and not yet completed (for the sim's liveness checks).
    pub fn pending_ops(&self) -> usize {
        self.ops.len()
    }

    /// Test helper: [`Driver::handle`] then drain.
    pub fn step(&mut self, now: Instant, input: Input) -> Vec<Output> {
        self.handle(now, input);
        std::iter::from_fn(|| self.poll_output()).collect()
    }

    // ---- outputs -------------------------------------------------------------------------

    fn reply(&mut self, req: ReqId, reply: Result<Reply, DriverError>) {
        self.outbox.push_back(Output::Reply { req, reply });
    }

    fn command(&mut self, cmd: Command, pending: Pending) -> OpId {
        let op = OpId(self.next_op);
        self.next_op = self.next_op.wrapping_add(1);
        self.ops.insert(op, pending);
        self.outbox.push_back(Output::Command { op, cmd });
        op
    }

    fn event(&mut self, task: &TaskId, message: String, annotations: &[(&str, String)]) {
        let (alloc_id, task_name) = match self.tasks.get(task) {
            Some(t) => (t.alloc_id.clone(), t.name.clone()),
            None => return,
        };
        self.outbox.push_back(Output::Event(TaskEvent {
            task: task.clone(),
            alloc_id,
            task_name,
            message,
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        }));
    }

    // ---- requests ------------------------------------------------------------------------

    fn handle_request(&mut self, now: Instant, req: ReqId, body: Request) {
        if let Request::SetConfig(raw) = body {
            return self.set_config(req, *raw);
        }
        if self.plugin.is_none() {
            return self.reply(req, Err(DriverError::NotConfigured));
        }
        match body {
            Request::SetConfig(_) => {}
            Request::Start { spec, config } => self.start(req, *spec, *config),
            Request::Recover { task, state } => self.recover(req, task, *state),
            Request::Wait(task) => self.wait(req, task),
            Request::Stop {
                task,
                timeout,
                signal,
            } => self.stop(now, req, task, timeout, &signal),
            Request::Destroy { task, force } => self.destroy(req, task, force),
            Request::Inspect(task) => {
                let r = self
                    .tasks
                    .get(&task)
                    .map(|t| Reply::Inspected(Box::new(view(t))))
                    .ok_or(DriverError::UnknownTask(task));
                self.reply(req, r);
            }
            Request::Signal { task, signal } => self.signal(req, task, &signal),
            Request::Stats(task) => self.stats(req, task),
            Request::Exec { task, argv, tty } => self.exec(req, task, argv, tty),
        }
    }

    fn set_config(&mut self, req: ReqId, raw: RawPluginConfig) {
        match raw.validate() {
            Ok(cfg) => {
                self.plugin = Some(cfg.clone());
                self.reply(req, Ok(Reply::Configured(Box::new(cfg))));
            }
            Err(e) => self.reply(req, Err(DriverError::InvalidConfig(e))),
        }
    }

    fn start(&mut self, req: ReqId, spec: TaskSpec, raw: RawTaskConfig) {
        let Some(plugin) = self.plugin.clone() else {
            return self.reply(req, Err(DriverError::NotConfigured));
        };
        if self.tasks.contains_key(&spec.id) {
            return self.reply(req, Err(DriverError::DuplicateTask(spec.id)));
        }
        if self.cleaning.contains_key(&spec.id) {
            let message = format!(
                "task {} is still being cleaned up after a failed start; retry",
                spec.id
            );
            return self.reply(
                req,
                Err(DriverError::Backend {
                    class: FailureClass::Retryable,
                    message,
                }),
            );
        }
        let cfg = match raw.validate(&plugin, &self.host) {
            Ok(cfg) => cfg,
            Err(e) => return self.reply(req, Err(DriverError::InvalidConfig(e))),
        };
        let plan = plan_sandbox(&spec, &cfg, &plugin, &self.host);
        let id = spec.id.clone();
        let op = self.command(
            Command::Launch(Box::new(plan)),
            Pending::Launch { task: id.clone() },
        );
        let task = Task::new(
            id.clone(),
            spec.alloc_id,
            spec.name,
            Phase::Launching { op, req },
        );
        self.tasks.insert(id, task);
    }

    fn recover(&mut self, req: ReqId, task: TaskId, state: DriverState) {
        if self.tasks.contains_key(&task) {
            return self.reply(req, Ok(Reply::Recovered));
        }
        if state.plan.task != task {
            let reason = format!(
                "driver state belongs to task {}, not {}",
                state.plan.task, task
            );
            return self.reply(
                req,
                Err(DriverError::InvalidArgument {
                    field: "handle.driver_state",
                    reason,
                }),
            );
        }
        if self.cleaning.contains_key(&task) {
            let message = format!("task {task} is still being cleaned up; retry");
            return self.reply(
                req,
                Err(DriverError::Backend {
                    class: FailureClass::Retryable,
                    message,
                }),
            );
        }
        let started_at = state.started_at;
        let (alloc_id, name) = (state.plan.alloc_id.clone(), state.plan.task_name.clone());
        let op = self.command(
            Command::Reattach {
                state: Box::new(state),
            },
            Pending::Reattach {
                task: task.clone(),
                started_at,
            },
        );
        let t = Task::new(task.clone(), alloc_id, name, Phase::Reattaching { op, req });
        self.tasks.insert(task, t);
    }

    fn wait(&mut self, req: ReqId, task: TaskId) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return self.reply(req, Err(DriverError::UnknownTask(task)));
        };
        match t.exit() {
            Some((result, _)) => {
                let r = result.clone();
                self.reply(req, Ok(Reply::Exited(r)));
            }
            None => t.waiters.push(req),
        }
    }

    fn stop(&mut self, now: Instant, req: ReqId, task: TaskId, timeout: Duration, signal: &str) {
        let Some(t) = self.tasks.get(&task) else {
            return self.reply(req, Err(DriverError::UnknownTask(task)));
        };
        match &t.phase {
            Phase::Exited { .. } => return self.reply(req, Ok(Reply::Stopped)),
            Phase::Running | Phase::Stopping { .. } => {}
            other => {
                let phase = other.name();
                return self.reply(req, Err(wrong(task, phase, "stop")));
            }
        }
        let sig = if signal.trim().is_empty() {
            Signal::TERM
        } else {
            match Signal::parse(signal) {
                Ok(s) => s,
                Err(e) => {
                    return self.reply(
                        req,
                        Err(DriverError::InvalidArgument {
                            field: "signal",
                            reason: e.to_string(),
                        }),
                    )
                }
            }
        };
        // `None` only when now + timeout overflows: such a timeout never expires.
        let wanted = now.checked_add(timeout);
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        let deadline = match t.phase {
            Phase::Stopping {
                deadline: old,
                killed: true,
            } => {
                t.phase = Phase::Stopping {
                    deadline: old,
                    killed: true,
                };
                None
            }
            Phase::Stopping {
                deadline: old,
                killed: false,
            } => {
                // A second stop can only bring the kill closer.
                let d = match (old, wanted) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                t.phase = Phase::Stopping {
                    deadline: d,
                    killed: false,
                };
                d
            }
            _ => {
                t.phase = Phase::Stopping {
                    deadline: wanted,
                    killed: false,
                };
                wanted
            }
        };
        t.stoppers.push(req);
        if let Some(d) = deadline {
            self.timers.insert((d, task.clone()));
        }
        self.command(
            Command::Signal {
                task: task.clone(),
                signal: sig,
            },
            Pending::Signal {
                task: task.clone(),
                signal: sig,
                req: None,
            },
        );
        self.event(
            &task,
            format!(
                "sent {sig}; killing all task processes after {}",
                fmt_duration(timeout)
            ),
            &[
                ("signal", sig.to_string()),
                ("kill_timeout", fmt_duration(timeout)),
            ],
        );
    }

    fn destroy(&mut self, req: ReqId, task: TaskId, force: bool) {
        let Some(t) = self.tasks.get(&task) else {
            // Not tracked: it may still have left a cgroup or state dir, from a cleanup that
            // failed before a plugin restart forgot it (Nomad sends DestroyTask with force for
            // such ids). Cleanup of an id the backend does not know removes what it left, if
            // anything, so it is tried; "not found" is the answer once it succeeds.
            if !self.cleaning.contains_key(&task) {
                let op = self.command(
                    Command::Cleanup { task: task.clone() },
                    Pending::Purge {
                        task: task.clone(),
                        req,
                    },
                );
                self.cleaning.insert(task, op);
                return;
            }
            return self.reply(req, Err(DriverError::UnknownTask(task)));
        };
        let before = t.phase.clone();
        match &before {
            Phase::Exited { result, at } => {
                let exit = Some((result.clone(), *at));
                let op = self.command(
                    Command::Cleanup { task: task.clone() },
                    Pending::Cleanup {
                        task: task.clone(),
                        req: Some(req),
                    },
                );
                self.set_phase(
                    &task,
                    Phase::Destroying {
                        req,
                        cleanup: Some(op),
                        before: Box::new(before),
                        exit,
                    },
                );
            }
            Phase::Running | Phase::Stopping { .. } if force => {
                self.command(
                    Command::KillAll { task: task.clone() },
                    Pending::KillAll {
                        task: task.clone(),
                        destroy: true,
                    },
                );
                self.set_phase(
                    &task,
                    Phase::Destroying {
                        req,
                        cleanup: None,
                        before: Box::new(before),
                        exit: None,
                    },
                );
            }
            Phase::Running | Phase::Stopping { .. } => self.reply(
                req,
                Err(wrong(task, before.name(), "destroy without force")),
            ),
            other => {
                let phase = other.name();
                self.reply(req, Err(wrong(task, phase, "destroy")));
            }
        }
    }

    fn signal(&mut self, req: ReqId, task: TaskId, signal: &str) {
        let Some(t) = self.tasks.get(&task) else {
            return self.reply(req, Err(DriverError::UnknownTask(task)));
        };
        if !t.phase.is_live() || matches!(t.phase, Phase::Destroying { .. }) {
            let phase = t.phase.name();
            return self.reply(req, Err(wrong(task, phase, "signal")));
        }
        let sig = match Signal::parse(signal) {
            Ok(s) => s,
            Err(e) => {
                return self.reply(
                    req,
                    Err(DriverError::InvalidArgument {
                        field: "signal",
                        reason: e.to_string(),
                    }),
                )
            }
        };
        self.command(
            Command::Signal {
                task: task.clone(),
                signal: sig,
            },
            Pending::Signal {
                task,
                signal: sig,
                req: Some(req),
            },
        );
    }

    fn stats(&mut self, req: ReqId, task: TaskId) {
        let Some(t) = self.tasks.get(&task) else {
            return self.reply(req, Err(DriverError::UnknownTask(task)));
        };
        if !matches!(t.phase, Phase::Running | Phase::Stopping { .. }) {
            let phase = t.phase.name();
            return self.reply(req, Err(wrong(task, phase, "sample stats")));
        }
        self.command(Command::Sample { task }, Pending::Sample { req });
    }

    fn exec(&mut self, req: ReqId, task: TaskId, argv: Vec<String>, tty: bool) {
        let Some(t) = self.tasks.get(&task) else {
            return self.reply(req, Err(DriverError::UnknownTask(task)));
        };
        let state = match (&t.phase, &t.state) {
            (Phase::Running, Some(state)) => state,
            (phase, _) => {
                let phase = phase.name();
                return self.reply(req, Err(wrong(task, phase, "exec")));
            }
        };
        let Some((command, args)) = argv.split_first() else {
            return self.reply(
                req,
                Err(DriverError::InvalidArgument {
                    field: "command",
                    reason: "must name a program to run".into(),
                }),
            );
        };
        if argv.iter().any(|a| a.contains('\0')) {
            return self.reply(
                req,
                Err(DriverError::InvalidArgument {
                    field: "command",
                    reason: "contains a NUL byte".into(),
                }),
            );
        }
        let mut plan = state.plan.clone();
        plan.command = command.clone();
        plan.args = args.to_vec();
        let exec = ExecPlan {
            plan,
            tty,
            target_pid: state.process.pid,
        };
        self.reply(req, Ok(Reply::Exec(Box::new(exec))));
    }

    // ---- completions ---------------------------------------------------------------------

    fn handle_completed(&mut self, now: Instant, op: OpId, outcome: Outcome) {
        let Some(pending) = self.ops.remove(&op) else {
            return; // unknown or already completed op: ignored
        };
        match pending {
            Pending::Launch { task } => self.launch_done(op, task, outcome),
            Pending::Reattach { task, started_at } => {
                self.reattach_done(op, task, started_at, outcome)
            }
            Pending::Signal { task, signal, req } => self.signal_done(task, signal, req, outcome),
            Pending::KillAll { task, destroy } => self.kill_done(now, task, destroy, outcome),
            Pending::Sample { req } => {
                let r = match outcome {
                    Outcome::Ok(Effect::Usage(u)) => Ok(Reply::Stats(u)),
                    Outcome::Ok(other) => Err(unexpected("sample", &other)),
                    Outcome::Failed { class, message } => Err(DriverError::Backend {
                        class,
                        message: format!("sampling stats: {message}"),
                    }),
                };
                self.reply(req, r);
            }
            Pending::Cleanup { task, req } => self.cleanup_done(op, task, req, outcome),
            Pending::Purge { task, req } => {
                if self.cleaning.get(&task) == Some(&op) {
                    self.cleaning.remove(&task);
                }
                match outcome {
                    Outcome::Failed { class, message } => self.reply(
                        req,
                        Err(DriverError::Backend {
                            class,
                            message: format!("cleaning up what a lost task left: {message}"),
                        }),
                    ),
                    Outcome::Ok(_) => {
                        // A forgotten task this plugin failed to clean is now destroyed; for
                        // any other id there was nothing (more) to destroy.
                        let reply = if self.unclean.remove(&task) {
                            Ok(Reply::Destroyed)
                        } else {
                            Err(DriverError::UnknownTask(task))
                        };
                        self.reply(req, reply);
                    }
                }
            }
        }
    }

    fn launch_done(&mut self, op: OpId, task: TaskId, outcome: Outcome) {
        let req = match self.tasks.get(&task).map(|t| &t.phase) {
            Some(Phase::Launching { op: o, req }) if *o == op => *req,
            _ => return,
        };
        match outcome {
            Outcome::Ok(Effect::Launched(l)) => {
                let l = *l;
                let early = self.tasks.get_mut(&task).and_then(|t| {
                    t.state = Some(l.state.clone());
                    t.sandbox_report = Some(l.sandbox_report.clone()).filter(|s| !s.is_empty());
                    t.phase = Phase::Running;
                    t.early_exit.take()
                });
                self.reply(req, Ok(Reply::Started(Box::new(l.state))));
                if !l.sandbox_report.is_empty() {
                    self.event(
                        &task,
                        format!("sandbox: {}", l.sandbox_report),
                        &[("sandbox", l.sandbox_report.clone())],
                    );
                }
                if let Some((result, at)) = early {
                    self.exited(&task, result, at);
                }
            }
            Outcome::Ok(other) => {
                let err = unexpected("launch", &other);
                self.forget_failed(req, task, err, false);
            }
            Outcome::Failed { class, message } => {
                let err = DriverError::Backend {
                    class,
                    message: format!("starting task: {message}"),
                };
                self.forget_failed(req, task, err, false);
            }
        }
    }

    fn reattach_done(&mut self, op: OpId, task: TaskId, started_at: SystemTime, outcome: Outcome) {
        let req = match self.tasks.get(&task).map(|t| &t.phase) {
            Some(Phase::Reattaching { op: o, req }) if *o == op => *req,
            _ => return,
        };
        match outcome {
            Outcome::Ok(Effect::Launched(l)) => {
                let l = *l;
                let mut state = l.state;
                state.started_at = started_at;
                let report = l.sandbox_report;
                let early = self.tasks.get_mut(&task).and_then(|t| {
                    t.state = Some(state);
                    t.sandbox_report = Some(report).filter(|s| !s.is_empty());
                    t.phase = Phase::Running;
                    t.early_exit.take()
                });
                self.reply(req, Ok(Reply::Recovered));
                if let Some((result, at)) = early {
                    self.exited(&task, result, at);
                }
            }
            Outcome::Ok(Effect::AlreadyExited { state, result, at }) => {
                let mut state = *state;
                state.started_at = started_at;
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.state = Some(state);
                    t.phase = Phase::Running;
                    t.early_exit = None;
                }
                self.reply(req, Ok(Reply::Recovered));
                self.exited(&task, result, at);
            }
            Outcome::Ok(other) => {
                let err = unexpected("re-attach", &other);
                self.forget_failed(req, task, err, true);
            }
            Outcome::Failed { class, message } => {
                let message = if class == FailureClass::Gone {
                    format!("task lost: {message}")
                } else {
                    format!("re-attaching to task: {message}")
                };
                self.forget_failed(req, task, DriverError::Backend { class, message }, true);
            }
        }
    }

    /// A start or recovery failed: reply, forget the task, answer anyone waiting on it, and
    /// make sure nothing it may have left keeps running or lingers.
    fn forget_failed(&mut self, req: ReqId, task: TaskId, err: DriverError, kill: bool) {
        self.reply(req, Err(err.clone()));
        if let Some(t) = self.tasks.remove(&task) {
            for w in t.waiters.into_iter().chain(t.stoppers) {
                self.reply(w, Err(err.clone()));
            }
        }
        if kill {
            self.command(
                Command::KillAll { task: task.clone() },
                Pending::KillAll {
                    task: task.clone(),
                    destroy: false,
                },
            );
        }
        let op = self.command(
            Command::Cleanup { task: task.clone() },
            Pending::Cleanup {
                task: task.clone(),
                req: None,
            },
        );
        self.cleaning.insert(task, op);
    }

    fn signal_done(&mut self, task: TaskId, signal: Signal, req: Option<ReqId>, outcome: Outcome) {
        match (req, outcome) {
            (Some(req), Outcome::Ok(_)) => self.reply(req, Ok(Reply::Signalled)),
            (Some(req), Outcome::Failed { class, message }) => self.reply(
                req,
                Err(DriverError::Backend {
                    class,
                    message: format!("sending {signal}: {message}"),
                }),
            ),
            (None, Outcome::Ok(_)) => {}
            (None, Outcome::Failed { message, .. }) => {
                // The stop deadline still kills everything; tell the operator why it will.
                self.event(
                    &task,
                    format!("sending {signal} failed: {message}"),
                    &[("signal", signal.to_string())],
                );
            }
        }
    }

    fn kill_done(&mut self, now: Instant, task: TaskId, destroy: bool, outcome: Outcome) {
        let Outcome::Failed { class, message } = outcome else {
            return; // the exit observation follows
        };
        let Some(t) = self.tasks.get(&task) else {
            return;
        };
        if class == FailureClass::Gone && t.phase.is_live() {
            // Nothing is left to kill and no exit status will come: record that.
            let result = ExitResult {
                err: Some(format!("task processes are gone: {message}")),
                ..ExitResult::default()
            };
            let at = t
                .state
                .as_ref()
                .map_or(SystemTime::UNIX_EPOCH, |s| s.started_at);
            return self.exited(&task, result, at);
        }
        self.event(
            &task,
            format!("killing task processes failed: {message}"),
            &[],
        );
        if !destroy {
            return;
        }
        // A failed forced destroy changes nothing: back to the phase before it.
        if let Some(Phase::Destroying {
            req,
            cleanup: None,
            before,
            exit: None,
        }) = self.tasks.get(&task).map(|t| t.phase.clone())
        {
            if let Phase::Stopping {
                deadline: Some(d),
                killed: false,
            } = *before
            {
                self.timers.insert((d.max(now), task.clone()));
            }
            self.set_phase(&task, *before);
            self.reply(
                req,
                Err(DriverError::Backend {
                    class,
                    message: format!("destroying task: killing its processes: {message}"),
                }),
            );
        }
    }

    fn cleanup_done(&mut self, op: OpId, task: TaskId, req: Option<ReqId>, outcome: Outcome) {
        let Some(req) = req else {
            if self.cleaning.get(&task) == Some(&op) {
                self.cleaning.remove(&task);
            }
            match outcome {
                Outcome::Failed { .. } => self.unclean.insert(task),
                Outcome::Ok(_) => self.unclean.remove(&task),
            };
            return;
        };
        let exit = match self.tasks.get(&task).map(|t| &t.phase) {
            Some(Phase::Destroying {
                cleanup: Some(o),
                exit,
                ..
            }) if *o == op => exit.clone(),
            _ => {
                // The task changed under us (cannot happen with a well-behaved shell); the
                // request still gets its one reply.
                return self.reply(req, Ok(Reply::Destroyed));
            }
        };
        match outcome {
            Outcome::Failed { class, message } => {
                if let Some((result, at)) = exit {
                    self.set_phase(&task, Phase::Exited { result, at });
                }
                self.reply(
                    req,
                    Err(DriverError::Backend {
                        class,
                        message: format!("cleaning up task: {message}"),
                    }),
                );
            }
            Outcome::Ok(_) => {
                self.tasks.remove(&task);
                self.timers.retain(|(_, t)| *t != task);
                self.reply(req, Ok(Reply::Destroyed));
            }
        }
    }

    // ---- observations and timers ---------------------------------------------------------

    fn handle_observed(&mut self, o: Observation) {
        match o {
            Observation::Exited { task, result, at } => {
                let Some(t) = self.tasks.get_mut(&task) else {
                    return;
                };
                match t.phase {
                    Phase::Launching { .. } | Phase::Reattaching { .. } => {
                        if t.early_exit.is_none() {
                            t.early_exit = Some((result, at));
                        }
                    }
                    _ => self.exited(&task, result, at),
                }
            }
            Observation::Note { task, message } => self.event(&task, message, &[]),
        }
    }

    /// The task's process has exited: record it once and answer waiters and stoppers.
    fn exited(&mut self, task: &TaskId, result: ExitResult, at: SystemTime) {
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        if !t.phase.is_live() {
            return; // the first exit wins
        }
        let waiters = std::mem::take(&mut t.waiters);
        let stoppers = std::mem::take(&mut t.stoppers);
        let destroy_req = match &t.phase {
            Phase::Destroying { req, .. } => Some(*req),
            _ => None,
        };
        t.phase = Phase::Exited {
            result: result.clone(),
            at,
        };
        self.timers.retain(|(_, id)| id != task);
        for w in waiters {
            self.reply(w, Ok(Reply::Exited(result.clone())));
        }
        for s in stoppers {
            self.reply(s, Ok(Reply::Stopped));
        }
        if result.oom_killed {
            self.event(
                task,
                "task was killed by the OOM killer: it exceeded its memory limit".into(),
                &[("oom_killed", "true".into())],
            );
        }
        if let Some(req) = destroy_req {
            // A forced destroy was waiting for this exit: now clean up.
            let before = Box::new(Phase::Exited {
                result: result.clone(),
                at,
            });
            let op = self.command(
                Command::Cleanup { task: task.clone() },
                Pending::Cleanup {
                    task: task.clone(),
                    req: Some(req),
                },
            );
            self.set_phase(
                task,
                Phase::Destroying {
                    req,
                    cleanup: Some(op),
                    before,
                    exit: Some((result, at)),
                },
            );
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, task)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, task.clone()));
            let due = matches!(
                self.tasks.get(&task).map(|t| &t.phase),
                Some(Phase::Stopping { deadline: Some(d), killed: false }) if *d <= now
            );
            if !due {
                continue; // stale: the task exited, was destroyed, or the deadline moved
            }
            if let Some(t) = self.tasks.get_mut(&task) {
                if let Phase::Stopping { deadline, .. } = t.phase {
                    t.phase = Phase::Stopping {
                        deadline,
                        killed: true,
                    };
                }
            }
            self.command(
                Command::KillAll { task: task.clone() },
                Pending::KillAll {
                    task: task.clone(),
                    destroy: false,
                },
            );
            self.event(
                &task,
                "kill timeout passed; killing all task processes".into(),
                &[],
            );
        }
    }

    fn set_phase(&mut self, task: &TaskId, phase: Phase) {
        if let Some(t) = self.tasks.get_mut(task) {
            t.phase = phase;
        }
    }
}

fn wrong(task: TaskId, phase: PhaseName, op: &'static str) -> DriverError {
    DriverError::WrongState { task, phase, op }
}

fn unexpected(what: &str, effect: &Effect) -> DriverError {
    let kind = match effect {
        Effect::Done => "nothing",
        Effect::Launched(_) => "a launch",
        Effect::AlreadyExited { .. } => "an exit",
        Effect::Usage(_) => "a usage sample",
    };
    DriverError::Backend {
        class: FailureClass::Fatal,
        message: format!("backend answered {what} with {kind}"),
    }
}

fn view(t: &Task) -> TaskView {
    let mut attributes = BTreeMap::new();
    if let Some(s) = &t.state {
        attributes.insert("pid".to_string(), s.process.pid.to_string());
    }
    if let Some(r) = &t.sandbox_report {
        attributes.insert("sandbox".to_string(), r.clone());
    }
    let exit = t.exit();
    TaskView {
        id: t.id.clone(),
        name: t.name.clone(),
        phase: t.phase.name(),
        started_at: t.state.as_ref().map(|s| s.started_at),
        completed_at: exit.map(|(_, at)| at),
        result: exit.map(|(r, _)| r.clone()),
        attributes,
    }
}

/// `5s`, `1.5s`, `250ms`.
fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
