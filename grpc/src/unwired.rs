//! A backend for when the Linux task runtime cannot start: it reports what the host offers as
//! "nothing", so Fingerprint says UNHEALTHY, and every task operation fails with a clear,
//! non-retryable error. The Driver service additionally answers StartTask/RecoverTask with
//! Unimplemented before reaching it, so no success is ever faked.

use pledge_core::{
    Backend, Classify, DriverState, Effect, FailureClass, HostFacts, LaunchStart, Launched,
    Observation, SandboxPlan, Signal, TaskId, Usage,
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

/// A real backend, or the unwired one when the real one could not start.
#[derive(Debug)]
pub enum Fallback<B> {
    /// The real backend.
    Real(B),
    /// Nothing available.
    Unwired(UnwiredBackend),
}

/// The error of a [`Fallback`] backend: the inner error's class and message chain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FallbackError {
    class: FailureClass,
    message: String,
}

impl Classify for FallbackError {
    fn class(&self) -> FailureClass {
        self.class
    }
}

fn lift<E: std::error::Error + Classify>(e: E) -> FallbackError {
    FallbackError {
        class: e.class(),
        message: pledge_core::backend::error_chain(&e),
    }
}

impl<B: Backend> Backend for Fallback<B> {
    type Error = FallbackError;
    fn probe(&mut self) -> HostFacts {
        match self {
            Self::Real(b) => b.probe(),
            Self::Unwired(u) => u.probe(),
        }
    }
    fn launch(&mut self, plan: &SandboxPlan) -> Result<Launched, FallbackError> {
        match self {
            Self::Real(b) => b.launch(plan).map_err(lift),
            Self::Unwired(u) => u.launch(plan).map_err(lift),
        }
    }
    fn signal(&mut self, task: &TaskId, signal: Signal) -> Result<(), FallbackError> {
        match self {
            Self::Real(b) => b.signal(task, signal).map_err(lift),
            Self::Unwired(u) => u.signal(task, signal).map_err(lift),
        }
    }
    fn kill_all(&mut self, task: &TaskId) -> Result<(), FallbackError> {
        match self {
            Self::Real(b) => b.kill_all(task).map_err(lift),
            Self::Unwired(u) => u.kill_all(task).map_err(lift),
        }
    }
    fn reattach(&mut self, state: &DriverState) -> Result<Effect, FallbackError> {
        match self {
            Self::Real(b) => b.reattach(state).map_err(lift),
            Self::Unwired(u) => u.reattach(state).map_err(lift),
        }
    }
    fn sample(&mut self, task: &TaskId) -> Result<Usage, FallbackError> {
        match self {
            Self::Real(b) => b.sample(task).map_err(lift),
            Self::Unwired(u) => u.sample(task).map_err(lift),
        }
    }
    fn cleanup(&mut self, task: &TaskId) -> Result<(), FallbackError> {
        match self {
            Self::Real(b) => b.cleanup(task).map_err(lift),
            Self::Unwired(u) => u.cleanup(task).map_err(lift),
        }
    }
    fn drain_observations(&mut self, out: &mut Vec<Observation>) {
        match self {
            Self::Real(b) => b.drain_observations(out),
            Self::Unwired(u) => u.drain_observations(out),
        }
    }
    // The optional methods too: a default here would hide the real backend's own.
    fn launch_start(&mut self, plan: &SandboxPlan) -> LaunchStart<FallbackError> {
        match self {
            Self::Real(b) => match b.launch_start(plan) {
                LaunchStart::Done(r) => LaunchStart::Done(r.map_err(lift)),
                LaunchStart::Waiting(w) => LaunchStart::Waiting(w),
            },
            Self::Unwired(u) => LaunchStart::Done(u.launch(plan).map_err(lift)),
        }
    }
    fn launch_finish(
        &mut self,
        plan: &SandboxPlan,
        waited: Box<dyn std::any::Any + Send>,
    ) -> Result<Launched, FallbackError> {
        match self {
            Self::Real(b) => b.launch_finish(plan, waited).map_err(lift),
            Self::Unwired(u) => u.launch(plan).map_err(lift),
        }
    }
    fn configured(&mut self, plugin: &pledge_core::PluginConfig) {
        match self {
            Self::Real(b) => b.configured(plugin),
            Self::Unwired(u) => u.configured(plugin),
        }
    }
}
