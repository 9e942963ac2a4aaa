//! The one drive loop. Both shells (the grpc crate's shell thread and the sim's world) call
//! [`settle`] after every input, so the simulation exercises exactly what production runs.

use super::{Driver, Input, Output, Reply, TaskEvent};
use crate::backend::{
    execute, finish_launch, launch_outcome, Backend, LaunchStart, LaunchWait, Observation,
};
use crate::error::DriverError;
use crate::ids::ReqId;
use std::time::Instant;

/// Where the loop delivers what is not a backend command.
pub trait Sink {
    /// The reply to request `req`.
    fn reply(&mut self, req: ReqId, reply: Result<Reply, DriverError>);
    /// A task event.
    fn event(&mut self, event: TaskEvent);
    /// Called before each backend command runs (the sim records and may inject faults here).
    fn before_command(&mut self, _cmd: &super::Command) {}
    /// A launch waits for its task to start. A sink that can wait elsewhere takes `wait` and
    /// later feeds `Input::Completed { op, .. }` with [`finish_launch`]'s outcome, and returns
    /// `None`; the default hands it back, and the loop waits here.
    fn wait_elsewhere(
        &mut self,
        _op: crate::ids::OpId,
        _plan: &crate::SandboxPlan,
        wait: LaunchWait,
    ) -> Option<LaunchWait> {
        Some(wait)
    }
}

/// Drains the driver: executes every command on `backend` and feeds its outcome back, delivers
/// replies and events to `sink`, and pulls the backend's observations, until nothing is left or
/// `max_steps` outputs were handled. `now` is read before each `handle`. Returns the number of
/// outputs handled; `Err(n)` if the bound was hit (a liveness failure the sim reports).
pub fn settle<B: Backend>(
    driver: &mut Driver,
    backend: &mut B,
    now: &mut dyn FnMut() -> Instant,
    sink: &mut dyn Sink,
    max_steps: usize,
) -> Result<usize, usize> {
    let mut steps = 0;
    let mut seen: Vec<Observation> = Vec::new();
    loop {
        while let Some(out) = driver.poll_output() {
            steps += 1;
            if steps > max_steps {
                return Err(steps);
            }
            match out {
                Output::Command { op, cmd } => {
                    sink.before_command(&cmd);
                    let outcome = match &cmd {
                        super::Command::Launch(plan) => match backend.launch_start(plan) {
                            LaunchStart::Done(r) => launch_outcome(r),
                            LaunchStart::Waiting(wait) => {
                                match sink.wait_elsewhere(op, plan, wait) {
                                    // The sink completes it later.
                                    None => continue,
                                    Some(wait) => finish_launch(backend, plan, wait()),
                                }
                            }
                        },
                        other => execute(backend, other),
                    };
                    driver.handle(now(), Input::Completed { op, outcome });
                }
                Output::Reply { req, reply } => sink.reply(req, reply),
                Output::Event(ev) => sink.event(ev),
            }
        }
        backend.drain_observations(&mut seen);
        if seen.is_empty() {
            return Ok(steps);
        }
        for o in seen.drain(..) {
            driver.handle(now(), Input::Observed(o));
        }
    }
}
