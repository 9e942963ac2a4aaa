//! Sandbox vocabulary (promises, unveil rules, signals) and the pure construction of a
//! [`plan::SandboxPlan`] from configs and Nomad's facts about a task.

pub mod plan;
pub mod promise;
pub mod render;
pub mod signal;
pub mod unveil;

pub use plan::SandboxPlan;
pub use promise::{Promise, PromiseSet};
pub use signal::Signal;
pub use unveil::{UnveilPerm, UnveilRule};
