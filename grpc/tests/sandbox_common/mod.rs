//! Shared harness of the sandbox tests: builds the C probe once, runs it under
//! `nomad-pledge-driver sandbox`, and reports how it ended.
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub(crate) const EPERM: i32 = 1;
pub(crate) const ENOENT: i32 = 2;
pub(crate) const EBADF: i32 = 9;
pub(crate) const EAGAIN: i32 = 11;
pub(crate) const EACCES: i32 = 13;
pub(crate) const EFAULT: i32 = 14;
pub(crate) const EXDEV: i32 = 18;
pub(crate) const EINVAL: i32 = 22;
pub(crate) const ENOTTY: i32 = 25;
pub(crate) const ENOSYS: i32 = 38;
pub(crate) const SIGSYS: i32 = 31;

/// How a sandboxed probe ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Exit code: 0 = the call succeeded, else its errno.
    Exit(i32),
    /// Killed by this signal.
    Signal(i32),
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nomad-pledge-driver")
}

/// True when the test may run; false (after printing why) to skip. Under CI=true a missing
/// requirement fails instead.
pub(crate) fn require_root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        .unwrap_or(false);
    let gcc = Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if !root {
        Some("not running as root")
    } else if !gcc {
        Some("gcc is not installed")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("sandbox test requirement missing under CI: {why}")
        }
        Some(why) => {
            eprintln!("skipping sandbox test: {why}");
            false
        }
    }
}

/// A scratch directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pledge-sbx-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// The static probe, compiled once per test binary.
pub(crate) fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../backend-linux/tests/probes/probe.c");
        let dir = std::env::temp_dir().join(format!("pledge-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("probe dir");
        let out = dir.join("probe");
        let st = Command::new("gcc")
            .args(["-static", "-O1", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run gcc");
        assert!(st.success(), "compiling {src:?} failed");
        out
    })
}

/// Runs `probe CASE ARGS...` under `sandbox FLAGS... --`.
pub(crate) fn run(flags: &[&str], case: &[&str]) -> End {
    run_cmd(flags, probe().to_str().expect("utf-8 path"), case)
}

/// Runs `program ARGS...` under `sandbox FLAGS... --`.
pub(crate) fn run_cmd(flags: &[&str], program: &str, args: &[&str]) -> End {
    let out = Command::new(bin())
        .arg("sandbox")
        .args(flags)
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn sandbox");
    if !out.stderr.is_empty() {
        eprintln!(
            "[{flags:?} {program} {args:?}] stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    match (out.status.code(), out.status.signal()) {
        (Some(c), _) => End::Exit(c),
        (None, Some(s)) => End::Signal(s),
        _ => End::Exit(-1),
    }
}

/// `-p PROMISES` plus the given unveils.
pub(crate) fn p<'a>(promises: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["-p", promises];
    v.extend_from_slice(extra);
    v
}
