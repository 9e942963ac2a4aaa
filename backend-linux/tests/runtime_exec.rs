//! Exec into a running task: the command runs in the task's cgroup and pid namespace, under
//! the task's sandbox, with pipes or a pty (resizable), and its exit code comes back.

mod runtime_common;

use pledge_backend_linux::runtime::cgroup::CgroupRoots;
use pledge_backend_linux::runtime::exec::ExecContext;
use pledge_core::backend::CgroupMode;
use pledge_core::{Backend, ExecPlan};
use runtime_common::*;
use std::io::{Read, Write};
use std::time::Duration;

fn read_all(fd: std::os::fd::OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    let mut out = Vec::new();
    // A pty master reports EIO once the slave side is closed: that is its EOF.
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn exec_runs_in_the_tasks_cgroup_namespaces_and_sandbox() {
    if !privileged("exec_runs_in_the_tasks_cgroup_namespaces_and_sandbox") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    // `tty` among the task's promises: exec runs under the task's promises, and stty needs
    // the terminal ioctls that only `tty` allows.
    let mut shape = TaskShape::new("target", "sleep", &["600"]);
    shape.promises = "stdio rpath wpath cpath proc exec prot_exec tty";
    let plan = plan(&scratch, &shape);
    let l = match b.launch(&plan) {
        Ok(l) => l,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    };
    let ctx = ExecContext {
        exe: supervisor_exe(),
        roots: CgroupRoots::detect(),
    };
    let with_cmd = |cmd: &str, args: &[&str], tty: bool| {
        let mut p = l.state.plan.clone();
        p.command = cmd.to_string();
        p.args = args.iter().map(|s| s.to_string()).collect();
        ExecPlan {
            plan: p,
            tty,
            target_pid: l.state.process.pid,
        }
    };

    // Pipes: output, the cgroup, the task's pid namespace.
    let mut child = match ctx.spawn(&with_cmd(
        "sh",
        &[
            "-c",
            "cat /proc/self/cgroup; echo ---; ps -e -o pid=,comm=; exit 5",
        ],
        false,
    )) {
        Ok(c) => c,
        Err(e) => panic!("exec: {}", pledge_core::backend::error_chain(&e)),
    };
    drop(child.stdin.take());
    let err_fd = child.stderr.take();
    let out = child.stdout.take().map(read_all).unwrap_or_default();
    let err = err_fd.map(read_all).unwrap_or_default();
    let r = child.wait();
    assert_eq!(
        (r.exit_code, r.signal),
        (5, 0),
        "stdout: {out}\nstderr: {err}"
    );
    let (cgroups, ps) = out.split_once("---").unwrap_or((&out, ""));
    let want = match CgroupRoots::detect().mode {
        CgroupMode::V2 => format!("0::/{}", plan.cgroup.v2_path),
        _ => format!(
            "memory:/{}",
            plan.cgroup
                .v1_path
                .replace("/share/", "/")
                .replace("/reserve/", "/")
        ),
    };
    assert!(
        cgroups.lines().any(|l| l.ends_with(&want)),
        "want {want:?} in:\n{cgroups}"
    );
    // The task's pid namespace: the driver's init is pid 1, the program pid 2.
    for want in [["1", "pledge-init"], ["2", "sleep"]] {
        assert!(
            ps.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == want),
            "the task's pid namespace ({want:?}):\n{ps}"
        );
    }

    // The task's sandbox applies: a path outside its unveil is not readable.
    let mut child = match ctx.spawn(&with_cmd("cat", &["/root/.bashrc", "/etc/hostname"], false)) {
        Ok(c) => c,
        Err(e) => panic!("exec: {}", pledge_core::backend::error_chain(&e)),
    };
    drop(child.stdin.take());
    let err_fd = child.stderr.take();
    let _ = child.stdout.take().map(read_all);
    let err = err_fd.map(read_all).unwrap_or_default();
    let r = child.wait();
    assert_ne!(
        r.exit_code, 0,
        "reading outside the unveiled paths must fail: {err}"
    );
    assert!(err.contains("/root/.bashrc"), "{err}");

    // A pty, resized before the command reads its size.
    let mut child = match ctx.spawn(&with_cmd("sh", &["-c", "read x; stty size"], true)) {
        Ok(c) => c,
        Err(e) => panic!("exec tty: {}", pledge_core::backend::error_chain(&e)),
    };
    if let Err(e) = child.resize(30, 100) {
        panic!("resize: {e}");
    }
    let master = match child.pty.take() {
        Some(m) => m,
        None => panic!("a tty exec has a pty"),
    };
    let mut w = match master.try_clone() {
        Ok(m) => std::fs::File::from(m),
        Err(e) => panic!("{e}"),
    };
    let _ = w.write_all(b"go\n");
    let reader = std::thread::spawn(move || read_all(master));
    let r = child.wait();
    drop(w);
    let out = reader.join().unwrap_or_default();
    assert_eq!(r.exit_code, 0, "{out}");
    assert!(out.contains("30 100"), "stty size after resize: {out:?}");

    if let Err(e) = b.kill_all(&plan.task) {
        panic!("kill_all: {e}");
    }
    let _ = wait_exit(&mut b, &wake, &plan.task, Duration::from_secs(30));
    if let Err(e) = b.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}
