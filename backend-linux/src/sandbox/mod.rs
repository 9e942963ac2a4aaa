//! Sandbox enforcement (seccomp, Landlock, users, rlimits) and the `sandbox` subcommand.

pub mod cli;
