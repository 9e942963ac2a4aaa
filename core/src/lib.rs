//! # pledge-core
//!
//! The pure heart of nomad-pledge-driver. It owns:
//! - the configuration model (plugin config and task config) and its validation ([`config`]);
//! - promises, unveil rules, signals and the [`SandboxPlan`] built from them ([`sandbox`]);
//! - the policy tables (promise → syscalls, default unveils) as readable data ([`policy`]);
//! - the task lifecycle state machine ([`Driver`]) and the [`Backend`] trait that shells execute;
//! - the one cty-msgpack decoder for Nomad's config bytes ([`config::decode_task_config`]) and
//!   CPU percent from raw samples ([`stats`]).
//!
//! It must not do IO: no files, no sockets, no processes, no clock reads, no threads, no tokio.
//! A CI test fails if `cargo tree -p pledge-core -e normal` shows an IO crate.
//!
//! ## Contract of the state machine
//! Call [`Driver::handle`] with `now` and one [`Input`], then [`Driver::poll_output`] until it
//! returns `None`, then wait until [`Driver::poll_timeout`] (or the next input). `now` never
//! decreases. Every [`Request`] gets exactly one [`Output::Reply`]. Every [`Output::Command`] must
//! be executed (by [`execute`] on a [`Backend`]) and answered with [`Input::Completed`] carrying
//! the same [`OpId`]. Wall-clock times the core reports arrive inside backend outcomes.
//! The transition rules are listed in the docs of `lifecycle::driver` (and the README).
//!
//! ## Decisions a reader needs
//! - Unset or blank `promises` = `stdio rpath` (pledge.com's default without `-p`).
//! - Unveil `[perm:]path`: the text before the first `:` is a perm prefix only if it is made of
//!   `rwxc`; `..` is rejected, `.` and repeated slashes are normalized ([`sandbox::unveil`]).
//! - Limits (`pids_limit`, `rlimit_*`): `0` = unlimited, negative = error.
//! - Config errors name the attribute path: `config.args[1]`, `plugin.state_dir`.

pub mod backend;
pub mod config;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod policy;
pub mod sandbox;
pub mod stats;

pub use backend::{
    execute, finish_launch, Backend, Classify, DriverState, Effect, ExitResult, FailureClass,
    HostFacts, LaunchStart, LaunchWait, Launched, Observation, Outcome, Usage,
};
pub use config::{
    Importance, NamespaceMode, PluginConfig, RawPluginConfig, RawTaskConfig, SandboxMode,
    TaskConfig,
};
pub use error::{ConfigError, ConfigErrors, DriverError};
pub use ids::{OpId, ReqId, TaskId};
pub use lifecycle::{
    Command, Driver, Input, Output, PhaseName, Reply, Request, TaskEvent, TaskView,
};
pub use sandbox::{
    plan::{plan_sandbox, CgroupPlan, ExecPlan, RlimitPlan, SandboxPlan, TaskResources, TaskSpec},
    promise::{Promise, PromiseSet},
    signal::Signal,
    unveil::{UnveilPerm, UnveilRule},
};
pub use stats::{cpu_percent, CpuPercent};
