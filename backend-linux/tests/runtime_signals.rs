//! Privileged tests of graceful stop in a private pid namespace (the default pid mode): the
//! driver's init is pid 1 of the task's namespace and forwards signals to the program, so a
//! program without handlers dies by StopTask's SIGTERM (or SIGINT) instead of waiting for the
//! kill timeout, and the exit record carries the program's own status.

mod runtime_common;

use pledge_core::{Backend, Signal};
use runtime_common::*;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// Launches `shape`; panics with the error chain otherwise. Returns the task's main pid.
fn launch(
    b: &mut pledge_backend_linux::runtime::LinuxBackend,
    p: &pledge_core::SandboxPlan,
) -> u32 {
    match b.launch(p) {
        Ok(l) => l.state.process.pid,
        Err(e) => panic!(
            "launch {}: {}",
            p.task,
            pledge_core::backend::error_chain(&e)
        ),
    }
}

/// Polls (bounded) until `path` exists: the script has installed its trap or done its step.
fn wait_for(path: &std::path::Path) {
    for _ in 0..3000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

/// `(pid, state)` of every process whose parent is `parent`.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let want = format!("PPid:\t{parent}");
    pledge_backend_linux::runtime::procfs::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            if !st.lines().any(|l| l == want) {
                return None;
            }
            let state = st
                .lines()
                .find_map(|l| l.strip_prefix("State:"))?
                .trim()
                .chars()
                .next()?;
            Some((pid, state))
        })
        .collect()
}

#[test]
fn sigterm_and_sigint_stop_a_program_without_handlers_by_that_signal() {
    if !privileged("sigterm_and_sigint_stop_a_program_without_handlers_by_that_signal") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let term = plan(&scratch, &TaskShape::new("term", "sleep", &["1000"]));
    let int = plan(&scratch, &TaskShape::new("int", "sleep", &["1000"]));
    assert!(term.namespaces.pid, "the default pid mode is private");
    for p in [&term, &int] {
        launch(&mut b, p);
    }
    for (p, sig) in [(&term, Signal::TERM), (&int, Signal::INT)] {
        if let Err(e) = b.signal(&p.task, sig) {
            panic!("signal {}: {e}", p.task);
        }
        // No kill_all: only the forwarded signal can end the program.
        let r = wait_exit(&mut b, &wake, &p.task, LONG);
        assert_eq!(
            (r.exit_code, r.signal, r.oom_killed, r.err.as_deref()),
            (0, sig.number(), false, None),
            "{}: the program's own terminating signal is reported",
            p.task
        );
    }
    for p in [&term, &int] {
        if let Err(e) = b.cleanup(&p.task) {
            panic!("cleanup: {e}");
        }
    }
}

#[test]
fn a_hup_trap_gets_the_signal_and_its_exit_code_comes_back() {
    if !privileged("a_hup_trap_gets_the_signal_and_its_exit_code_comes_back") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let trap = plan(
        &scratch,
        &TaskShape::new(
            "hup",
            "sh",
            &[
                "-c",
                "trap 'exit 3' HUP; : > local/ready; while :; do sleep 0.05; done",
            ],
        ),
    );
    launch(&mut b, &trap);
    wait_for(&trap.cwd.join("local/ready"));
    let hup = Signal::parse("SIGHUP").unwrap_or_else(|e| panic!("{e:?}"));
    if let Err(e) = b.signal(&trap.task, hup) {
        panic!("signal: {e}");
    }
    let r = wait_exit(&mut b, &wake, &trap.task, LONG);
    assert_eq!((r.exit_code, r.signal), (3, 0));
    if let Err(e) = b.cleanup(&trap.task) {
        panic!("cleanup: {e}");
    }
}

#[test]
fn exit_codes_and_kill_all_are_the_programs_under_the_init() {
    if !privileged("exit_codes_and_kill_all_are_the_programs_under_the_init") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let seven = plan(&scratch, &TaskShape::new("seven", "sh", &["-c", "exit 7"]));
    let killed = plan(&scratch, &TaskShape::new("killed", "sleep", &["1000"]));
    launch(&mut b, &seven);
    launch(&mut b, &killed);
    let r = wait_exit(&mut b, &wake, &seven.task, LONG);
    assert_eq!((r.exit_code, r.signal, r.err.as_deref()), (7, 0, None));
    // kill_all kills the whole cgroup, the init included: still signal 9, not a lost status.
    if let Err(e) = b.kill_all(&killed.task) {
        panic!("kill_all: {e}");
    }
    let r = wait_exit(&mut b, &wake, &killed.task, LONG);
    assert_eq!((r.exit_code, r.signal, r.err.as_deref()), (0, 9, None));
    for p in [&seven, &killed] {
        if let Err(e) = b.cleanup(&p.task) {
            panic!("cleanup: {e}");
        }
    }
}

#[test]
fn an_orphan_is_reaped_by_the_init_while_the_program_never_waits() {
    if !privileged("an_orphan_is_reaped_by_the_init_while_the_program_never_waits") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    // The foreground subshell exits at once, so its background child is orphaned and
    // reparented to pid 1 before the marker is written; the program then becomes `sleep`,
    // which never waits for anything.
    let p = plan(
        &scratch,
        &TaskShape::new(
            "orphan",
            "sh",
            &[
                "-c",
                "(sh -c 'exit 0' &); : > local/orphan; exec sleep 1000",
            ],
        ),
    );
    let init = launch(&mut b, &p);
    wait_for(&p.cwd.join("local/orphan"));
    // Bounded poll until the init's only child is the program, alive (a zombie left
    // unreaped would stay forever).
    let mut kids = children_of(init);
    for _ in 0..3000 {
        if kids.len() == 1 && kids.iter().all(|(_, s)| *s != 'Z') {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        kids = children_of(init);
    }
    assert!(
        kids.len() == 1 && kids.iter().all(|(_, s)| *s != 'Z'),
        "the init (pid {init}) keeps only the program, no zombie: {kids:?}"
    );
    // A figure, not an assertion: the init's own memory (a fork of the supervisor).
    let rollup = std::fs::read_to_string(format!("/proc/{init}/smaps_rollup")).unwrap_or_default();
    let private_kib: u64 = rollup
        .lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    eprintln!("init pid {init}: {private_kib} KiB private (clean + dirty)");
    if let Err(e) = b.signal(&p.task, Signal::TERM) {
        panic!("signal: {e}");
    }
    let r = wait_exit(&mut b, &wake, &p.task, LONG);
    assert_eq!((r.exit_code, r.signal), (0, 15));
    if let Err(e) = b.cleanup(&p.task) {
        panic!("cleanup: {e}");
    }
}
