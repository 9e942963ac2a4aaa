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

/// The kernel's Landlock ABI, as the launcher reports it.
pub(crate) fn abi() -> u64 {
    static ABI: OnceLock<u64> = OnceLock::new();
    *ABI.get_or_init(|| {
        let out = Command::new(bin())
            .args(["sandbox", "-B", "-p", "stdio rpath", "--"])
            .arg(probe())
            .arg("getpid")
            .env("PLEDGE_SANDBOX_REPORT", "1")
            .output()
            .expect("spawn");
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["landlock_abi"].as_u64())
            .unwrap_or(0)
    })
}

/// A `sandbox` command. On kernels below Landlock ABI 6 (no scopes) every launch would fail
/// closed, so `-B` is added and the tests assert what such a kernel still enforces; cases
/// needing a newer ABI check [`has_abi`] first.
pub(crate) fn sandbox_cmd(flags: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("sandbox");
    if abi() < 6 && !flags.contains(&"-V") {
        c.arg("-B");
    }
    c.args(flags);
    c
}

/// Whether the kernel has Landlock ABI `n`. When it does not, checks what the launcher does
/// instead of silently pretending, prints why the case is reduced, and returns false:
/// - port rules (ABI 4) are something the task asks for: asking for them fails closed (exit
///   20) unless `-B`;
/// - the other features (REFER, TRUNCATE, IOCTL_DEV, the scopes) refine what an unveil
///   means: the task runs and the launch report says `partial`, naming what is missing.
pub(crate) fn has_abi(n: u64, what: &str) -> bool {
    if abi() >= n {
        return true;
    }
    if n == 4 {
        let st = Command::new(bin())
            .args(["sandbox", "-p", "stdio inet", "--connect-port=1", "--"])
            .arg(probe())
            .arg("getpid")
            .stderr(Stdio::null())
            .status()
            .expect("spawn");
        assert_eq!(
            st.code(),
            Some(20),
            "ABI {} < 4: asking for port rules must fail closed without -B",
            abi()
        );
    } else {
        let out = Command::new(bin())
            .args(["sandbox", "-p", "stdio rpath", "--"])
            .arg(probe())
            .arg("getpid")
            .env("PLEDGE_SANDBOX_REPORT", "1")
            .output()
            .expect("spawn");
        assert_eq!(
            out.status.code(),
            Some(0),
            "ABI {} < {n}: a task that asks nothing newer runs",
            abi()
        );
        let report = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .unwrap_or_default();
        assert_eq!(
            report["landlock"],
            "partial",
            "ABI {} < {n}: enforcement is reported partial: {report}",
            abi()
        );
        let missing = report["landlock_missing"].to_string();
        assert!(
            missing.contains(&format!("(ABI {n})")),
            "ABI {} < {n}: the report names the missing ABI {n} feature: {missing}",
            abi()
        );
    }
    eprintln!(
        "Landlock ABI {} < {n}: {what} not enforceable here; checked how the launcher reports it",
        abi()
    );
    false
}

/// Runs `probe CASE ARGS...` under `sandbox FLAGS... --`.
pub(crate) fn run(flags: &[&str], case: &[&str]) -> End {
    run_cmd(flags, probe().to_str().expect("utf-8 path"), case)
}

/// Runs `program ARGS...` under `sandbox FLAGS... --`.
pub(crate) fn run_cmd(flags: &[&str], program: &str, args: &[&str]) -> End {
    let out = sandbox_cmd(flags)
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
