//! [`Driver`]: the task table, timers and the transition rules.

use super::{Input, Output, TaskView};
use crate::backend::HostFacts;
use crate::ids::TaskId;
use std::time::Instant;

/// The lifecycle state machine for all tasks of one plugin instance.
#[derive(Debug)]
pub struct Driver {
    _host: HostFacts,
}

impl Driver {
    /// A driver for a host with the given facts. It refuses task requests until SetConfig.
    pub fn new(host: HostFacts) -> Self {
        Self { _host: host }
    }

    /// Fires timers due at or before `now`, then applies `input`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        let _ = (now, input);
        todo!("core helper")
    }

    /// The next output, if any. Drain until `None` after every [`Driver::handle`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!("core helper")
    }

    /// The earliest pending deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("core helper")
    }

    /// A snapshot of one task, for InspectTask and the sim's invariants.
    pub fn task(&self, id: &TaskId) -> Option<TaskView> {
        let _ = id;
        todo!("core helper")
    }

    /// Test helper: [`Driver::handle`] then drain.
    pub fn step(&mut self, now: Instant, input: Input) -> Vec<Output> {
        self.handle(now, input);
        std::iter::from_fn(|| self.poll_output()).collect()
    }
}
