//! # pledge-fuzz
//!
//! Owns: the fuzz harness bodies for every parser that reads what Nomad or an operator sends
//! (cty-msgpack plugin and task configs, promise strings, unveil rules), one function per
//! cargo-fuzz target in `fuzz_targets/`.
//!
//! Must not: run anything, touch the filesystem, or depend on more than the core — the same
//! file (`targets.rs`) is compiled into the stable test pass `core/tests/fuzz_cty.rs`.
//!
//! Contract: each function accepts any bytes; it panics only when a parser breaks an invariant
//! (see [`targets`]), which libFuzzer then records as a crash in `fuzz/artifacts/<target>/`.

pub mod targets;

pub use targets::{plugin_config, promises, task_config, unveil};
