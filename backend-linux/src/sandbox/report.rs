//! What the sandbox enforces, reported honestly: before exec for each task
//! ([`SandboxReport`]) and per host for the fingerprint ([`host_capabilities`]).

use pledge_core::PromiseSet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How much of what was asked is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementStatus {
    /// Everything asked for is enforced.
    Full,
    /// Some of it is (see the missing list).
    Partial,
    /// None of it (kernel lacks the feature).
    None,
    /// Not asked for (`-V`, complain mode, or external pledge).
    Disabled,
}

/// The sandbox of one task, final before exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReport {
    /// Resolved program.
    pub program: PathBuf,
    /// Its ELF interpreter (PT_INTERP), when dynamic.
    pub interpreter: Option<PathBuf>,
    /// Promises enforced by seccomp (the task's, plus the implicit ones).
    pub promises: PromiseSet,
    /// Promises added because the program needs them to start (rpath and prot_exec for
    /// dynamic programs: ld.so opens and maps libraries after exec).
    pub implicit_promises: PromiseSet,
    /// seccomp filter size.
    pub seccomp_instructions: usize,
    /// Landlock enforcement.
    pub landlock: EnforcementStatus,
    /// Kernel Landlock ABI (0 = unavailable).
    pub landlock_abi: u32,
    /// Landlock features asked for that the kernel cannot enforce.
    pub landlock_missing: Vec<String>,
    /// Number of Landlock path rules.
    pub unveil_rules: usize,
    /// Unveil paths skipped because they do not exist.
    pub skipped_unveils: Vec<PathBuf>,
    /// Whether the capability bounding set is dropped.
    pub bounding_set_dropped: bool,
    /// Whether CAP_NET_BIND_SERVICE is kept as an ambient capability.
    pub ambient_net_bind_service: bool,
}

/// What this host can enforce, for the fingerprint (`driver.pledge.*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSandboxSupport {
    /// seccomp filters work (`PR_GET_SECCOMP` answers).
    pub seccomp: bool,
    /// Landlock ABI (0 = unavailable).
    pub landlock_abi: u32,
    /// Landlock TCP port rules (ABI >= 4).
    pub landlock_net: bool,
    /// Landlock signal and abstract-socket scopes (ABI >= 6).
    pub landlock_scopes: bool,
    /// Tasks can keep CAP_NET_BIND_SERVICE (we can raise ambient capabilities: root).
    pub cap_net_bind: bool,
}

/// Probes the host. Cheap: two prctl/syscalls and a read of our own capabilities.
pub fn host_capabilities() -> HostSandboxSupport {
    let abi = super::landlock_rules::probe_abi();
    HostSandboxSupport {
        seccomp: seccomp_available(),
        landlock_abi: abi,
        landlock_net: abi >= 4,
        landlock_scopes: abi >= 6,
        cap_net_bind: super::creds::has_effective_cap(super::creds::CAP_SETPCAP)
            && super::creds::has_effective_cap(super::creds::CAP_NET_BIND_SERVICE),
    }
}

/// Whether seccomp filtering is available.
pub fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments and only reads our own state.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    rc >= 0
}
