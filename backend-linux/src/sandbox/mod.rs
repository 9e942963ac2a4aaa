//! Sandbox enforcement (seccomp, Landlock, users, rlimits) and the `sandbox` subcommand.
//!
//! ## Contract (for the runtime's forked task child and for the `sandbox` subcommand)
//! Call, in the task child, after namespaces, cgroup placement and stdio setup, while the
//! process is single-threaded:
//! 1. [`prepare`]`(&plan)`: all IO that can fail with a clear message, before anything
//!    irreversible: resolve the program against `PATH`, read its ELF header (PT_INTERP), resolve
//!    user and groups, open the Landlock path fds, compile the BPF program, build argv/envp.
//!    Nothing about the process changes. On error the caller reports it and exits.
//! 2. Read [`Prepared::report`] (Landlock status and ABI, seccomp instruction count, implicit
//!    promises) and send it to the supervisor if wanted — it is final before exec.
//! 3. [`enter_and_exec`]`(prepared)`: rlimits, fds > 2 marked close-on-exec, capability bounding
//!    set dropped, setgroups/setresgid/setresuid (verified), ambient CAP_NET_BIND_SERVICE if
//!    asked, NO_NEW_PRIVS, Landlock `restrict_self`, seccomp load, `execve`. Only returns on
//!    failure. A failure after the seccomp filter is loaded cannot be reported through the
//!    error (the filter may forbid writing); the process exits 127 instead, like pledge.com.
//!
//! With `plan.pledge_executable` set (external mode) the runtime execs [`external_argv`]
//! instead, under nothing but its own namespaces and cgroup.

pub mod cli;
mod compile;
mod creds;
mod elf;
mod error;
mod exec;
mod landlock_rules;
mod prologue;
mod readme;
mod report;
mod rlimits;
mod syscalls;

pub use compile::{
    compile_filter, CompileError, CompiledFilter, FilterArch, FilterOptions, Penalty,
};
pub use error::SandboxError;
pub use exec::{enter_and_exec, prepare, Prepared};
pub use report::{
    host_capabilities, seccomp_available, EnforcementStatus, HostSandboxSupport, SandboxReport,
};
pub use syscalls::name as syscall_name;
// Learn mode mimics the prologue (ENOSYS for the same calls) and maps names to numbers.
pub(crate) use prologue::{ENOSYS_SYSCALLS, FIRST_UNKNOWN_NR};
pub(crate) use syscalls::number as syscall_number;

use pledge_core::SandboxPlan;

/// The command line for an external pledge.com (`plan.pledge_executable`), rendered by the core
/// from the same plan. Empty when the plan has no external executable.
pub fn external_argv(plan: &SandboxPlan) -> Vec<String> {
    match &plan.pledge_executable {
        Some(exe) => pledge_core::sandbox::render::pledge_argv(plan, &exe.to_string_lossy()),
        None => Vec::new(),
    }
}
