//! Surviving the plugin: tasks keep running when the backend (the plugin) goes away, a new
//! backend re-attaches from the persisted driver state, and each task reports its own exit
//! code. A task whose supervisor died is reported lost and killed, never left unmanaged.

mod runtime_common;

use pledge_core::{Backend, Classify, DriverState, Effect, FailureClass, Observation};
use runtime_common::*;
use std::time::Duration;

#[test]
fn twenty_tasks_survive_the_plugin_and_report_their_own_exit_codes() {
    if !privileged("twenty_tasks_survive_the_plugin_and_report_their_own_exit_codes") {
        return;
    }
    let scratch = Scratch::new();
    let go = scratch.dir.path().join("GO");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit $CODE",
        go.display()
    );
    let mut states: Vec<(DriverState, i32)> = Vec::new();
    {
        let wake = Wake::default();
        let mut first = backend(&wake);
        for i in 0..20 {
            let code = 10 + i;
            let mut shape = TaskShape::new("survivor", "sh", &[]);
            shape
                .unveil
                .push(format!("r:{}", scratch.dir.path().display()));
            let argv = ["-c", script.as_str()];
            shape.args = &argv;
            let mut plan = plan(&scratch, &shape);
            plan.env.insert("CODE".into(), code.to_string());
            match first.launch(&plan) {
                Ok(l) => states.push((l.state, code)),
                Err(e) => panic!("launch {i}: {}", pledge_core::backend::error_chain(&e)),
            }
        }
        // The plugin goes away: its watcher stops, its pidfds close. Nothing kills tasks.
    }
    for (s, _) in &states {
        assert!(
            pledge_backend_linux::runtime::procfs::start_time(s.process.pid)
                == Some(s.process.pid_start),
            "task {} still runs after the plugin is gone",
            s.plan.task
        );
    }
    let wake = Wake::default();
    let mut second = backend(&wake);
    for (s, _) in &states {
        match second.reattach(s) {
            Ok(Effect::Launched(_)) => {}
            Ok(other) => panic!("{}: expected running, got {other:?}", s.plan.task),
            Err(e) => panic!(
                "reattach {}: {}",
                s.plan.task,
                pledge_core::backend::error_chain(&e)
            ),
        }
    }
    if let Err(e) = std::fs::write(&go, b"go") {
        panic!("{e}");
    }
    for (s, code) in &states {
        let r = wait_exit(&mut second, &wake, &s.plan.task, Duration::from_secs(30));
        assert_eq!(
            (r.exit_code, r.signal, r.err.as_deref()),
            (*code, 0, None),
            "{}",
            s.plan.task
        );
    }
    for (s, _) in &states {
        if let Err(e) = second.cleanup(&s.plan.task) {
            panic!("cleanup: {e}");
        }
    }
}

#[test]
fn exit_while_no_plugin_runs_is_reported_on_reattach() {
    if !privileged("exit_while_no_plugin_runs_is_reported_on_reattach") {
        return;
    }
    let scratch = Scratch::new();
    let state = launch_and_abandon(&plan(
        &scratch,
        &TaskShape::new("quick", "sh", &["-c", "exit 42"]),
    ));
    let exit_file = state.process.state_dir.join("exit.json");
    for _ in 0..3000 {
        if exit_file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wake = Wake::default();
    let mut second = backend(&wake);
    match second.reattach(&state) {
        Ok(Effect::AlreadyExited { result, .. }) => {
            assert_eq!((result.exit_code, result.signal), (42, 0));
        }
        other => panic!("expected AlreadyExited, got {other:?}"),
    }
    if let Err(e) = second.cleanup(&state.plan.task) {
        panic!("cleanup: {e}");
    }
    assert!(!state.process.state_dir.exists());
}

#[test]
fn a_task_whose_supervisor_died_is_lost_and_killed() {
    if !privileged("a_task_whose_supervisor_died_is_lost_and_killed") {
        return;
    }
    let scratch = Scratch::new();
    let wake = Wake::default();
    let mut first = backend(&wake);
    let plan = plan(&scratch, &TaskShape::new("orphan", "sleep", &["600"]));
    let l = match first.launch(&plan) {
        Ok(l) => l,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    };
    let cg = first.cgroup_of(&plan.task).cloned();
    drop(first);
    let p = &l.state.process;
    let sup = nix::unistd::Pid::from_raw(i32::try_from(p.supervisor_pid).unwrap_or(0));
    if let Err(e) = nix::sys::signal::kill(sup, nix::sys::signal::SIGKILL) {
        panic!("kill supervisor: {e}");
    }
    for _ in 0..3000 {
        if pledge_backend_linux::runtime::procfs::start_time(p.supervisor_pid)
            != Some(p.supervisor_start)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wake = Wake::default();
    let mut second = backend(&wake);
    let e = match second.reattach(&l.state) {
        Err(e) => e,
        Ok(other) => panic!("a task without supervisor must not be taken for running: {other:?}"),
    };
    assert_eq!(e.class(), FailureClass::Gone, "{e}");
    for _ in 0..3000 {
        if pledge_backend_linux::runtime::procfs::start_time(p.pid) != Some(p.pid_start) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ne!(
        pledge_backend_linux::runtime::procfs::start_time(p.pid),
        Some(p.pid_start),
        "the unmanaged task was killed"
    );
    if let Some(cg) = cg {
        use pledge_backend_linux::runtime::cgroup::CgroupOps;
        for d in cg.dirs() {
            assert!(!d.exists(), "{} removed", d.display());
        }
    }
    assert!(!p.state_dir.exists());
}

#[test]
fn a_reused_pid_is_never_taken_for_the_task() {
    if !privileged("a_reused_pid_is_never_taken_for_the_task") {
        return;
    }
    let scratch = Scratch::new();
    let wake = Wake::default();
    let mut b = backend(&wake);
    let plan = plan(&scratch, &TaskShape::new("ident", "sleep", &["600"]));
    let l = match b.launch(&plan) {
        Ok(l) => l,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    };
    let mut forged = l.state.clone();
    // Same pids, different start time: what a reused pid looks like.
    forged.process.supervisor_start += 1;
    forged.plan.task = match pledge_core::TaskId::parse(format!("{}-forged", plan.task)) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    forged.process.state_dir = scratch.dir.path().join("forged-state");
    let _ = std::fs::create_dir_all(&forged.process.state_dir);
    forged.plan.cgroup.v1_path.push_str("-forged");
    forged.plan.cgroup.v2_path.push_str("-forged");
    let e = b.reattach(&forged).err();
    assert_eq!(e.map(|e| e.class()), Some(FailureClass::Gone));
    // ...and the real task was not touched.
    assert_eq!(
        pledge_backend_linux::runtime::procfs::start_time(l.state.process.pid),
        Some(l.state.process.pid_start)
    );
    if let Err(e) = b.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

#[test]
fn sigkill_of_a_plugin_process_leaves_its_tasks_running_and_recoverable() {
    if !privileged("sigkill_of_a_plugin_process_leaves_its_tasks_running_and_recoverable") {
        return;
    }
    use std::io::{BufRead, Write};
    let scratch = Scratch::new();
    let go = scratch.dir.path().join("GO");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit $CODE",
        go.display()
    );
    let mut plugin = match std::process::Command::new(supervisor_exe())
        .arg("plugin-sim")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("plugin-sim: {e}"),
    };
    let mut codes = std::collections::BTreeMap::new();
    {
        let Some(stdin) = plugin.stdin.as_mut() else {
            panic!("stdin")
        };
        for i in 0..20 {
            let mut shape = TaskShape::new("killed-plugin", "sh", &[]);
            shape
                .unveil
                .push(format!("r:{}", scratch.dir.path().display()));
            let argv = ["-c", script.as_str()];
            shape.args = &argv;
            let mut plan = plan(&scratch, &shape);
            plan.env.insert("CODE".into(), (30 + i).to_string());
            codes.insert(plan.task.clone(), 30 + i);
            let line = serde_json::to_string(&plan).unwrap_or_default();
            let _ = writeln!(stdin, "{line}");
        }
        let _ = writeln!(stdin);
    }
    let mut states: Vec<DriverState> = Vec::new();
    let Some(stdout) = plugin.stdout.take() else {
        panic!("stdout")
    };
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line == "ready" {
            break;
        }
        match serde_json::from_str(&line) {
            Ok(s) => states.push(s),
            Err(e) => panic!("state line {line:?}: {e}"),
        }
    }
    assert_eq!(states.len(), 20, "the plugin launched all 20");
    // SIGKILL: no destructor, no cleanup code runs in the plugin.
    let _ = plugin.kill();
    let _ = plugin.wait();
    let wake = Wake::default();
    let mut fresh = backend(&wake);
    for s in &states {
        match fresh.reattach(s) {
            Ok(Effect::Launched(_)) => {}
            other => panic!(
                "{}: expected running after the plugin's death, got {other:?}",
                s.plan.task
            ),
        }
    }
    if let Err(e) = std::fs::write(&go, b"go") {
        panic!("{e}");
    }
    for s in &states {
        let r = wait_exit(&mut fresh, &wake, &s.plan.task, Duration::from_secs(30));
        assert_eq!(
            (r.exit_code, r.signal),
            (codes[&s.plan.task], 0),
            "{}",
            s.plan.task
        );
        if let Err(e) = fresh.cleanup(&s.plan.task) {
            panic!("cleanup: {e}");
        }
    }
}

/// A plugin died without anyone recovering its task, and the same task id is started again
/// (a retried StartTask after an agent restart): the old supervisor must not write its killed
/// task's exit into the new run's state dir, where it would pose as the new task's exit.
#[test]
fn a_restarted_id_is_not_ended_by_its_unrecovered_predecessor() {
    if !privileged("a_restarted_id_is_not_ended_by_its_unrecovered_predecessor") {
        return;
    }
    let scratch = Scratch::new();
    let shape = TaskShape::new("reused-id", "sleep", &["1000"]);
    let plan = plan(&scratch, &shape);
    let old = launch_and_abandon(&plan);
    let wake = Wake::default();
    let mut second = backend(&wake);
    let new = match second.launch(&plan) {
        Ok(l) => l.state,
        Err(e) => panic!("relaunch: {}", pledge_core::backend::error_chain(&e)),
    };
    let alive = running;
    assert!(
        !alive(old.process.supervisor_pid, old.process.supervisor_start),
        "the unrecovered supervisor was ended"
    );
    // Give a stray exit record time to land, then look: nothing may have exited.
    std::thread::sleep(Duration::from_millis(500));
    let mut obs = Vec::new();
    second.drain_observations(&mut obs);
    assert!(
        !obs.iter().any(|o| matches!(o, Observation::Exited { .. })),
        "the new run reported an exit while it runs: {obs:?}"
    );
    assert!(!new.process.state_dir.join("exit.json").exists());
    assert!(
        alive(new.process.pid, new.process.pid_start),
        "the new task runs"
    );
    if let Err(e) = second.signal(&plan.task, pledge_core::Signal::TERM) {
        panic!("signal: {e}");
    }
    let r = wait_exit(&mut second, &wake, &plan.task, Duration::from_secs(30));
    assert_eq!(r.signal, 15, "the new run's own exit: {r:?}");
    if let Err(e) = second.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

/// Reattach asked again for a task it already tracks (the conformance suite polls this way)
/// answers as a first reattach would: running while it runs, exited with its real status once
/// the supervisor recorded it, and that exit is not reported a second time as an observation.
#[test]
fn a_repeated_reattach_reports_the_exit_once_it_is_recorded() {
    if !privileged("a_repeated_reattach_reports_the_exit_once_it_is_recorded") {
        return;
    }
    let scratch = Scratch::new();
    let gate = scratch.dir.path().join("gate");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit 3",
        gate.display()
    );
    let mut shape = TaskShape::new("re-reattach", "sh", &[]);
    let argv = ["-c", script.as_str()];
    shape.args = &argv;
    shape
        .unveil
        .push(format!("r:{}", scratch.dir.path().display()));
    let plan = plan(&scratch, &shape);
    let state = launch_and_abandon(&plan);
    let wake = Wake::default();
    let mut second = backend(&wake);
    assert!(matches!(second.reattach(&state), Ok(Effect::Launched(_))));
    if let Err(e) = std::fs::write(&gate, b"") {
        panic!("gate: {e}");
    }
    let exit_file = state.process.state_dir.join("exit.json");
    assert!(
        (0..600).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            exit_file.exists()
        }),
        "the supervisor records the exit"
    );
    match second.reattach(&state) {
        Ok(Effect::AlreadyExited { result, .. }) => {
            assert_eq!((result.exit_code, result.signal), (3, 0));
        }
        other => panic!("expected AlreadyExited, got {other:?}"),
    }
    // The watcher saw the exit too; it must not become a second report.
    std::thread::sleep(Duration::from_millis(300));
    let mut obs = Vec::new();
    second.drain_observations(&mut obs);
    assert!(
        !obs.iter().any(|o| matches!(o, Observation::Exited { .. })),
        "the exit was reported again: {obs:?}"
    );
    if let Err(e) = second.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

/// A task an earlier plugin left behind and nobody recovered (its cleanup failed before a
/// restart): cleanup of its id by a fresh backend, which only knows the configured state dir,
/// ends its supervisor and task and removes its cgroup and state dir.
#[test]
fn cleanup_of_an_untracked_id_removes_what_an_earlier_plugin_left() {
    if !privileged("cleanup_of_an_untracked_id_removes_what_an_earlier_plugin_left") {
        return;
    }
    let scratch = Scratch::new();
    let plan = plan(&scratch, &TaskShape::new("left-behind", "sleep", &["1000"]));
    let state = launch_and_abandon(&plan);
    let p = &state.process;
    let alive = running;
    assert!(alive(p.pid, p.pid_start));
    let roots = pledge_backend_linux::runtime::cgroup::CgroupRoots::detect();
    let cgroup =
        match pledge_backend_linux::runtime::cgroup::TaskCgroup::for_plan(&roots, &plan.cgroup) {
            Ok(c) => c,
            Err(e) => panic!("cgroup: {e}"),
        };
    use pledge_backend_linux::runtime::cgroup::CgroupOps;
    let dirs = cgroup.dirs();
    assert!(dirs.iter().all(|d| d.is_dir()), "{dirs:?}");

    let wake = Wake::default();
    let mut fresh = backend(&wake);
    fresh.configured(&pledge_core::PluginConfig {
        state_dir: scratch.state_root(),
        ..pledge_core::PluginConfig::default()
    });
    if let Err(e) = fresh.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
    assert!(!p.state_dir.exists(), "state dir removed");
    assert!(dirs.iter().all(|d| !d.exists()), "cgroup removed: {dirs:?}");
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !alive(p.pid, p.pid_start) && !alive(p.supervisor_pid, p.supervisor_start)
    });
    assert!(gone, "task and supervisor ended");
    // Idempotent: nothing left is success.
    assert!(fresh.cleanup(&plan.task).is_ok());
}
