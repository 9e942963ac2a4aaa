//! # pledge-fuzz
//!
//! Owns: the fuzz harness bodies for every parser that reads what Nomad or an operator sends
//! (cty-msgpack plugin and task configs, promise strings, unveil rules), one function per
//! cargo-fuzz target in `fuzz_targets/`.
//!
//! Must not: run anything or touch the filesystem. `targets.rs` depends on the core alone (it
//! is compiled into `core/tests/fuzz_cty.rs`); `grpc_targets.rs` on the grpc crate too (it is
//! compiled into `grpc/tests/fuzz_replay.rs`).
//!
//! Contract: each function accepts any bytes; it panics only when a parser breaks an invariant
//! (see [`targets`]), which libFuzzer then records as a crash in `fuzz/artifacts/<target>/`.

pub mod grpc_targets;
pub mod targets;

pub use grpc_targets::{hcl_config, hclspec, job_file};
pub use targets::{plugin_config, promises, task_config, unveil};
