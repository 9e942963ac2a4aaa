//! What the host can enforce, for validation and the fingerprint.

use crate::runtime::cgroup::CgroupRoots;
use pledge_core::HostFacts;

/// Probes the host once: cgroup mode, Landlock ABI, seccomp, root, usable CPUs, kernel.
pub fn host_facts(roots: &CgroupRoots) -> HostFacts {
    let mut cpus = roots.cpus();
    if cpus.is_empty() {
        if let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
            cpus = (0..u32::try_from(nix::sched::CpuSet::count()).unwrap_or(0))
                .filter(|c| {
                    usize::try_from(*c)
                        .map(|c| set.is_set(c).unwrap_or(false))
                        .unwrap_or(false)
                })
                .collect();
        }
    }
    let sandbox = crate::sandbox::host_capabilities();
    HostFacts {
        cgroup: roots.mode,
        landlock_abi: sandbox.landlock_abi,
        seccomp: sandbox.seccomp,
        root: nix::unistd::geteuid().is_root(),
        cpus,
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpu_mhz_per_core: cpu_mhz(),
    }
}

/// Per-core MHz as Nomad fingerprints it: the maximum frequency of cpu0, else the largest
/// `cpu MHz` in /proc/cpuinfo; 0 when neither is known.
fn cpu_mhz() -> u64 {
    if let Some(khz) =
        std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    {
        return khz / 1000;
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .fold(0.0, f64::max) as u64
}
