//! The cgroup path Nomad's client puts in `linux_resources.cpuset_cgroup`
//! (client/lib/cgroupslib `LinuxResourcesPath`): v2 when /sys/fs/cgroup is a cgroup2 mount,
//! otherwise v1 (hybrid hosts count as v1, as in Nomad).

use std::path::{Path, PathBuf};

/// The cgroup mount root.
pub const ROOT: &str = "/sys/fs/cgroup";

/// Nomad's cgroup mode for this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unified hierarchy.
    V2,
    /// Legacy or hybrid hierarchies.
    V1,
}

impl Mode {
    /// Detects the mode as Nomad does (the filesystem type of /sys/fs/cgroup).
    pub fn detect() -> Self {
        match nix::sys::statfs::statfs(ROOT) {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Self::V2,
            _ => Self::V1,
        }
    }

    /// `NOMAD_PARENT_CGROUP`.
    pub fn parent(self) -> &'static str {
        match self {
            Self::V2 => "nomad.slice",
            Self::V1 => "/nomad",
        }
    }
}

/// The path Nomad assigns a task (`reserve` partition when it reserves cores).
pub fn task_path(mode: Mode, alloc_id: &str, task: &str, reserve_cores: bool) -> PathBuf {
    let partition = if reserve_cores { "reserve" } else { "share" };
    let root = Path::new(ROOT);
    match (mode, reserve_cores) {
        (Mode::V2, _) => root
            .join("nomad.slice")
            .join(format!("{partition}.slice"))
            .join(format!("{alloc_id}.{task}.scope")),
        (Mode::V1, true) => root
            .join("cpuset/nomad")
            .join(partition)
            .join(format!("{alloc_id}.{task}")),
        (Mode::V1, false) => root.join("cpuset/nomad").join(partition),
    }
}

/// After DestroyTask, removes a per-task cgroup the plugin left behind, as Nomad's wrangler
/// does when the task runner stops (shared v1 partitions are never touched). Best effort: a
/// failure is returned for the runner to print, never fatal.
pub fn remove_leftover(mode: Mode, path: &Path, reserve_cores: bool) -> Result<bool, String> {
    let per_task = mode == Mode::V2 || reserve_cores;
    if !per_task || !path.exists() {
        return Ok(false);
    }
    if mode == Mode::V2 {
        let _ = std::fs::write(path.join("cgroup.kill"), "1");
    }
    std::fs::remove_dir(path)
        .map(|()| true)
        .map_err(|e| format!("cannot remove leftover cgroup {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_nomads_cgroupslib() {
        let a = "9a1b2c3d-0000-0000-0000-000000000000";
        assert_eq!(
            task_path(Mode::V2, a, "web", false),
            PathBuf::from(format!(
                "/sys/fs/cgroup/nomad.slice/share.slice/{a}.web.scope"
            ))
        );
        assert_eq!(
            task_path(Mode::V2, a, "web", true),
            PathBuf::from(format!(
                "/sys/fs/cgroup/nomad.slice/reserve.slice/{a}.web.scope"
            ))
        );
        assert_eq!(
            task_path(Mode::V1, a, "web", true),
            PathBuf::from(format!("/sys/fs/cgroup/cpuset/nomad/reserve/{a}.web"))
        );
        assert_eq!(
            task_path(Mode::V1, a, "web", false),
            PathBuf::from("/sys/fs/cgroup/cpuset/nomad/share")
        );
    }
}
