//! [`FakeBackend`]: the simulated kernel (process table, supervisors, exit records), the
//! [`Backend`] implementation over it, and the world-control methods the sim drives.

use crate::call::{Call, CallOp};
use crate::error::FakeError;
use crate::fault::{FaultPlan, FaultyOp};
use crate::script::{ProcScript, SignalResponse};
use pledge_core::backend::{CgroupMode, ProcessIdentity};
use pledge_core::{
    Backend, DriverState, Effect, ExitResult, FailureClass, HostFacts, Launched, Observation,
    SandboxPlan, Signal, TaskId, Usage,
};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// What a live fake process is to its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProcRole {
    /// The task's main process (the one the supervisor reaps).
    Main,
    /// A process the main process forked (it lives in the task's cgroup).
    Child,
}

#[derive(Clone, Debug)]
struct FakeProc {
    task: TaskId,
    role: ProcRole,
}

/// A task as the "kernel" and its state dir see it: it exists from launch until cleanup.
#[derive(Clone, Debug)]
struct FakeTask {
    state: DriverState,
    main_pid: u32,
    script: ProcScript,
    /// The exit status the supervisor recorded in the state dir.
    exit: Option<(ExitResult, SystemTime)>,
    /// The supervisor process exists (it exits once it has recorded the main's exit).
    supervisor_alive: bool,
    /// The current plugin process watches this task (pidfd); exits are observed only then.
    watched: bool,
    /// A graceful exit is already scheduled (SignalResponse::ExitAfter).
    draining: bool,
    /// A kill was delivered and the processes die at this time (the script's `reap_delay`).
    dying_at: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheduled {
    /// The main process `pid` of `task` exits with `code` (scripted, or the end of a drain).
    Exit { task: TaskId, pid: u32, code: i32 },
    /// A kill delivered earlier takes effect: the main `pid` dies by SIGKILL, and with `all`
    /// every other process of `task` too.
    Killed { task: TaskId, pid: u32, all: bool },
}

/// The in-memory backend. See the crate docs for the contract.
#[derive(Clone, Debug)]
pub struct FakeBackend {
    host: HostFacts,
    wall0: SystemTime,
    now: Duration,
    tasks: BTreeMap<TaskId, FakeTask>,
    procs: BTreeMap<u32, FakeProc>,
    scripts: BTreeMap<TaskId, ProcScript>,
    schedule: BTreeMap<(Duration, u64), Scheduled>,
    seq: u64,
    next_pid: u32,
    calls: Vec<Call>,
    faults: FaultPlan,
    armed: BTreeMap<FaultyOp, Vec<FailureClass>>,
    op_counts: BTreeMap<FaultyOp, u32>,
    pending: Vec<Observation>,
    last_exit: BTreeMap<TaskId, (ExitResult, SystemTime)>,
}

/// 2023-11-14T22:13:20Z: a fixed, readable wall-clock epoch for virtual time zero.
const DEFAULT_WALL0_SECS: u64 = 1_700_000_000;

/// Signals whose default action is to do nothing (or stop/continue, which is not modelled).
fn default_ignored(sig: Signal) -> bool {
    matches!(sig.number(), 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28)
}

impl FakeBackend {
    /// A fake host with cgroups v2, Landlock ABI 7, seccomp, root, two CPUs, and `faults`.
    pub fn new(faults: FaultPlan) -> Self {
        let host = HostFacts {
            cgroup: CgroupMode::V2,
            landlock_abi: 7,
            seccomp: true,
            root: true,
            cpus: vec![0, 1],
            kernel: "6.18.0-fake".to_string(),
            cpu_mhz_per_core: 2000,
        };
        Self {
            host,
            wall0: SystemTime::UNIX_EPOCH + Duration::from_secs(DEFAULT_WALL0_SECS),
            now: Duration::ZERO,
            tasks: BTreeMap::new(),
            procs: BTreeMap::new(),
            scripts: BTreeMap::new(),
            schedule: BTreeMap::new(),
            seq: 0,
            next_pid: 1000,
            calls: Vec::new(),
            faults,
            armed: BTreeMap::new(),
            op_counts: BTreeMap::new(),
            pending: Vec::new(),
            last_exit: BTreeMap::new(),
        }
    }

    /// Replaces what `probe` reports.
    pub fn with_host(mut self, host: HostFacts) -> Self {
        self.host = host;
        self
    }

    // ---- time -------------------------------------------------------------------------------

    /// The wall-clock time at virtual offset `at`.
    pub fn wall(&self, at: Duration) -> SystemTime {
        self.wall0 + at
    }

    /// The current virtual time (offset from the epoch).
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Moves virtual time forward to `now`, running every scheduled event due by then in time
    /// order, each at its own time. An earlier `now` than the current one is ignored: time
    /// never goes back.
    pub fn set_time(&mut self, now: Duration) {
        while let Some((&(at, seq), _)) = self.schedule.iter().next() {
            if at > now {
                break;
            }
            let Some(ev) = self.schedule.remove(&(at, seq)) else {
                break;
            };
            self.now = self.now.max(at);
            match ev {
                Scheduled::Exit { task, pid, code } => {
                    if self.is_main(&task, pid) {
                        self.main_exits(&task, exited_with(code));
                    }
                }
                Scheduled::Killed { task, pid, all } => {
                    if let Some(t) = self.tasks.get_mut(&task) {
                        t.dying_at = None;
                    }
                    let main_alive = self.is_main(&task, pid);
                    self.kill_procs(&task, |r| all || r == ProcRole::Main);
                    if main_alive {
                        self.main_exits(&task, killed_by(Signal::KILL));
                    }
                }
            }
        }
        self.now = self.now.max(now);
    }

    /// When the next scheduled event (a scripted exit, the end of a drain) happens.
    pub fn next_event_at(&self) -> Option<Duration> {
        self.schedule.keys().next().map(|(at, _)| *at)
    }

    fn schedule_at(&mut self, at: Duration, ev: Scheduled) {
        self.seq += 1;
        self.schedule.insert((at, self.seq), ev);
    }

    // ---- world control ----------------------------------------------------------------------

    /// The behaviour of the next launch of `task` (default: [`ProcScript::forever`]).
    pub fn set_script(&mut self, task: &TaskId, script: ProcScript) {
        self.scripts.insert(task.clone(), script);
    }

    /// Makes the next call to `op` fail with `class` (in addition to the fault plan).
    pub fn fail_next(&mut self, op: FaultyOp, class: FailureClass) {
        self.armed.entry(op).or_default().push(class);
    }

    /// Drops every armed (not yet triggered) [`Self::fail_next`] failure.
    pub fn disarm(&mut self) {
        self.armed.clear();
    }

    /// Changes how a running task's main process answers signals. Returns false if it is not
    /// running.
    pub fn set_signal_response(&mut self, task: &TaskId, response: SignalResponse) -> bool {
        match self.tasks.get_mut(task) {
            Some(t) if t.exit.is_none() => {
                t.script.on_signal = response;
                true
            }
            _ => false,
        }
    }

    /// Shorthand for [`Self::set_signal_response`] with `Ignore` or `Default`.
    pub fn set_ignores_signals(&mut self, task: &TaskId, yes: bool) -> bool {
        let r = if yes {
            SignalResponse::Ignore
        } else {
            SignalResponse::Default
        };
        self.set_signal_response(task, r)
    }

    /// The main process exits now with `code`. Returns false if it was not running.
    pub fn exit(&mut self, task: &TaskId, code: i32) -> bool {
        if !self.is_running(task) {
            return false;
        }
        self.main_exits(task, exited_with(code));
        true
    }

    /// The OOM killer kills every process of the task. Returns false if nothing was running.
    pub fn oom_kill(&mut self, task: &TaskId) -> bool {
        if self.live_pids(task).is_empty() {
            return false;
        }
        self.kill_procs(task, |_| true);
        if self.is_running(task) {
            let result = ExitResult {
                exit_code: 0,
                signal: Signal::KILL.number(),
                oom_killed: true,
                err: None,
            };
            self.main_exits(task, result);
        }
        true
    }

    /// The main process forks a child. Returns its pid, or `None` if the main is not running.
    pub fn fork_child(&mut self, task: &TaskId) -> Option<u32> {
        if !self.is_running(task) {
            return None;
        }
        let pid = self.alloc_pid();
        self.procs.insert(
            pid,
            FakeProc {
                task: task.clone(),
                role: ProcRole::Child,
            },
        );
        Some(pid)
    }

    /// The task's supervisor dies unexpectedly. The backend's policy for a lost supervisor is
    /// that the task must not run unmanaged, so every process of the task is killed. If the
    /// plugin is watching, it observes an exit with an error and that exit is what the state
    /// dir then holds; if not (the plugin is down), no status is recorded and a later reattach
    /// fails with [`FakeError::SupervisorGone`]. Returns false if the supervisor was not alive.
    pub fn lose_supervisor(&mut self, task: &TaskId) -> bool {
        let Some(t) = self.tasks.get(task) else {
            return false;
        };
        if !t.supervisor_alive {
            return false;
        }
        let watched = t.watched;
        self.kill_procs(task, |_| true);
        if let Some(t) = self.tasks.get_mut(task) {
            t.supervisor_alive = false;
        }
        if watched {
            let result = ExitResult {
                exit_code: 0,
                signal: Signal::KILL.number(),
                oom_killed: false,
                err: Some("supervisor exited unexpectedly; task killed".to_string()),
            };
            self.record_exit(task, result);
        }
        true
    }

    /// The plugin process crashed: undelivered observations are lost and no task is watched
    /// any more. Processes and recorded exits survive. Tasks named in the fault plan's
    /// `reattach_gone` lose their supervisor now, while nobody watches.
    pub fn crash_plugin(&mut self) {
        self.pending.clear();
        for t in self.tasks.values_mut() {
            t.watched = false;
        }
        let gone: Vec<TaskId> = self.faults.reattach_gone.iter().cloned().collect();
        for task in gone {
            self.lose_supervisor(&task);
        }
    }

    // ---- ground truth -----------------------------------------------------------------------

    /// Every backend call so far.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Tasks that still have state (launched and not cleaned up).
    pub fn live(&self) -> impl Iterator<Item = &TaskId> + '_ {
        self.tasks.keys()
    }

    /// Whether `task` still has state (launched and not cleaned up).
    pub fn knows(&self, task: &TaskId) -> bool {
        self.tasks.contains_key(task)
    }

    /// Whether a kill was delivered to the task and its processes have not died yet.
    pub fn is_dying(&self, task: &TaskId) -> bool {
        self.tasks.get(task).is_some_and(|t| t.dying_at.is_some())
    }

    /// Whether the task's main process is alive.
    pub fn is_running(&self, task: &TaskId) -> bool {
        self.tasks
            .get(task)
            .is_some_and(|t| t.exit.is_none() && t.supervisor_alive)
    }

    /// Every live process: pid, task, role.
    pub fn processes(&self) -> impl Iterator<Item = (u32, &TaskId, ProcRole)> + '_ {
        self.procs.iter().map(|(pid, p)| (*pid, &p.task, p.role))
    }

    /// Pids of the task's live processes, ascending.
    pub fn live_pids(&self, task: &TaskId) -> Vec<u32> {
        self.procs
            .iter()
            .filter(|(_, p)| &p.task == task)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// The task's main pid, while it has state.
    pub fn main_pid(&self, task: &TaskId) -> Option<u32> {
        self.tasks.get(task).map(|t| t.main_pid)
    }

    /// The state the task was launched with.
    pub fn state_of(&self, task: &TaskId) -> Option<&DriverState> {
        self.tasks.get(task).map(|t| &t.state)
    }

    /// The exit status the supervisor recorded for the task's latest run. Kept after cleanup,
    /// so a checker can still compare late replies with it.
    pub fn recorded_exit(&self, task: &TaskId) -> Option<&(ExitResult, SystemTime)> {
        self.last_exit.get(task)
    }

    /// Whether the task's supervisor is alive.
    pub fn supervisor_alive(&self, task: &TaskId) -> bool {
        self.tasks.get(task).is_some_and(|t| t.supervisor_alive)
    }

    /// Whether the current plugin watches the task.
    pub fn watched(&self, task: &TaskId) -> bool {
        self.tasks.get(task).is_some_and(|t| t.watched)
    }

    /// Observations not yet drained.
    pub fn pending(&self) -> &[Observation] {
        &self.pending
    }

    // ---- internals --------------------------------------------------------------------------

    fn alloc_pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    fn is_main(&self, task: &TaskId, pid: u32) -> bool {
        self.tasks
            .get(task)
            .is_some_and(|t| t.main_pid == pid && t.exit.is_none())
            && self.procs.contains_key(&pid)
    }

    /// Removes the task's processes matching `which` from the process table.
    fn kill_procs(&mut self, task: &TaskId, which: impl Fn(ProcRole) -> bool) -> u32 {
        let doomed: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| &p.task == task && which(p.role))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in &doomed {
            self.procs.remove(pid);
        }
        u32::try_from(doomed.len()).unwrap_or(u32::MAX)
    }

    /// The main process is gone: remove it, let the supervisor record the status and exit.
    fn main_exits(&mut self, task: &TaskId, result: ExitResult) {
        self.kill_procs(task, |r| r == ProcRole::Main);
        self.record_exit(task, result);
        if let Some(t) = self.tasks.get_mut(task) {
            t.supervisor_alive = false;
        }
    }

    fn record_exit(&mut self, task: &TaskId, result: ExitResult) {
        let at = self.wall(self.now);
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        if t.exit.is_some() {
            return;
        }
        t.exit = Some((result.clone(), at));
        self.last_exit.insert(task.clone(), (result.clone(), at));
        if t.watched {
            self.pending.push(Observation::Exited {
                task: task.clone(),
                result,
                at,
            });
        }
    }

    /// Counts a call to `op` and returns the failure planned or armed for it.
    fn fault(&mut self, op: FaultyOp) -> Option<FailureClass> {
        let n = self.op_counts.entry(op).or_insert(0);
        let nth = *n;
        *n += 1;
        if let Some(class) = self.faults.planned(op, nth) {
            return Some(class);
        }
        let armed = self.armed.get_mut(&op)?;
        if armed.is_empty() {
            return None;
        }
        Some(armed.remove(0))
    }

    fn log<T>(&mut self, op: CallOp, r: Result<T, FakeError>) -> Result<T, FakeError> {
        use pledge_core::Classify;
        let failed = r.as_ref().err().map(Classify::class);
        self.calls.push(Call {
            at: self.now,
            op,
            failed,
        });
        r
    }

    fn do_launch(&mut self, plan: &SandboxPlan) -> Result<Launched, FakeError> {
        let task = plan.task.clone();
        if let Some(class) = self.fault(FaultyOp::Launch) {
            return Err(FakeError::Injected {
                op: FaultyOp::Launch,
                class,
            });
        }
        if self.tasks.contains_key(&task) {
            return Err(FakeError::AlreadyLaunched(task));
        }
        let script = self.scripts.remove(&task).unwrap_or_default();
        let supervisor_pid = self.alloc_pid();
        let main_pid = self.alloc_pid();
        // Start "ticks": the virtual time in ms, so a reused pid would have another start.
        let ticks = u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX);
        let state = DriverState {
            version: DriverState::VERSION,
            plan: plan.clone(),
            process: ProcessIdentity {
                supervisor_pid,
                supervisor_start: ticks,
                pid: main_pid,
                pid_start: ticks,
                state_dir: plan.state_dir.clone(),
            },
            started_at: self.wall(self.now),
        };
        self.procs.insert(
            main_pid,
            FakeProc {
                task: task.clone(),
                role: ProcRole::Main,
            },
        );
        self.tasks.insert(
            task.clone(),
            FakeTask {
                state: state.clone(),
                main_pid,
                script,
                exit: None,
                supervisor_alive: true,
                watched: true,
                draining: false,
                dying_at: None,
            },
        );
        for _ in 0..script.children {
            self.fork_child(&task);
        }
        if let Some((after, code)) = script.exit_after {
            let at = self.now + after;
            self.schedule_at(
                at,
                Scheduled::Exit {
                    task: task.clone(),
                    pid: main_pid,
                    code,
                },
            );
        }
        Ok(Launched {
            state,
            sandbox_report: "fake backend: nothing enforced".to_string(),
        })
    }

    fn do_signal(&mut self, task: &TaskId, sig: Signal) -> Result<(), FakeError> {
        if let Some(class) = self.fault(FaultyOp::Signal) {
            return Err(FakeError::Injected {
                op: FaultyOp::Signal,
                class,
            });
        }
        let Some(t) = self.tasks.get(task) else {
            return Err(FakeError::UnknownTask(task.clone()));
        };
        if t.exit.is_some() || !t.supervisor_alive {
            return Err(FakeError::ProcessExited(task.clone()));
        }
        let (response, draining, pid) = (t.script.on_signal, t.draining, t.main_pid);
        let killed_by = ExitResult {
            exit_code: 0,
            signal: sig.number(),
            oom_killed: false,
            err: None,
        };
        if sig == Signal::KILL {
            if !self.deliver_kill(task, false) {
                self.main_exits(task, killed_by);
            }
            return Ok(());
        }
        match response {
            SignalResponse::Ignore => {}
            SignalResponse::Default => {
                if !default_ignored(sig) {
                    self.main_exits(task, killed_by);
                }
            }
            SignalResponse::ExitAfter { delay, code } => {
                if !default_ignored(sig) && !draining {
                    if let Some(t) = self.tasks.get_mut(task) {
                        t.draining = true;
                    }
                    let at = self.now + delay;
                    self.schedule_at(
                        at,
                        Scheduled::Exit {
                            task: task.clone(),
                            pid,
                            code,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn do_kill_all(&mut self, task: &TaskId) -> Result<(), FakeError> {
        if !self.tasks.contains_key(task) {
            return Err(FakeError::UnknownTask(task.clone()));
        }
        if self.deliver_kill(task, true) {
            return Ok(());
        }
        let main_alive = self.is_running(task);
        self.kill_procs(task, |_| true);
        if main_alive {
            self.main_exits(
                task,
                ExitResult {
                    exit_code: 0,
                    signal: Signal::KILL.number(),
                    oom_killed: false,
                    err: None,
                },
            );
        }
        Ok(())
    }

    /// With a `reap_delay`, a kill (of the main process, or with `all` of the whole cgroup)
    /// only takes effect later: schedules it and returns true. With none, returns false and the
    /// caller kills now. A second kill while one is pending changes nothing, unless it widens
    /// a main-only kill to the whole cgroup.
    fn deliver_kill(&mut self, task: &TaskId, all: bool) -> bool {
        let now = self.now;
        let Some(t) = self.tasks.get_mut(task) else {
            return false;
        };
        let delay = t.script.reap_delay;
        if delay.is_zero() || t.exit.is_some() {
            return false;
        }
        let pid = t.main_pid;
        let at = *t.dying_at.get_or_insert(now + delay);
        let pending_all = self
            .schedule
            .values()
            .any(|ev| matches!(ev, Scheduled::Killed { task: k, all: true, .. } if k == task));
        let pending_any = self
            .schedule
            .values()
            .any(|ev| matches!(ev, Scheduled::Killed { task: k, .. } if k == task));
        if !pending_any || (all && !pending_all) {
            self.schedule_at(
                at,
                Scheduled::Killed {
                    task: task.clone(),
                    pid,
                    all,
                },
            );
        }
        true
    }

    fn do_reattach(&mut self, state: &DriverState) -> Result<Effect, FakeError> {
        let task = state.plan.task.clone();
        let Some(t) = self.tasks.get_mut(&task) else {
            return Err(FakeError::UnknownTask(task));
        };
        let mine = &t.state.process;
        let theirs = &state.process;
        if mine.pid != theirs.pid || mine.pid_start != theirs.pid_start {
            return Err(FakeError::IdentityMismatch {
                task,
                reason: format!(
                    "pid {} started at {} is not the recorded pid {} started at {}",
                    mine.pid, mine.pid_start, theirs.pid, theirs.pid_start
                ),
            });
        }
        t.watched = true;
        if let Some((result, at)) = t.exit.clone() {
            return Ok(Effect::AlreadyExited {
                state: Box::new(t.state.clone()),
                result,
                at,
            });
        }
        if !t.supervisor_alive {
            return Err(FakeError::SupervisorGone(task));
        }
        Ok(Effect::Launched(Box::new(Launched {
            state: t.state.clone(),
            sandbox_report: "fake backend: re-attached".to_string(),
        })))
    }

    fn do_sample(&mut self, task: &TaskId) -> Result<Usage, FakeError> {
        if let Some(class) = self.fault(FaultyOp::Sample) {
            return Err(FakeError::Injected {
                op: FaultyOp::Sample,
                class,
            });
        }
        let Some(t) = self.tasks.get(task) else {
            return Err(FakeError::UnknownTask(task.clone()));
        };
        // Deterministic usage: one CPU at 50% user, 10% system while the main runs.
        let started = t
            .state
            .started_at
            .duration_since(self.wall0)
            .unwrap_or_default();
        let end = match &t.exit {
            Some((_, at)) => at.duration_since(self.wall0).unwrap_or_default(),
            None => self.now,
        };
        let ran = u64::try_from(end.saturating_sub(started).as_nanos()).unwrap_or(u64::MAX);
        let pids = self.live_pids(task);
        let mem = 1 << 20;
        Ok(Usage {
            at: Some(self.wall(self.now)),
            cpu_user_ns: ran / 2,
            cpu_system_ns: ran / 10,
            memory_rss: mem * pids.len() as u64,
            memory_usage: mem * pids.len() as u64,
            memory_max_usage: mem * (1 + t.script.children as u64),
            pids,
            ..Usage::default()
        })
    }

    fn do_cleanup(&mut self, task: &TaskId) -> Result<u32, FakeError> {
        if let Some(class) = self.fault(FaultyOp::Cleanup) {
            return Err(FakeError::Injected {
                op: FaultyOp::Cleanup,
                class,
            });
        }
        if !self.tasks.contains_key(task) {
            return Ok(0);
        }
        // Like cgroup.kill before rmdir: nothing the task left may survive its cleanup.
        let main_alive = self.is_running(task);
        let killed = self.kill_procs(task, |_| true);
        if main_alive {
            self.main_exits(
                task,
                ExitResult {
                    exit_code: 0,
                    signal: Signal::KILL.number(),
                    oom_killed: false,
                    err: None,
                },
            );
        }
        self.tasks.remove(task);
        self.scripts.remove(task);
        self.schedule.retain(|_, ev| match ev {
            Scheduled::Exit { task: t, .. } | Scheduled::Killed { task: t, .. } => t != task,
        });
        // Observations about a task that no longer exists are still delivered: the plugin may
        // be waiting for its exit.
        Ok(killed)
    }
}

fn killed_by(sig: Signal) -> ExitResult {
    ExitResult {
        exit_code: 0,
        signal: sig.number(),
        oom_killed: false,
        err: None,
    }
}

fn exited_with(code: i32) -> ExitResult {
    ExitResult {
        exit_code: code,
        signal: 0,
        oom_killed: false,
        err: None,
    }
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self::new(FaultPlan::none())
    }
}

impl Backend for FakeBackend {
    type Error = FakeError;

    fn probe(&mut self) -> HostFacts {
        self.calls.push(Call {
            at: self.now,
            op: CallOp::Probe,
            failed: None,
        });
        self.host.clone()
    }

    fn launch(&mut self, plan: &SandboxPlan) -> Result<Launched, FakeError> {
        let r = self.do_launch(plan);
        self.log(CallOp::Launch(plan.task.clone()), r)
    }

    fn signal(&mut self, task: &TaskId, signal: Signal) -> Result<(), FakeError> {
        let r = self.do_signal(task, signal);
        self.log(CallOp::Signal(task.clone(), signal), r)
    }

    fn kill_all(&mut self, task: &TaskId) -> Result<(), FakeError> {
        let r = self.do_kill_all(task);
        self.log(CallOp::KillAll(task.clone()), r)
    }

    fn reattach(&mut self, state: &DriverState) -> Result<Effect, FakeError> {
        let r = self.do_reattach(state);
        self.log(CallOp::Reattach(state.plan.task.clone()), r)
    }

    fn sample(&mut self, task: &TaskId) -> Result<Usage, FakeError> {
        let r = self.do_sample(task);
        self.log(CallOp::Sample(task.clone()), r)
    }

    fn cleanup(&mut self, task: &TaskId) -> Result<(), FakeError> {
        let r = self.do_cleanup(task);
        let killed = *r.as_ref().unwrap_or(&0);
        self.log(
            CallOp::Cleanup {
                task: task.clone(),
                killed,
            },
            r.map(|_| ()),
        )
    }

    fn drain_observations(&mut self, out: &mut Vec<Observation>) {
        if self.pending.is_empty() {
            return;
        }
        let n = self.pending.len();
        out.append(&mut self.pending);
        self.calls.push(Call {
            at: self.now,
            op: CallOp::Drain(n),
            failed: None,
        });
    }
}
