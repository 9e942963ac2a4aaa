//! `learn -- COMMAND`: threads and forked children are observed (the filter is inherited),
//! calls no promise allows are listed with a reason, the block parses as HCL with the learned
//! values, and `--seconds` stops a program that does not end by itself.
//!
//! Needs root and seccomp user notification; skips with a reason otherwise (fails when CI=true).

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

fn ready() -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let why = if !nix::unistd::geteuid().is_root() {
        Some("not root".to_string())
    } else if !std::path::Path::new("/usr/bin/python3").exists() {
        Some("/usr/bin/python3 is missing".to_string())
    } else if !Command::new(BIN)
        .args(["learn", "--", "/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        Some("seccomp user notification does not work here".to_string())
    } else {
        None
    };
    match why {
        None => true,
        Some(w) if ci => panic!("CI=true and {w}"),
        Some(w) => {
            eprintln!("skipping: {w}");
            false
        }
    }
}

const SCRIPT: &str = r#"
import ctypes, threading, socket, os
libc = ctypes.CDLL(None, use_errno=True)
def work():
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
t = threading.Thread(target=work); t.start(); t.join()
pid = os.fork()
if pid == 0:
    open("/etc/hostname").read()
    os._exit(0)
os.waitpid(pid, 0)
libc.syscall(101, 0, 0, 0, 0)  # ptrace(PTRACE_TRACEME): no promise allows it
print("script done")
"#;

#[test]
fn threads_and_children_are_observed_and_the_block_is_valid_hcl() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let script = d.path().join("t.py");
    std::fs::write(&script, SCRIPT).expect("write script");
    let out = Command::new(BIN)
        .args(["learn", "--", "/usr/bin/python3"])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("learn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}", out.status);
    assert!(stdout.starts_with("script done\n"), "{stdout}");
    let block = &stdout["script done\n".len()..];
    // The thread's socket and the forked child's read were seen.
    assert!(
        block.contains("inet      needed for socket(AF_INET6, SOCK_DGRAM"),
        "{block}"
    );
    assert!(block.contains("\"r:/etc/hostname\""), "{block}");
    // The fork needs proc; the thread alone would not.
    assert!(block.contains("proc      needed for clone("), "{block}");
    // ptrace is listed with why.
    assert!(
        block.contains("NOT ALLOWED BY ANY PROMISE")
            && block.contains("ptrace() x1: ptrace is in no promise"),
        "{block}"
    );
    assert!(
        block.contains("ENOSYS as when enforced") && block.contains("clone3"),
        "{block}"
    );

    // Ready to paste: it parses, and holds the learned values.
    let body: hcl::Body = hcl::from_str(block).expect("the learned block parses as HCL");
    let config = body
        .blocks()
        .find(|b| b.identifier() == "config")
        .expect("a config block");
    let attr = |name: &str| {
        config
            .body()
            .attributes()
            .find(|a| a.key() == name)
            .map(|a| hcl::Value::from(a.expr().clone()))
    };
    assert_eq!(
        attr("promises"),
        Some(hcl::Value::from("stdio inet proc")),
        "{block}"
    );
    let unveil = match attr("unveil") {
        Some(hcl::Value::Array(a)) => a,
        other => panic!("unveil is a list, got {other:?}"),
    };
    assert!(
        unveil.contains(&hcl::Value::from("r:/etc/hostname")),
        "{unveil:?}"
    );
}

#[test]
fn seconds_stops_a_program_that_does_not_end() {
    if !ready() {
        return;
    }
    let out = Command::new(BIN)
        .args(["learn", "--seconds", "0.5", "--", "/bin/sleep", "600"])
        .stdin(Stdio::null())
        .output()
        .expect("learn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(stderr.contains("stopped by learn"), "{stderr}");
    assert!(stdout.contains("promises = \"stdio\""), "{stdout}");
}

#[test]
fn bad_command_lines_are_refused_with_the_reason() {
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("learn")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("learn")
    };
    let out = run(&["--seconds", "soon", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--seconds: \"soon\" is not a positive number"));
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing COMMAND"));
    let out = run(&["--", "/nonexistent/prog"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/prog"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--job", "/nonexistent.hcl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent.hcl"));
}
