//! Task cgroups on v2 and v1, behind one small trait ([`CgroupOps`]) with enum dispatch
//! ([`TaskCgroup`]). Mount points are injected through [`CgroupRoots`], so unit tests run the
//! same code against a tempdir laid out like cgroupfs.
//!
//! Paths follow Nomad (`client/lib/cgroupslib`): on v2 the task's own cgroup
//! (`nomad.slice/{share,reserve}.slice/<alloc>.<task>.scope`); on v1 `cpuset/<v1_path>` and,
//! for every other controller, `<ctrl>/<v1_path>` with the `share`/`reserve` partition
//! component removed (Nomad's `OpenFromCpusetCG1`).

mod files;
mod v1;
mod v2;

pub use files::{parse_flat_keyed, read_keyed};
pub use v1::V1Cgroup;
pub use v2::V2Cgroup;

use crate::runtime::error::CgroupError;
use pledge_core::{backend::CgroupMode, CgroupPlan, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The v1 controllers the runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum V1Controller {
    /// cpu.shares, cfs quota, throttling stats.
    Cpu,
    /// CPU usage accounting.
    CpuAcct,
    /// Pinned cores.
    CpuSet,
    /// Memory limits, usage, OOM.
    Memory,
    /// pids.max.
    Pids,
    /// Freeze for a race-free kill.
    Freezer,
}

impl V1Controller {
    /// Every controller, in the order they are created.
    pub const ALL: [Self; 6] = [
        Self::Freezer,
        Self::Memory,
        Self::Pids,
        Self::CpuSet,
        Self::CpuAcct,
        Self::Cpu,
    ];

    /// The name in `/proc/self/mountinfo` super options.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::CpuAcct => "cpuacct",
            Self::CpuSet => "cpuset",
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Freezer => "freezer",
        }
    }
}

/// Where the cgroup hierarchies are mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRoots {
    /// Which hierarchy tasks are placed in.
    pub mode: CgroupMode,
    /// The unified mount (v2 mode).
    pub v2: PathBuf,
    /// Mount point per v1 controller (v1 mode).
    pub v1: BTreeMap<V1Controller, PathBuf>,
}

/// cgroupfs' superblock magic (`CGROUP2_SUPER_MAGIC`).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

impl CgroupRoots {
    /// The standard mount point.
    pub const SYS_FS_CGROUP: &'static str = "/sys/fs/cgroup";

    /// Detects the host's setup: pure v2 when `/sys/fs/cgroup` is cgroup2; otherwise v1 when
    /// v1 controllers are mounted (hybrid hosts count as v1, as Nomad treats them); otherwise
    /// none.
    pub fn detect() -> Self {
        let base = PathBuf::from(Self::SYS_FS_CGROUP);
        if let Ok(st) = nix::sys::statfs::statfs(&base) {
            #[allow(clippy::unnecessary_cast)] // f_type's width differs per arch
            if st.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC {
                return Self::v2_at(base);
            }
        }
        let mut v1 = BTreeMap::new();
        for m in cgroups_rs::fs::hierarchies::mountinfo_self() {
            for c in V1Controller::ALL {
                if m.super_opts.iter().any(|o| o == c.name()) {
                    v1.entry(c).or_insert_with(|| m.mount_point.clone());
                }
            }
        }
        if v1.contains_key(&V1Controller::Memory) || v1.contains_key(&V1Controller::Cpu) {
            Self::v1_at(v1)
        } else {
            Self {
                mode: CgroupMode::None,
                v2: base,
                v1: BTreeMap::new(),
            }
        }
    }

    /// A v2 setup rooted at `root`.
    pub fn v2_at(root: PathBuf) -> Self {
        Self {
            mode: CgroupMode::V2,
            v2: root,
            v1: BTreeMap::new(),
        }
    }

    /// A v1 setup with the given controller mounts.
    pub fn v1_at(mounts: BTreeMap<V1Controller, PathBuf>) -> Self {
        Self {
            mode: CgroupMode::V1,
            v2: PathBuf::from(Self::SYS_FS_CGROUP),
            v1: mounts,
        }
    }

    /// CPUs the hierarchy's root offers tasks (empty if unknown).
    pub fn cpus(&self) -> Vec<u32> {
        let file = match self.mode {
            CgroupMode::V2 => self.v2.join("cpuset.cpus.effective"),
            CgroupMode::V1 => match self.v1.get(&V1Controller::CpuSet) {
                Some(m) => m.join("cpuset.effective_cpus"),
                None => return Vec::new(),
            },
            CgroupMode::None => return Vec::new(),
        };
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| parse_cpu_list(s.trim()))
            .unwrap_or_default()
    }
}

/// Parses a cpu list like `0-3,6,8-9`.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// Checks that a planned cgroup path is relative, non-empty, without `..` or `.`.
pub fn check_rel_path(path: &str) -> Result<PathBuf, CgroupError> {
    let bad = |reason| CgroupError::BadPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("must not be empty"));
    }
    if path.contains('\0') {
        return Err(bad("must not contain NUL"));
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir => return Err(bad("must be relative to the cgroup mount")),
            Component::ParentDir | Component::CurDir | Component::Prefix(_) => {
                return Err(bad("must not contain . or .. components"))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad("must name a cgroup below the mount"));
    }
    Ok(out)
}

/// What the runtime does with a task's cgroup. Implemented per hierarchy version.
pub trait CgroupOps {
    /// Creates the cgroup (and missing parents) if absent.
    fn create(&self) -> Result<(), CgroupError>;
    /// Writes the plan's limits.
    fn apply(&self, plan: &CgroupPlan) -> Result<(), CgroupError>;
    /// The `cgroup.procs` files a process writes `0` into to join, one per hierarchy.
    fn join_files(&self) -> Vec<PathBuf>;
    /// The file whose `oom_kill N` line counts OOM kills (memory.events / memory.oom_control).
    fn oom_file(&self) -> Option<PathBuf>;
    /// Whether importance must be applied per process (setpriority) because the hierarchy has
    /// no cpu.weight.nice.
    fn nice_by_setpriority(&self) -> bool;
    /// Pids in the cgroup.
    fn pids(&self) -> Vec<u32>;
    /// Whether any process is left.
    fn populated(&self) -> bool;
    /// SIGKILLs every process, race-free against forks.
    fn kill_all(&self) -> Result<(), CgroupError>;
    /// Removes the cgroup directories (must be empty).
    fn remove(&self) -> Result<(), CgroupError>;
    /// Resource usage.
    fn usage(&self) -> Usage;
    /// The directories that make up this cgroup.
    fn dirs(&self) -> Vec<PathBuf>;
}

/// A task's cgroup on whatever hierarchy the host has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskCgroup {
    /// Unified hierarchy.
    V2(V2Cgroup),
    /// Per-controller hierarchies.
    V1(V1Cgroup),
}

impl TaskCgroup {
    /// The cgroup the plan names, on the host's hierarchy (not created yet).
    pub fn for_plan(roots: &CgroupRoots, plan: &CgroupPlan) -> Result<Self, CgroupError> {
        match roots.mode {
            CgroupMode::V2 => Ok(Self::V2(V2Cgroup::new(
                roots.v2.clone(),
                &check_rel_path(&plan.v2_path)?,
            ))),
            CgroupMode::V1 => Ok(Self::V1(V1Cgroup::new(
                &roots.v1,
                &check_rel_path(&plan.v1_path)?,
            ))),
            CgroupMode::None => Err(CgroupError::Unavailable(
                "neither cgroup v2 nor v1 controllers are mounted",
            )),
        }
    }

    /// Kills whatever a previous instance of the task left in this cgroup (the path is
    /// `<alloc>.<task>`, the same for every restart) and waits until it is empty.
    pub fn evict(&self) -> Result<(), CgroupError> {
        let mut delay = std::time::Duration::from_millis(1);
        for _ in 0..40 {
            if !self.populated() {
                return Ok(());
            }
            self.kill_all()?;
            std::thread::sleep(delay);
            delay = (delay * 2).min(std::time::Duration::from_millis(100));
        }
        if self.populated() {
            return Err(CgroupError::StillPopulated(
                self.dirs().into_iter().next().unwrap_or_default(),
            ));
        }
        Ok(())
    }

    /// Kills everything, then removes the directories, retrying while the kernel still
    /// reports processes (they take a moment to exit after SIGKILL).
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut delay = std::time::Duration::from_millis(1);
        for _ in 0..40 {
            if self.populated() {
                self.kill_all()?;
            }
            if self.remove().is_ok() {
                return Ok(());
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(std::time::Duration::from_millis(100));
        }
        self.remove()
    }

    fn ops(&self) -> &dyn CgroupOps {
        match self {
            Self::V2(c) => c,
            Self::V1(c) => c,
        }
    }
}

impl CgroupOps for TaskCgroup {
    fn create(&self) -> Result<(), CgroupError> {
        self.ops().create()
    }
    fn apply(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        self.ops().apply(plan)
    }
    fn join_files(&self) -> Vec<PathBuf> {
        self.ops().join_files()
    }
    fn oom_file(&self) -> Option<PathBuf> {
        self.ops().oom_file()
    }
    fn nice_by_setpriority(&self) -> bool {
        self.ops().nice_by_setpriority()
    }
    fn pids(&self) -> Vec<u32> {
        self.ops().pids()
    }
    fn populated(&self) -> bool {
        self.ops().populated()
    }
    fn kill_all(&self) -> Result<(), CgroupError> {
        self.ops().kill_all()
    }
    fn remove(&self) -> Result<(), CgroupError> {
        self.ops().remove()
    }
    fn usage(&self) -> Usage {
        self.ops().usage()
    }
    fn dirs(&self) -> Vec<PathBuf> {
        self.ops().dirs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn planned_paths_must_stay_below_the_mount() {
        assert!(check_rel_path("nomad.slice/share.slice/a.b.scope").is_ok());
        for bad in ["", "/abs", "a/../b", "./a", "a\0b"] {
            let e = check_rel_path(bad);
            assert!(
                matches!(e, Err(CgroupError::BadPath { .. })),
                "{bad:?} gave {e:?}"
            );
        }
    }
}

#[cfg(test)]
mod fake_tests;
