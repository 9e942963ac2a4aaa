//! Errors of the sandbox: one enum, each variant naming what failed and why.

use std::path::PathBuf;

/// Why a sandbox could not be prepared or entered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// `command` was not found in the search path, or is not an executable regular file.
    #[error("command {command:?}: {reason}")]
    ProgramNotFound {
        /// The command as configured.
        command: String,
        /// Why (not found in PATH, not executable, not a regular file).
        reason: String,
    },
    /// The program (or its `#!` interpreter) could not be read to find PT_INTERP.
    #[error("reading the ELF header of {path}")]
    ElfRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A string for execve holds a NUL byte.
    #[error("{what} contains a NUL byte")]
    NulByte {
        /// Which argument or variable.
        what: String,
    },
    /// The user does not exist.
    #[error("user {0:?}: no such user")]
    UnknownUser(String),
    /// The group does not exist.
    #[error("group {0:?}: no such group")]
    UnknownGroup(String),
    /// Looking up a user or group failed.
    #[error("looking up {what}")]
    Lookup {
        /// What was looked up.
        what: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// Landlock cannot enforce what the task asked for, and best effort is off.
    #[error(
        "the kernel cannot enforce what this task asks of unveil (Landlock ABI {abi}): missing {}; set unveil_best_effort to run anyway",
        missing.join(", ")
    )]
    LandlockUnenforceable {
        /// The kernel's ABI (0 = no Landlock).
        abi: u32,
        /// The features that would not be enforced.
        missing: Vec<String>,
    },
    /// Opening an unveil path failed (other than not existing).
    #[error("unveil path {path}")]
    UnveilPath {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Building or applying the Landlock ruleset failed.
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// Compiling the seccomp filter failed.
    #[error("compiling the seccomp filter")]
    Compile(#[from] super::compile::CompileError),
    /// Loading the seccomp filter failed.
    #[error("loading the seccomp filter")]
    SeccompLoad(#[source] seccompiler::Error),
    /// A privileged step failed (setrlimit, setresuid, prctl, ...).
    #[error("{step}")]
    Syscall {
        /// The step, e.g. `setresuid(1000)`.
        step: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The credentials after the switch are not the requested ones.
    #[error("credential check failed: {0}")]
    CredentialsNotVerified(String),
    /// execve failed. The process is already sandboxed when this is returned.
    #[error("executing {program}")]
    Exec {
        /// The resolved program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// Wraps the current errno for `step`.
    pub(crate) fn last_os(step: impl Into<String>) -> Self {
        Self::Syscall {
            step: step.into(),
            source: std::io::Error::last_os_error(),
        }
    }
}
