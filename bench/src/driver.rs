//! Finding (and if need be building) the `nomad-pledge-driver` binary and the baseline tools.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the driver binary is not available.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Not found and not buildable.
    #[error(
        "nomad-pledge-driver not found next to {0}; build it with \
         `cargo build --release -p pledge-grpc --bin nomad-pledge-driver` or pass --driver PATH"
    )]
    NotFound(String),
    /// cargo build failed.
    #[error("building nomad-pledge-driver failed: {0}")]
    Build(String),
}

/// `explicit`, else the binary next to this executable — rebuilt first with the same profile
/// when run under cargo (`$CARGO` set), so the numbers are never of a stale build.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, DriverError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let me = std::env::current_exe().unwrap_or_default();
    let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidate = dir.join("nomad-pledge-driver");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "pledge-grpc",
            "--bin",
            "nomad-pledge-driver",
        ]);
        if release {
            cmd.arg("--release");
        }
        let out = cmd
            .output()
            .map_err(|e| DriverError::Build(e.to_string()))?;
        if !out.status.success() {
            return Err(DriverError::Build(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
    }
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(DriverError::NotFound(me.display().to_string()))
    }
}

/// Installs bubblewrap with apt when it is missing and we are root; says what happened.
pub fn ensure_bwrap() -> Option<String> {
    if crate::launch::which("bwrap").is_some() {
        return None;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Some(
            "bwrap missing and not root: install bubblewrap for the bwrap baseline".into(),
        );
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "bubblewrap"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = install()
        || (Command::new("apt-get")
            .args(["update", "-q"])
            .output()
            .is_ok_and(|o| o.status.success())
            && install());
    Some(if ok {
        "installed bubblewrap with apt-get".into()
    } else {
        "apt-get install bubblewrap failed: no bwrap baseline".into()
    })
}
