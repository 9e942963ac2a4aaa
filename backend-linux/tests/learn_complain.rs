//! Complain mode through the real runtime: a task with too few promises runs to completion
//! with everything allowed, and each would-be violation is reported once as an
//! `Observation::Note` (the core turns it into a task event) naming the promise it needs.
//!
//! Needs root and cgroups (skips with a reason, fails when CI=true).

mod runtime_common;

use pledge_core::{Backend, Observation, SandboxMode};
use runtime_common::*;
use std::time::{Duration, Instant};

#[test]
fn complain_mode_allows_everything_and_reports_each_violation_once() {
    if !privileged("complain_mode_allows_everything_and_reports_each_violation_once") {
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and /usr/bin/python3 is missing"
        );
        eprintln!("SKIP: /usr/bin/python3 is missing");
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    // Writes a file (wpath cpath) twice and opens an inet socket (inet) twice, holding only
    // stdio rpath: enforced, both would fail with EPERM.
    // It also signals itself (stdio allows that): in the task's pid namespace its own pid
    // is not the one the supervisor sees, and must still count as "self".
    let script = "import socket, os\nos.kill(os.getpid(), 0)\n\
                  for i in range(2):\n    open('local/out.txt', 'w').write('hi')\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n\
                  print('ok')";
    let args = ["-c", script];
    let mut shape = TaskShape::new("complain", "/usr/bin/python3", &args);
    shape.promises = "stdio rpath";
    let mut plan = plan(&scratch, &shape);
    plan.mode = SandboxMode::Complain;
    let task = plan.task.clone();
    let task_dir = plan.cwd.clone();
    let launched = b.launch(&plan);
    assert!(launched.is_ok(), "launch: {launched:?}");

    let mut notes: Vec<String> = Vec::new();
    let mut exit = None;
    let end = Instant::now() + Duration::from_secs(60);
    let mut obs = Vec::new();
    while exit.is_none() {
        assert!(
            Instant::now() < end,
            "task did not exit; notes so far {notes:?}"
        );
        b.drain_observations(&mut obs);
        for o in obs.drain(..) {
            match o {
                Observation::Note { task: t, message } if t == task => notes.push(message),
                Observation::Exited {
                    task: t, result, ..
                } if t == task => exit = Some(result),
                _ => {}
            }
        }
        wake.wait(Duration::from_millis(50));
    }
    let result = exit.unwrap_or_else(|| unreachable!());
    assert_eq!(
        (result.exit_code, result.signal, result.err.clone()),
        (0, 0, None),
        "notes {notes:?}"
    );
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/out.txt"))
            .ok()
            .as_deref(),
        Some("hi"),
        "the write was allowed"
    );
    let socket: Vec<&String> = notes
        .iter()
        .filter(|n| n.contains("needed for socket(AF_INET, SOCK_STREAM"))
        .collect();
    assert_eq!(socket.len(), 1, "reported once: {notes:?}");
    assert!(
        socket[0].starts_with("complain mode: promise \"inet\""),
        "{notes:?}"
    );
    let write: Vec<&String> = notes
        .iter()
        .filter(|n| n.contains("promises \"wpath cpath\" needed for openat(O_WRONLY|O_CREAT"))
        .collect();
    assert_eq!(write.len(), 1, "reported once: {notes:?}");
    assert!(
        !notes.iter().any(|n| n.contains("kill(")),
        "signalling itself is allowed: {notes:?}"
    );
    assert!(plan.namespaces.pid, "the task ran in its own pid namespace");
    let _ = b.cleanup(&task);
}
