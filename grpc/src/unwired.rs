//! A backend for builds without the Linux task runtime: it reports what the host offers as
//! "nothing", so Fingerprint says UNHEALTHY, and every task operation fails with a clear,
//! non-retryable error. The Driver service additionally answers StartTask/RecoverTask with
//! Unimplemented before reaching it, so no success is ever faked.

use pledge_core::{
    Backend, Classify, DriverState, Effect, FailureClass, HostFacts, Launched, Observation,
    SandboxPlan, Signal, TaskId, Usage,
};

/// The error of every operation.
#[derive(Debug, thiserror::Error)]
#[error("the task runtime is not built into this plugin")]
pub struct NotBuilt;

impl Classify for NotBuilt {
    fn class(&self) -> FailureClass {
        FailureClass::Fatal
    }
}

/// The unwired backend.
#[derive(Debug, Default)]
pub struct UnwiredBackend;

impl Backend for UnwiredBackend {
    type Error = NotBuilt;
    fn probe(&mut self) -> HostFacts {
        HostFacts::default()
    }
    fn launch(&mut self, _plan: &SandboxPlan) -> Result<Launched, NotBuilt> {
        Err(NotBuilt)
    }
    fn signal(&mut self, _task: &TaskId, _signal: Signal) -> Result<(), NotBuilt> {
        Err(NotBuilt)
    }
    fn kill_all(&mut self, _task: &TaskId) -> Result<(), NotBuilt> {
        Err(NotBuilt)
    }
    fn reattach(&mut self, _state: &DriverState) -> Result<Effect, NotBuilt> {
        Err(NotBuilt)
    }
    fn sample(&mut self, _task: &TaskId) -> Result<Usage, NotBuilt> {
        Err(NotBuilt)
    }
    fn cleanup(&mut self, _task: &TaskId) -> Result<(), NotBuilt> {
        Ok(())
    }
    fn drain_observations(&mut self, _out: &mut Vec<Observation>) {}
}
