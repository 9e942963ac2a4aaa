//! Best-effort honesty across Landlock ABIs (pledge.md d.2 #24): the launcher reports what the
//! kernel enforces, fails closed when it cannot enforce what the task asked for (its rules at
//! all, port rules), reports `partial` for newer-ABI refinements, and `-B`
//! (`unveil_best_effort`) accepts even the former. Runs on the host (ABI 7) and, through
//! vm/tests.list, on Debian's 6.1 (ABI 2) and 6.12 (ABI 6) kernels.

mod sandbox_common;
use sandbox_common::*;
use std::process::Command;

struct Launch {
    code: Option<i32>,
    report: Option<serde_json::Value>,
    stderr: String,
}

fn launch(flags: &[&str]) -> Launch {
    let out = Command::new(bin())
        .arg("sandbox")
        .args(flags)
        .arg("--")
        .arg(probe())
        .arg("getpid")
        .env("PLEDGE_SANDBOX_REPORT", "1")
        .output()
        .expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok());
    Launch {
        code: out.status.code(),
        report,
        stderr,
    }
}

#[test]
fn landlock_enforcement_is_reported_and_fails_closed() {
    if !require_root() {
        return;
    }
    let best = launch(&["-B", "-p", "stdio rpath"]);
    assert_eq!(best.code, Some(0), "{}", best.stderr);
    let r = best.report.expect("report printed");
    let abi = r["landlock_abi"].as_u64().expect("abi");
    if let Ok(want) = std::env::var("PLEDGE_EXPECT_LANDLOCK_ABI") {
        assert_eq!(abi.to_string(), want, "kernel ABI");
    }
    let missing = r["landlock_missing"].as_array().map_or(0, Vec::len);
    match abi {
        0 => assert_eq!(r["landlock"], "none"),
        1..=5 => {
            assert_eq!(r["landlock"], "partial");
            assert!(missing > 0);
        }
        _ => {
            assert_eq!(r["landlock"], "full");
            assert_eq!(missing, 0);
        }
    }
    // Without -B: refinements a newer ABI adds degrade to `partial` (reported), while the
    // task's own unveil rules need Landlock at all.
    let strict = launch(&["-p", "stdio rpath"]);
    match abi {
        0 => {
            assert_eq!(strict.code, Some(20), "fails closed: {}", strict.stderr);
            assert!(strict.stderr.contains("not available"), "{}", strict.stderr);
        }
        1..=5 => {
            assert_eq!(strict.code, Some(0), "{}", strict.stderr);
            let r = strict.report.expect("report printed");
            assert_eq!(r["landlock"], "partial", "{}", strict.stderr);
        }
        _ => assert_eq!(strict.code, Some(0), "{}", strict.stderr),
    }
    // TCP port rules are an explicit ask: they need ABI 4, else the launch fails closed.
    let ports = launch(&["-p", "stdio inet", "--connect-port=443"]);
    if abi >= 4 {
        assert_eq!(ports.code, Some(0), "{}", ports.stderr);
    } else {
        assert_eq!(ports.code, Some(20), "{}", ports.stderr);
        assert!(ports.stderr.contains("connect_ports"), "{}", ports.stderr);
    }
    // Without unveil the report says so instead of claiming enforcement.
    let off = launch(&["-V", "-p", "stdio rpath"]);
    assert_eq!(off.code, Some(0));
    assert_eq!(off.report.expect("report")["landlock"], "disabled");
}

#[test]
fn seccomp_is_active_in_the_program() {
    if !require_root() {
        return;
    }
    // The probe sees Seccomp: 2 and NoNewPrivs: 1 on every kernel of the matrix.
    let out = Command::new(bin())
        .args(["sandbox", "-B", "-p", "stdio rpath", "--"])
        .arg(probe())
        .arg("capeff")
        .output()
        .expect("spawn");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("Seccomp:\t2") && s.contains("NoNewPrivs:\t1"),
        "{s}"
    );
    assert_eq!(
        run(&["-B", "-p", "stdio rpath"], &["x32_getpid"]),
        End::Signal(SIGSYS)
    );
    assert_eq!(
        run(&["-B", "-p", "stdio rpath"], &["clone3"]),
        End::Exit(ENOSYS)
    );
}
