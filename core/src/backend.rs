//! The backend trait: effects the core may request. Implemented by `pledge-backend-linux` and
//! `pledge-backend-fake`. The core never calls it; shells (grpc, sim) do, through [`execute`].

use crate::ids::TaskId;
use crate::lifecycle::Command;
use crate::sandbox::{SandboxPlan, Signal};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::SystemTime;

/// Whether a failure is worth retrying (Nomad's RecoverableError), fatal, or the thing is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureClass {
    /// Retrying may succeed (Nomad restarts the task per its restart policy).
    Retryable,
    /// Retrying will not help (bad program path, unenforceable sandbox).
    Fatal,
    /// The process or its supervisor no longer exists.
    Gone,
}

/// Classifies a backend error.
pub trait Classify {
    /// The failure class.
    fn class(&self) -> FailureClass;
}

/// Which cgroup hierarchy the host offers for resource control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupMode {
    /// Unified hierarchy with controllers.
    V2,
    /// Legacy per-controller hierarchies (also hybrid hosts, as Nomad treats them).
    V1,
    /// No usable cgroups.
    #[default]
    None,
}

/// What the host can enforce, probed once by the backend; feeds validation and Fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Cgroup mode.
    pub cgroup: CgroupMode,
    /// Landlock ABI version (0 = unavailable).
    pub landlock_abi: u32,
    /// seccomp filters available.
    pub seccomp: bool,
    /// Running as root.
    pub root: bool,
    /// CPU ids usable by tasks.
    pub cpus: Vec<u32>,
    /// Kernel release, for the fingerprint.
    pub kernel: String,
    /// MHz Nomad counts per core (its `cpu` unit); 0 = unknown. Used to turn `resources.cpu`
    /// into a cpu.max quota when the plugin's `cpu_hard_limit` is on.
    pub cpu_mhz_per_core: u64,
}

/// Identity of a live task, enough to re-attach after a plugin restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// The supervisor's pid.
    pub supervisor_pid: u32,
    /// The supervisor's start time (clock ticks since boot, /proc/PID/stat field 22).
    pub supervisor_start: u64,
    /// The task's main pid (as seen from the host).
    pub pid: u32,
    /// The task's start time in clock ticks since boot.
    pub pid_start: u64,
    /// The task's state directory (exit status file, plan, sockets).
    pub state_dir: PathBuf,
}

/// Persisted in `TaskHandle.driver_state`: self-sufficient, because Nomad does not keep the
/// driver config across agent restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverState {
    /// Schema version of this struct.
    pub version: u32,
    /// The plan the task was launched with.
    pub plan: SandboxPlan,
    /// Process identity.
    pub process: ProcessIdentity,
    /// Wall-clock start time.
    pub started_at: SystemTime,
}

impl DriverState {
    /// The current schema version.
    pub const VERSION: u32 = 1;
}

/// A successful launch or re-attach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launched {
    /// State to persist in the handle.
    pub state: DriverState,
    /// How fully the sandbox is enforced, for a task event (e.g. `landlock: fully enforced (ABI 7)`).
    pub sandbox_report: String,
}

/// How a task ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitResult {
    /// Exit code (0 when killed by a signal).
    pub exit_code: i32,
    /// Terminating signal (0 when it exited).
    pub signal: i32,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// An error about the exit itself (e.g. the supervisor was lost).
    pub err: Option<String>,
}

/// A raw resource sample. Percentages are derived by [`crate::stats::cpu_percent`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// When sampled.
    pub at: Option<SystemTime>,
    /// User CPU time, ns.
    pub cpu_user_ns: u64,
    /// System CPU time, ns.
    pub cpu_system_ns: u64,
    /// Throttled periods.
    pub throttled_periods: u64,
    /// Throttled time, ns.
    pub throttled_ns: u64,
    /// Resident anonymous memory, bytes.
    pub memory_rss: u64,
    /// Page cache, bytes.
    pub memory_cache: u64,
    /// Swap, bytes.
    pub memory_swap: u64,
    /// Current usage, bytes.
    pub memory_usage: u64,
    /// Peak usage, bytes.
    pub memory_max_usage: u64,
    /// Kernel memory usage, bytes.
    pub memory_kernel: u64,
    /// Pids in the task.
    pub pids: Vec<u32>,
}

/// Something the backend noticed on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The task exited (reaped by its supervisor).
    Exited {
        /// Which task.
        task: TaskId,
        /// How.
        result: ExitResult,
        /// When.
        at: SystemTime,
    },
    /// A sandbox event worth telling the operator (complain-mode violation, partial Landlock).
    Note {
        /// Which task.
        task: TaskId,
        /// Message for the task event.
        message: String,
    },
}

/// What a backend call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing to report.
    Done,
    /// A task was launched or re-attached and is running.
    Launched(Box<Launched>),
    /// A re-attached task had already exited.
    AlreadyExited {
        /// Its state.
        state: Box<DriverState>,
        /// How it ended.
        result: ExitResult,
        /// When.
        at: SystemTime,
    },
    /// A resource sample.
    Usage(Box<Usage>),
}

/// The result of one [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Ok(Effect),
    /// It failed.
    Failed {
        /// Class.
        class: FailureClass,
        /// Message with context.
        message: String,
    },
}

/// The blocking part of a launch, handed out by [`Backend::launch_start`]: call it on any
/// thread (it waits for the task to start), then give what it returns to
/// [`Backend::launch_finish`] on the driver's thread.
pub type LaunchWait = Box<dyn FnOnce() -> Box<dyn std::any::Any + Send> + Send>;

/// How [`Backend::launch_start`] went.
// Returned once per launch and consumed at once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum LaunchStart<E> {
    /// The launch is complete (or failed) already.
    Done(Result<Launched, E>),
    /// The launch waits for the task to start; see [`LaunchWait`].
    Waiting(LaunchWait),
}

/// Effects the core may request.
pub trait Backend {
    /// The backend's error type.
    type Error: std::error::Error + Classify;
    /// What the host can enforce.
    fn probe(&mut self) -> HostFacts;
    /// Launches a task (supervisor, cgroup, namespaces, sandbox, exec).
    fn launch(&mut self, plan: &SandboxPlan) -> Result<Launched, Self::Error>;
    /// Sends `signal` to the task's main process.
    fn signal(&mut self, task: &TaskId, signal: Signal) -> Result<(), Self::Error>;
    /// Kills every process of the task (cgroup.kill, or freeze + kill on v1).
    fn kill_all(&mut self, task: &TaskId) -> Result<(), Self::Error>;
    /// Re-attaches to a task launched by an earlier plugin process. Returns
    /// [`Effect::Launched`] or [`Effect::AlreadyExited`].
    fn reattach(&mut self, state: &DriverState) -> Result<Effect, Self::Error>;
    /// Samples resource usage.
    fn sample(&mut self, task: &TaskId) -> Result<Usage, Self::Error>;
    /// Removes everything the task left (cgroup, state dir). Idempotent.
    fn cleanup(&mut self, task: &TaskId) -> Result<(), Self::Error>;
    /// Moves pending observations into `out`. Never blocks.
    fn drain_observations(&mut self, out: &mut Vec<Observation>);
    /// Starts a launch. A backend whose launch blocks until the task has started may hand the
    /// wait out ([`LaunchStart::Waiting`]), so the shell can keep serving other tasks while it
    /// runs. Default: the whole [`Backend::launch`], now.
    fn launch_start(&mut self, plan: &SandboxPlan) -> LaunchStart<Self::Error> {
        LaunchStart::Done(self.launch(plan))
    }
    /// Completes a launch that [`Backend::launch_start`] handed out, with what its wait
    /// returned. Only backends that return [`LaunchStart::Waiting`] are asked; the default
    /// launches again from the start.
    fn launch_finish(
        &mut self,
        plan: &SandboxPlan,
        _waited: Box<dyn std::any::Any + Send>,
    ) -> Result<Launched, Self::Error> {
        self.launch(plan)
    }
    /// The plugin's configuration took effect (SetConfig): a backend that keeps task state on
    /// disk learns where, so cleanup of an id it does not track (one an earlier plugin
    /// instance failed to clean) finds what is left there. Default: nothing to learn.
    fn configured(&mut self, _plugin: &crate::PluginConfig) {}
}

fn failed<E: std::error::Error + Classify>(e: E) -> Outcome {
    Outcome::Failed {
        class: e.class(),
        message: error_chain(&e),
    }
}

/// A launch's result as the core's [`Outcome`].
pub fn launch_outcome<E: std::error::Error + Classify>(r: Result<Launched, E>) -> Outcome {
    match r {
        Ok(l) => Outcome::Ok(Effect::Launched(Box::new(l))),
        Err(e) => failed(e),
    }
}

/// The outcome of a launch [`Backend::launch_start`] handed out, once its wait returned
/// `waited`.
pub fn finish_launch<B: Backend>(
    backend: &mut B,
    plan: &SandboxPlan,
    waited: Box<dyn std::any::Any + Send>,
) -> Outcome {
    launch_outcome(backend.launch_finish(plan, waited))
}

/// The only place a [`Command`] becomes a backend call.
pub fn execute<B: Backend>(backend: &mut B, cmd: &Command) -> Outcome {
    let fail = |e: B::Error| failed(e);
    match cmd {
        Command::Launch(plan) => launch_outcome(backend.launch(plan)),
        Command::Signal { task, signal } => match backend.signal(task, *signal) {
            Ok(()) => Outcome::Ok(Effect::Done),
            Err(e) => fail(e),
        },
        Command::KillAll { task } => match backend.kill_all(task) {
            Ok(()) => Outcome::Ok(Effect::Done),
            Err(e) => fail(e),
        },
        Command::Reattach { state } => match backend.reattach(state) {
            Ok(eff) => Outcome::Ok(eff),
            Err(e) => fail(e),
        },
        Command::Sample { task } => match backend.sample(task) {
            Ok(u) => Outcome::Ok(Effect::Usage(Box::new(u))),
            Err(e) => fail(e),
        },
        Command::Cleanup { task } => match backend.cleanup(task) {
            Ok(()) => Outcome::Ok(Effect::Done),
            Err(e) => fail(e),
        },
    }
}

/// `outer: inner: innermost`, so context and cause are both shown, once each.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
