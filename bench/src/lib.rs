//! # pledge-bench
//!
//! Owns: the whole-process benchmark harness (`pledge-bench` binary) and the criterion
//! micro-benchmarks (`benches/micro.rs`). Every figure it prints is a ratio against a
//! baseline measured in the same run on the same machine (absolute times only beside them).
//!
//! Must not: assert on timings (nothing here is a test of speed), or leave processes,
//! cgroups or files behind: every phase cleans up and the scale phase checks for leaks.
//!
//! Contract: `pledge-bench all [--quick]` runs every phase and prints Markdown tables plus one
//! verdict line per goal; `--quick` shrinks iteration counts to a smoke test of the harness.

pub mod bpf;
pub mod driver;
pub mod filter;
pub mod launch;
pub mod machine;
pub mod measure;
pub mod plugin;
pub mod procfs;
pub mod report;
