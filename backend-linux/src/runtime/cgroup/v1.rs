//! A task cgroup on the legacy (v1) per-controller hierarchies.

use super::files;
use super::{CgroupOps, V1Controller};
use crate::runtime::error::CgroupError;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Controller, MaxValue};
use pledge_core::{CgroupPlan, Usage};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One directory per mounted controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Cgroup {
    /// controller → (mount point, cgroup directory)
    dirs: BTreeMap<V1Controller, (PathBuf, PathBuf)>,
}

/// Nomad keeps the cpuset partition (`share`/`reserve`) only in the cpuset hierarchy; every
/// other controller's cgroup sits directly under the parent (`OpenFromCpusetCG1`).
fn without_partition(rel: &Path) -> PathBuf {
    let comps: Vec<_> = rel.components().collect();
    if comps.len() >= 2 {
        let parent = comps[comps.len() - 2].as_os_str();
        if parent == "share" || parent == "reserve" {
            let mut out = PathBuf::new();
            for (i, c) in comps.iter().enumerate() {
                if i != comps.len() - 2 {
                    out.push(c.as_os_str());
                }
            }
            return out;
        }
    }
    rel.to_path_buf()
}

impl V1Cgroup {
    /// The cgroup `rel` (cpuset form, with partition) under each mounted controller.
    pub fn new(mounts: &BTreeMap<V1Controller, PathBuf>, rel: &Path) -> Self {
        let flat = without_partition(rel);
        let dirs = mounts
            .iter()
            .map(|(c, m)| {
                let r = if *c == V1Controller::CpuSet {
                    rel
                } else {
                    flat.as_path()
                };
                (*c, (m.clone(), m.join(r)))
            })
            .collect();
        Self { dirs }
    }

    /// The directory of one controller, if mounted.
    pub fn dir(&self, c: V1Controller) -> Option<&Path> {
        self.dirs.get(&c).map(|(_, d)| d.as_path())
    }

    fn pair(&self, c: V1Controller) -> Result<(PathBuf, PathBuf), CgroupError> {
        self.dirs
            .get(&c)
            .cloned()
            .ok_or(CgroupError::Unavailable(match c {
                V1Controller::Cpu => "the v1 cpu controller is not mounted",
                V1Controller::CpuAcct => "the v1 cpuacct controller is not mounted",
                V1Controller::CpuSet => "the v1 cpuset controller is not mounted",
                V1Controller::Memory => "the v1 memory controller is not mounted",
                V1Controller::Pids => "the v1 pids controller is not mounted",
                V1Controller::Freezer => "the v1 freezer controller is not mounted",
            }))
    }

    fn unique_dirs(&self) -> Vec<PathBuf> {
        let set: BTreeSet<&PathBuf> = self.dirs.values().map(|(_, d)| d).collect();
        set.into_iter().cloned().collect()
    }
}

fn lib_err(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(cgroups_rs::fs::error::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Library {
        op,
        path,
        source: Box::new(source),
    }
}

impl CgroupOps for V1Cgroup {
    fn create(&self) -> Result<(), CgroupError> {
        for (c, (mount, dir)) in &self.dirs {
            let r = match c {
                // cgroups-rs copies cpuset.cpus and cpuset.mems from the nearest non-empty
                // ancestor into every new level: an empty cpuset.mems would refuse tasks.
                V1Controller::CpuSet => {
                    CpuSetController::new(dir.clone(), mount.clone(), false).create()
                }
                _ => FreezerController::new(dir.clone(), mount.clone(), false).create(),
            };
            r.map_err(lib_err("creating cgroup", dir))?;
        }
        Ok(())
    }

    fn apply(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        let (m, d) = self.pair(V1Controller::Cpu)?;
        let cpu = CpuController::new(d.clone(), m, false);
        cpu.set_shares(plan.cpu_shares.max(2))
            .map_err(lib_err("setting cpu.shares in", &d))?;
        if let Some((quota, period)) = plan.cpu_max {
            // The period first: the kernel checks quota against the current period.
            cpu.set_cfs_quota_and_period(None, Some(period))
                .and_then(|()| {
                    cpu.set_cfs_quota_and_period(
                        Some(i64::try_from(quota).unwrap_or(i64::MAX)),
                        None,
                    )
                })
                .map_err(lib_err("setting cpu.cfs_quota_us in", &d))?;
        }

        let (m, d) = self.pair(V1Controller::Memory)?;
        let mem = MemController::new(d.clone(), m, false);
        let max = plan
            .memory_max
            .map_or(-1, |b| i64::try_from(b).unwrap_or(-1));
        mem.set_limit(max)
            .map_err(lib_err("setting memory.limit_in_bytes in", &d))?;
        if let Some(low) = plan.memory_low {
            mem.set_soft_limit(i64::try_from(low).unwrap_or(i64::MAX))
                .map_err(lib_err("setting memory.soft_limit_in_bytes in", &d))?;
        }

        if let Some(cpus) = &plan.cpuset_cpus {
            let (m, d) = self.pair(V1Controller::CpuSet)?;
            CpuSetController::new(d.clone(), m, false)
                .set_cpus(cpus)
                .map_err(lib_err("setting cpuset.cpus in", &d))?;
        }

        if let Some(n) = plan.pids_max {
            let (m, d) = self.pair(V1Controller::Pids)?;
            PidController::new(d.clone(), m, false)
                .set_pid_max(MaxValue::Value(i64::try_from(n).unwrap_or(i64::MAX)))
                .map_err(lib_err("setting pids.max in", &d))?;
        } else if let Ok((m, d)) = self.pair(V1Controller::Pids) {
            PidController::new(d.clone(), m, false)
                .set_pid_max(MaxValue::Max)
                .map_err(lib_err("setting pids.max in", &d))?;
        }
        Ok(())
    }

    fn join_files(&self) -> Vec<PathBuf> {
        self.unique_dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn oom_file(&self) -> Option<PathBuf> {
        self.dir(V1Controller::Memory)
            .map(|d| d.join("memory.oom_control"))
    }

    fn nice_by_setpriority(&self) -> bool {
        true
    }

    fn pids(&self) -> Vec<u32> {
        let mut all = BTreeSet::new();
        for d in self.unique_dirs() {
            all.extend(files::read_pids(&d.join("cgroup.procs")));
        }
        all.into_iter().collect()
    }

    fn populated(&self) -> bool {
        !self.pids().is_empty()
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        use nix::sys::signal::{kill, SIGKILL};
        use nix::unistd::Pid;
        let kill_listed = |pids: Vec<u32>| {
            for pid in pids {
                if let Ok(p) = i32::try_from(pid) {
                    let _ = kill(Pid::from_raw(p), SIGKILL);
                }
            }
        };
        match self.dirs.get(&V1Controller::Freezer) {
            Some((m, d)) if d.is_dir() => {
                // v1 has no cgroup.kill: freeze so nothing can fork, kill every pid, thaw so
                // the kills are delivered (Nomad's lifeCG1.Kill does the same).
                let fz = FreezerController::new(d.clone(), m.clone(), false);
                fz.freeze().map_err(lib_err("freezing", d))?;
                for _ in 0..200 {
                    let st = std::fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
                    if st.trim() == "FROZEN" {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                kill_listed(self.pids());
                fz.thaw().map_err(lib_err("thawing", d))
            }
            _ => {
                for _ in 0..20 {
                    let pids = self.pids();
                    if pids.is_empty() {
                        break;
                    }
                    kill_listed(pids);
                }
                Ok(())
            }
        }
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let mut first = None;
        for d in self.unique_dirs() {
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    first.get_or_insert(CgroupError::Io {
                        op: "removing cgroup".into(),
                        path: d,
                        source,
                    });
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn usage(&self) -> Usage {
        let mut u = Usage::default();
        if let Some((m, d)) = self.dirs.get(&V1Controller::CpuAcct) {
            let acct = CpuAcctController::new(d.clone(), m.clone()).cpuacct();
            u.cpu_user_ns = acct.usage_user;
            u.cpu_system_ns = acct.usage_sys;
        }
        if let Some((m, d)) = self.dirs.get(&V1Controller::Cpu) {
            let cs = super::parse_flat_keyed(
                &CpuController::new(d.clone(), m.clone(), false).cpu().stat,
            );
            u.throttled_periods = cs.get("nr_throttled").copied().unwrap_or(0);
            u.throttled_ns = cs.get("throttled_time").copied().unwrap_or(0);
        }
        if let Some((m, d)) = self.dirs.get(&V1Controller::Memory) {
            let mem = MemController::new(d.clone(), m.clone(), false).memory_stat();
            let raw = &mem.stat.raw;
            let get = |total: &str, own: &str| {
                raw.get(total)
                    .or_else(|| raw.get(own))
                    .copied()
                    .unwrap_or(0)
            };
            u.memory_rss = get("total_rss", "rss");
            u.memory_cache = get("total_cache", "cache");
            u.memory_swap = get("total_swap", "swap");
            u.memory_usage = mem.usage_in_bytes;
            u.memory_max_usage = mem.max_usage_in_bytes;
            u.memory_kernel = files::read_u64(&d.join("memory.kmem.usage_in_bytes")).unwrap_or(0);
        }
        u.pids = self.pids();
        u
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.unique_dirs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_dropped_for_non_cpuset_controllers() {
        assert_eq!(
            without_partition(Path::new("nomad/share/a.t")),
            PathBuf::from("nomad/a.t")
        );
        assert_eq!(
            without_partition(Path::new("nomad/reserve/a.t")),
            PathBuf::from("nomad/a.t")
        );
        assert_eq!(
            without_partition(Path::new("nomad/a.t")),
            PathBuf::from("nomad/a.t")
        );
        let mounts: BTreeMap<_, _> = [
            (V1Controller::CpuSet, PathBuf::from("/cg/cpuset")),
            (V1Controller::Memory, PathBuf::from("/cg/memory")),
        ]
        .into_iter()
        .collect();
        let cg = V1Cgroup::new(&mounts, Path::new("nomad/reserve/a.t"));
        assert_eq!(
            cg.dir(V1Controller::CpuSet),
            Some(Path::new("/cg/cpuset/nomad/reserve/a.t"))
        );
        assert_eq!(
            cg.dir(V1Controller::Memory),
            Some(Path::new("/cg/memory/nomad/a.t"))
        );
    }
}
