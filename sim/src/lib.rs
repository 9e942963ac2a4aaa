//! # pledge-sim
//!
//! Deterministic simulation of the task lifecycle: the real [`pledge_core::Driver`], the
//! in-memory [`pledge_backend_fake::FakeBackend`] and a virtual clock, driven through the same
//! drive loop the grpc shell runs ([`pledge_core::lifecycle::drive::settle`]; one loop, not a
//! copy), by generated sequences of Nomad requests, kernel events, time, plugin crashes and
//! injected faults.
//!
//! **Owns:** the [`World`] (system under test), the generators ([`step`]), the shadow model and
//! invariant checkers ([`run::Runner`]) and the seeded soak driver ([`soak`]).
//!
//! **Must not:** read a clock or draw randomness outside the generated steps and fault plan
//! (the one `Instant::now()` fixes virtual time zero and never reaches the trace), or
//! re-implement any lifecycle rule: it only submits, settles and compares with the fake.
//!
//! **Contract:** a run is a function of its `(FaultPlan, Vec<Step>)`; the same input gives the
//! same trace ([`World::fingerprint`]). After every step the checkers in [`run`] hold, or the
//! run fails with a [`run::Violation`] that carries the end of the trace.
//!
//! The drive loop, as both shells use it:
//! ```
//! use pledge_backend_fake::FakeBackend;
//! use pledge_core::lifecycle::drive::{settle, Sink};
//! use pledge_core::{Backend, DriverError, Driver, Input, RawPluginConfig, Reply, ReqId, Request, TaskEvent};
//! use std::time::Instant;
//!
//! struct Print;
//! impl Sink for Print {
//!     fn reply(&mut self, req: ReqId, reply: Result<Reply, DriverError>) { println!("{req}: {reply:?}"); }
//!     fn event(&mut self, ev: TaskEvent) { println!("event {}", ev.message); }
//! }
//!
//! let mut backend = FakeBackend::default();
//! let mut driver = Driver::new(backend.probe());
//! let t0 = Instant::now();
//! driver.handle(t0, Input::Request { req: ReqId(1), body: Request::SetConfig(Box::new(RawPluginConfig::default())) });
//! let handled = settle(&mut driver, &mut backend, &mut || t0, &mut Print, 1000);
//! assert!(handled.is_ok());
//! ```

pub mod run;
pub mod soak;
pub mod step;
pub mod world;

pub use run::{run, RunStats, Runner, Violation};
pub use step::{Step, SLOTS};
pub use world::{Stuck, World};
