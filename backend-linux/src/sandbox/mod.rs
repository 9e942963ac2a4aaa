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
/// For the runtime's external (pledge.com) mode, which switches the user itself.
pub(crate) use creds::{apply as apply_credentials, resolve as resolve_credentials};
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// External mode: a stand-in pledge.com records the argv it is exec'd with.
    #[test]
    fn external_argv_runs_the_configured_pledge_with_the_plans_flags() {
        let dir = std::env::temp_dir().join(format!("pledge-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let record = dir.join("argv");
        let stand_in = dir.join("pledge.com");
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n",
            record.display()
        );
        std::fs::write(&stand_in, script).expect("write");
        let _ = std::process::Command::new("chmod")
            .arg("755")
            .arg(&stand_in)
            .status();
        let args: Vec<OsString> = [
            "-p",
            "stdio inet",
            "-v",
            "rw:/srv/a:b",
            "-k",
            "--",
            "python3",
            "-m",
            "http.server",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let parsed = cli::parse(&args).expect("parses");
        let mut plan = cli::build_plan(&parsed).expect("plan");
        assert!(
            external_argv(&plan).is_empty(),
            "no external executable configured"
        );
        plan.pledge_executable = Some(stand_in.clone());
        let argv = external_argv(&plan);
        assert_eq!(argv.first().map(String::as_str), stand_in.to_str());
        let st = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .expect("run stand-in");
        assert!(st.success());
        let recorded: Vec<String> = std::fs::read_to_string(&record)
            .expect("recorded")
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(recorded, argv[1..].to_vec());
        let p = recorded.iter().position(|a| a == "-p").expect("-p");
        assert_eq!(recorded[p + 1], "stdio inet");
        assert!(recorded.iter().any(|a| a == "rw:/srv/a:b"));
        assert!(recorded.contains(&"-k".to_string()));
        let dd = recorded.iter().position(|a| a == "--").expect("--");
        assert_eq!(&recorded[dd + 1..], ["python3", "-m", "http.server"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
