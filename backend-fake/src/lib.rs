//! # pledge-backend-fake
//!
//! An in-memory [`pledge_core::Backend`]: the same trait `pledge-backend-linux` implements, with
//! a simulated "kernel" (processes, supervisors, exit records) instead of the real one.
//!
//! **Owns:** the fake process table ([`FakeBackend`]), scripted process behaviour
//! ([`ProcScript`]), injected failures ([`FaultPlan`]), the call log ([`Call`]), world-control
//! methods the simulation uses (exits, OOM kills, forks, lost supervisors, plugin crashes,
//! virtual time), and backend conformance scenarios written once for every backend
//! ([`conformance`]).
//!
//! **Must not:** do IO, read a clock, or use randomness of its own. Every behaviour comes from
//! the script, the fault plan or a world-control call, all chosen by the caller (the sim's
//! generator), so a failing run shrinks and replays exactly. Collections are `BTreeMap`s only,
//! so iteration order never depends on hashing.
//!
//! **Contract:** time is virtual: the caller moves it forward with [`FakeBackend::set_time`]
//! (an offset from the fake's epoch); wall-clock times ([`std::time::SystemTime`]) reported to
//! the core are `wall0 + offset`. A plugin crash ([`FakeBackend::crash_plugin`]) loses only what
//! a real plugin process loses (undelivered observations, the watch on each task); processes,
//! supervisors and their recorded exit statuses survive it, as they do on Linux.

mod backend;
mod call;
pub mod conformance;
mod error;
mod fault;
mod plan;
mod script;

pub use backend::{FakeBackend, ProcRole};
pub use call::{Call, CallOp};
pub use error::FakeError;
pub use fault::{FaultPlan, FaultyOp};
pub use plan::plan_for;
pub use script::{ProcScript, SignalResponse};
