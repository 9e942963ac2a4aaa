//! A task cgroup on the unified (v2) hierarchy.

use super::files;
use super::CgroupOps;
use crate::runtime::error::CgroupError;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use pledge_core::{CgroupPlan, Usage};
use std::path::{Path, PathBuf};

/// Controllers enabled on every ancestor so the task's cgroup gets their interface files
/// (the set Nomad activates on nomad.slice).
const CONTROLLERS: [&str; 5] = ["cpuset", "cpu", "io", "memory", "pids"];

/// `<root>/<path>` on a cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Cgroup {
    root: PathBuf,
    dir: PathBuf,
}

impl V2Cgroup {
    /// The cgroup `rel` below `root` (not created yet).
    pub fn new(root: PathBuf, rel: &Path) -> Self {
        let dir = root.join(rel);
        Self { root, dir }
    }

    /// The cgroup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lib_err(
        &self,
        op: &'static str,
    ) -> impl FnOnce(cgroups_rs::fs::error::Error) -> CgroupError {
        let path = self.dir.clone();
        move |source| CgroupError::Library {
            op,
            path,
            source: Box::new(source),
        }
    }

    /// Enables our controllers in `dir/cgroup.subtree_control`, one at a time and best effort:
    /// a controller the parent does not offer, or a cgroup with processes of its own (the
    /// no-internal-processes rule), is not fatal here; the limit write that needs it reports
    /// the missing file clearly instead.
    fn enable_controllers(dir: &Path) {
        let offered = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let enabled =
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        for c in CONTROLLERS {
            let has = |s: &str| s.split_ascii_whitespace().any(|w| w == c);
            if has(&offered) && !has(&enabled) {
                if let Err(e) = files::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"))
                {
                    tracing::warn!(error = %crate::runtime::chain(&e), "enabling cgroup controller {c}");
                }
            }
        }
    }
}

impl CgroupOps for V2Cgroup {
    fn create(&self) -> Result<(), CgroupError> {
        // Walk from the mount down, enabling controllers on each ancestor before creating its
        // child. cgroups-rs' own create_v2_cgroup reads the controller list from the fixed
        // /sys/fs/cgroup, so it cannot serve an injected root.
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut cur = self.root.clone();
        for comp in rel.components() {
            Self::enable_controllers(&cur);
            cur.push(comp);
            if !cur.is_dir() {
                std::fs::create_dir(&cur)
                    .or_else(|e| if cur.is_dir() { Ok(()) } else { Err(e) })
                    .map_err(|source| CgroupError::Io {
                        op: "creating cgroup".into(),
                        path: cur.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    fn apply(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        let cpu = CpuController::new(self.dir.clone(), self.root.clone(), true);
        cpu.set_shares(plan.cpu_weight.clamp(1, 10_000))
            .map_err(self.lib_err("setting cpu.weight in"))?;
        if let Some((quota, period)) = plan.cpu_max {
            let quota = i64::try_from(quota).unwrap_or(i64::MAX);
            cpu.set_cfs_quota_and_period(Some(quota), Some(period))
                .map_err(self.lib_err("setting cpu.max in"))?;
        }
        // cpu.weight.nice is the same kernel value as cpu.weight seen through the nice scale:
        // written last, importance decides the weight, as in the original driver (which wrote
        // only cpu.weight.nice). cgroups-rs has no setter for it.
        files::write(
            &self.dir.join("cpu.weight.nice"),
            &plan.nice.clamp(-20, 19).to_string(),
        )?;

        let mem = MemController::new(self.dir.clone(), self.root.clone(), true);
        let max = plan
            .memory_max
            .map_or(-1, |b| i64::try_from(b).unwrap_or(-1));
        mem.set_limit(max)
            .map_err(self.lib_err("setting memory.max in"))?;
        if let Some(low) = plan.memory_low {
            mem.set_soft_limit(i64::try_from(low).unwrap_or(i64::MAX))
                .map_err(self.lib_err("setting memory.low in"))?;
        }

        if let Some(cpus) = &plan.cpuset_cpus {
            CpuSetController::new(self.dir.clone(), self.root.clone(), true)
                .set_cpus(cpus)
                .map_err(self.lib_err("setting cpuset.cpus in"))?;
        }

        let pids = PidController::new(self.dir.clone(), self.root.clone(), true);
        let limit = plan.pids_max.map_or(MaxValue::Max, |n| {
            MaxValue::Value(i64::try_from(n).unwrap_or(i64::MAX))
        });
        pids.set_pid_max(limit)
            .map_err(self.lib_err("setting pids.max in"))?;
        Ok(())
    }

    fn join_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    fn oom_file(&self) -> Option<PathBuf> {
        Some(self.dir.join("memory.events"))
    }

    fn nice_by_setpriority(&self) -> bool {
        false
    }

    fn pids(&self) -> Vec<u32> {
        files::read_pids(&self.dir.join("cgroup.procs"))
    }

    fn populated(&self) -> bool {
        match files::read_keyed(&self.dir.join("cgroup.events")).get("populated") {
            Some(n) => *n != 0,
            None => !self.pids().is_empty(),
        }
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        // cgroup.kill (5.14+) kills the whole subtree atomically. cgroups-rs' Cgroup::kill
        // needs a Hierarchy fixed at /sys/fs/cgroup, so the one file is written directly.
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() {
            return files::write(&kill, "1");
        }
        let freezer = FreezerController::new(self.dir.clone(), self.root.clone(), true);
        freezer.freeze().map_err(self.lib_err("freezing"))?;
        for pid in self.pids() {
            if let Ok(p) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::SIGKILL,
                );
            }
        }
        freezer.thaw().map_err(self.lib_err("thawing"))
    }

    fn remove(&self) -> Result<(), CgroupError> {
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CgroupError::Io {
                op: "removing cgroup".into(),
                path: self.dir.clone(),
                source,
            }),
        }
    }

    fn usage(&self) -> Usage {
        let cpu = CpuController::new(self.dir.clone(), self.root.clone(), true);
        let cs = super::parse_flat_keyed(&cpu.cpu().stat);
        let mem = MemController::new(self.dir.clone(), self.root.clone(), true).memory_stat();
        let stat = &mem.stat.raw;
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        let kernel = stat.get("kernel").copied().unwrap_or_else(|| {
            get("kernel_stack") + get("pagetables") + get("slab") + get("percpu") + get("sock")
        });
        Usage {
            at: None,
            cpu_user_ns: cs
                .get("user_usec")
                .copied()
                .unwrap_or(0)
                .saturating_mul(1000),
            cpu_system_ns: cs
                .get("system_usec")
                .copied()
                .unwrap_or(0)
                .saturating_mul(1000),
            throttled_periods: cs.get("nr_throttled").copied().unwrap_or(0),
            throttled_ns: cs
                .get("throttled_usec")
                .copied()
                .unwrap_or(0)
                .saturating_mul(1000),
            memory_rss: get("anon"),
            memory_cache: get("file"),
            memory_swap: files::read_u64(&self.dir.join("memory.swap.current")).unwrap_or(0),
            memory_usage: mem.usage_in_bytes,
            memory_max_usage: mem.max_usage_in_bytes,
            memory_kernel: kernel,
            pids: self.pids(),
        }
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}
