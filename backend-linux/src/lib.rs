//! # pledge-backend-linux
//!
//! The real work of nomad-pledge-driver on Linux. It owns:
//! - [`sandbox`]: pledge for Linux — seccomp-BPF from the core's promise table, Landlock unveil,
//!   user switch, capabilities, rlimits, fd hygiene — and the `sandbox` launcher subcommand;
//! - [`runtime`]: the per-task supervisor, cgroups (v2 and v1), namespaces, log FIFOs, stats,
//!   exec into a task, re-attach after a plugin restart, and the [`pledge_core::Backend`] impl;
//! - [`learn`]: learn mode — observe a program with seccomp user notification and print the
//!   promises and unveils it needs.
//!
//! It must not decide policy: what to allow comes from the core's [`pledge_core::SandboxPlan`]
//! and policy tables; this crate only enforces it, and reports honestly what it could not.
//! Every `unsafe` block carries a `// SAFETY:` comment.

pub mod learn;
pub mod runtime;
pub mod sandbox;
