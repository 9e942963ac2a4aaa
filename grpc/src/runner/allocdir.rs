//! An allocation directory laid out like Nomad's client does it (client/allocdir), inside a
//! temporary directory that is removed when the runner ends:
//!
//! ```text
//! <alloc_dir>/alloc/{logs,tmp,data}          shared by the group's tasks (NOMAD_ALLOC_DIR)
//! <alloc_dir>/<task>/{local,secrets,private,tmp}   NOMAD_TASK_DIR = local, NOMAD_SECRETS_DIR
//! <alloc_dir>/alloc/logs/.<task>.{stdout,stderr}.fifo   the log FIFOs (logmon's)
//! ```
//!
//! As Nomad does when it runs as root, the task's directories are mode 0777 (tmp 1777) and owned
//! by `nobody`, so a task that runs as another user can still use them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the layout could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare {path}: {source}")]
pub struct AllocDirError {
    /// The path being created.
    pub path: String,
    /// The cause.
    pub source: std::io::Error,
}

/// The runner's temporary root: the plugin's socket dir, its state dir and every alloc dir live
/// below it; dropping it removes everything (unless [`RunDir::keep`] was called).
#[derive(Debug)]
pub struct RunDir {
    tmp: Option<tempfile::TempDir>,
    path: PathBuf,
}

/// One task's directories (host paths, as Nomad passes them with `fs_isolation = NONE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDir {
    /// `<alloc_dir>/<task>`, the task's working directory.
    pub dir: PathBuf,
    /// `<task>/local` (NOMAD_TASK_DIR).
    pub local: PathBuf,
    /// `<task>/secrets` (NOMAD_SECRETS_DIR).
    pub secrets: PathBuf,
    /// `<task>/private`.
    pub private: PathBuf,
    /// `<task>/tmp`.
    pub tmp: PathBuf,
    /// `<alloc_dir>/alloc` (NOMAD_ALLOC_DIR).
    pub shared: PathBuf,
    /// stdout FIFO path.
    pub stdout_fifo: PathBuf,
    /// stderr FIFO path.
    pub stderr_fifo: PathBuf,
}

impl RunDir {
    /// Creates `<base or $TMPDIR>/nomad-pledge-run-XXXX`, mode 0755.
    pub fn create(base: Option<&Path>) -> Result<Self, AllocDirError> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let tmp = tempfile::Builder::new()
            .prefix("nomad-pledge-run-")
            .tempdir_in(&base)
            .map_err(|source| AllocDirError {
                path: base.display().to_string(),
                source,
            })?;
        // tempfile makes it 0700; tasks running as nobody must be able to traverse it.
        chmod(tmp.path(), 0o755)?;
        let path = tmp.path().to_path_buf();
        Ok(Self {
            tmp: Some(tmp),
            path,
        })
    }

    /// The root path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory after the run (for debugging); returns its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(t) = self.tmp.take() {
            let _ = t.keep();
        }
        self.path.clone()
    }

    /// Creates `<root>/<alloc_id>` with the shared `alloc/` tree.
    pub fn alloc(&self, alloc_id: &str) -> Result<AllocDir, AllocDirError> {
        let alloc_dir = self.path.join(alloc_id);
        mkdir(&alloc_dir, 0o755)?;
        let shared = alloc_dir.join("alloc");
        mkdir(&shared, 0o755)?;
        for d in ["logs", "tmp", "data"] {
            let p = shared.join(d);
            mkdir(&p, 0o777)?;
            give_to_nobody(&p)?;
        }
        Ok(AllocDir { alloc_dir })
    }
}

/// One allocation directory (`TaskConfig.alloc_dir`).
#[derive(Clone, Debug)]
pub struct AllocDir {
    alloc_dir: PathBuf,
}

impl AllocDir {
    /// The allocation dir.
    pub fn path(&self) -> &Path {
        &self.alloc_dir
    }

    /// Creates the task's directories.
    pub fn task_dir(&self, task: &str) -> Result<TaskDir, AllocDirError> {
        let dir = self.alloc_dir.join(task);
        let shared = self.alloc_dir.join("alloc");
        let logs = shared.join("logs");
        let t = TaskDir {
            local: dir.join("local"),
            secrets: dir.join("secrets"),
            private: dir.join("private"),
            tmp: dir.join("tmp"),
            stdout_fifo: logs.join(format!(".{task}.stdout.fifo")),
            stderr_fifo: logs.join(format!(".{task}.stderr.fifo")),
            shared,
            dir,
        };
        for (p, mode) in [
            (&t.dir, 0o777),
            (&t.local, 0o777),
            (&t.secrets, 0o777),
            (&t.tmp, 0o1777),
        ] {
            mkdir(p, mode)?;
            give_to_nobody(p)?;
        }
        mkdir(&t.private, 0o700)?;
        Ok(t)
    }
}

fn mkdir(p: &Path, mode: u32) -> Result<(), AllocDirError> {
    std::fs::create_dir_all(p).map_err(|source| AllocDirError {
        path: p.display().to_string(),
        source,
    })?;
    chmod(p, mode)
}

fn chmod(p: &Path, mode: u32) -> Result<(), AllocDirError> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        AllocDirError {
            path: p.display().to_string(),
            source,
        }
    })
}

/// Nomad's dropDirPermissions: as root, hand the directory to `nobody`.
fn give_to_nobody(p: &Path) -> Result<(), AllocDirError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        return Ok(());
    };
    nix::unistd::chown(p, Some(nobody.uid), Some(nobody.gid)).map_err(|e| AllocDirError {
        path: p.display().to_string(),
        source: std::io::Error::from(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_nomad_and_is_removed_on_drop() {
        let run = RunDir::create(None).expect("run dir");
        let a = run
            .alloc("0b6bd0c6-8b1e-4a5c-9b1b-3f4a5b6c7d8e")
            .expect("create");
        let t = a.task_dir("server").expect("task dir");
        let alloc = a.path().to_path_buf();
        for p in [
            alloc.join("alloc/logs"),
            alloc.join("alloc/tmp"),
            alloc.join("alloc/data"),
            alloc.join("server/local"),
            alloc.join("server/secrets"),
            alloc.join("server/private"),
            alloc.join("server/tmp"),
        ] {
            assert!(p.is_dir(), "{} missing", p.display());
        }
        assert_eq!(t.local, alloc.join("server/local"));
        assert_eq!(t.stdout_fifo, alloc.join("alloc/logs/.server.stdout.fifo"));
        let mode = std::fs::metadata(&t.tmp).expect("tmp").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777);
        let root = run.path().to_path_buf();
        drop(run);
        assert!(!root.exists(), "temp root must be removed");
    }
}
