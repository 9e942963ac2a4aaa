//! `learn --job`: a task of a job file is laid out as the local runner does and learned; the
//! task's own directories are named by their Nomad variables; Ctrl-C stops a long-running task
//! and still prints the block.
//!
//! Needs root and seccomp user notification; skips with a reason otherwise (fails when CI=true).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

fn ready() -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let why = if !nix::unistd::geteuid().is_root() {
        Some("not root")
    } else if !Command::new(BIN)
        .args(["learn", "--", "/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        Some("seccomp user notification does not work here")
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

fn write_job(dir: &Path, command: &str, args: &[&str]) -> std::path::PathBuf {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let job = format!(
        "job \"learnme\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"pledge\"\n      config {{\n        command = {command:?}\n        args = [{}]\n      }}\n    }}\n  }}\n}}\n",
        args.join(", ")
    );
    let path = dir.join("learnme.hcl");
    std::fs::write(&path, job).expect("write job");
    path
}

#[test]
fn learns_a_job_task_and_names_its_dirs_by_variable() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    // Copies a program into the task's local dir and runs it from there: the copy needs
    // wpath/cpath (covered dir) and the run needs proc/exec and `x` on local/, which the
    // default unveils (local/ is rwc) do not grant.
    let job = write_job(
        d.path(),
        "/bin/sh",
        &[
            "-c",
            "cp /bin/true ${NOMAD_TASK_DIR}/t && ${NOMAD_TASK_DIR}/t && echo done",
        ],
    );
    let out = Command::new(BIN)
        .arg("learn")
        .arg("--job")
        .arg(&job)
        .stdin(Stdio::null())
        .output()
        .expect("run learn --job");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("done\n"), "{stdout}");
    let promises = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("promises = "))
        .unwrap_or_default();
    for p in ["stdio", "wpath", "cpath", "proc", "exec"] {
        assert!(
            promises.contains(p),
            "{p} missing from {promises} in\n{stdout}"
        );
    }
    assert!(
        stdout.contains("\"x:${NOMAD_TASK_DIR}"),
        "the task dir is named by its variable:\n{stdout}"
    );
    assert!(
        !stdout.contains("nomad-pledge-run-") || stdout.contains("no Nomad variable"),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_stops_the_task_and_prints_the_block() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let job = write_job(d.path(), "/bin/sleep", &["600"]);
    let mut child = Command::new(BIN)
        .arg("learn")
        .arg("--job")
        .arg(&job)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn learn --job");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    // The announcement comes right before the observation starts.
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("learn ended before starting the task");
        }
        if line.contains("Ctrl-C to stop") {
            break;
        }
    }
    // Wait until sleep has really been exec'd under observation (it shows up as our child).
    let pid = child.id();
    for _ in 0..2000 {
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let sleeping = kids.split_whitespace().any(|k| {
            std::fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        if sleeping {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    let st = child.wait().expect("wait");
    assert!(st.success(), "{st:?}\n{stdout}\n{rest}");
    assert!(rest.contains("stopped by learn"), "{rest}");
    assert!(
        stdout.contains("config {") && stdout.contains("promises = \"stdio"),
        "{stdout}"
    );
}
