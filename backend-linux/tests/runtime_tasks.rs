//! Privileged end-to-end tests of the task runtime on the real kernel: cgroup limits per
//! resource case, placement, namespaces, exit codes and signals, OOM, stats, exec, launch
//! errors. They read the host's cgroup mode from the backend's probe and assert per mode
//! (`CGROUP_MODE=v1|v2` makes a rig's expectation explicit).

mod runtime_common;

use pledge_backend_linux::runtime::cgroup::{CgroupOps, TaskCgroup, V1Controller};
use pledge_core::backend::CgroupMode;
use pledge_core::{Backend, Classify, FailureClass, Signal, TaskResources};
use runtime_common::*;
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn mode(b: &mut pledge_backend_linux::runtime::LinuxBackend) -> CgroupMode {
    let m = b.probe().cgroup;
    match std::env::var("CGROUP_MODE").as_deref() {
        Ok("v1") => assert_eq!(m, CgroupMode::V1, "CGROUP_MODE=v1 but the probe says {m:?}"),
        Ok("v2") => assert_eq!(m, CgroupMode::V2, "CGROUP_MODE=v2 but the probe says {m:?}"),
        _ => {}
    }
    m
}

/// v1: the file in one controller's dir; v2: the file in the task's dir.
fn cg_file(cg: &TaskCgroup, ctrl: V1Controller, file: &str) -> std::path::PathBuf {
    match cg {
        TaskCgroup::V2(c) => c.dir().join(file),
        TaskCgroup::V1(c) => c.dir(ctrl).unwrap_or(Path::new("/nonexistent")).join(file),
    }
}

/// What the kernel shows for "no limit" in v1 memory files (PAGE_COUNTER_MAX pages).
fn v1_unlimited(s: &str) -> bool {
    s.parse::<u64>().map(|v| v >= 1 << 62).unwrap_or(false)
}

#[test]
fn cgroup_files_hold_the_planned_limits_for_each_resource_case() {
    if !privileged("cgroup_files_hold_the_planned_limits_for_each_resource_case") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let m = mode(&mut b);
    let scratch = Scratch::new();
    struct Case {
        memory: i64,
        memory_max: i64,
        cores: &'static str,
        hard: Option<u64>,
        soft: Option<u64>,
        /// The plugin's optional `cpu_hard_limit` cap, as the planner computes it.
        cpu_max: Option<(u64, u64)>,
    }
    let cases = [
        Case {
            memory: 200,
            memory_max: 0,
            cores: "",
            hard: Some(209_715_200),
            soft: None,
            cpu_max: Some((25_000, 100_000)),
        },
        Case {
            memory: 150,
            memory_max: 250,
            cores: "",
            hard: Some(262_144_000),
            soft: Some(157_286_400),
            cpu_max: None,
        },
        Case {
            memory: 200,
            memory_max: -1,
            cores: "",
            hard: None,
            soft: Some(209_715_200),
            cpu_max: None,
        },
        Case {
            memory: 100,
            memory_max: 0,
            cores: "0",
            hard: Some(104_857_600),
            soft: None,
            cpu_max: None,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut shape = TaskShape::new("limits", "sleep", &["60"]);
        shape.resources = TaskResources {
            cpu_shares: 500,
            memory_mb: c.memory,
            memory_max_mb: c.memory_max,
            cpuset_cpus: c.cores.to_string(),
            cpuset_cgroup: String::new(),
        };
        let mut plan = plan(&scratch, &shape);
        plan.cgroup.cpu_max = c.cpu_max;
        let launched = match b.launch(&plan) {
            Ok(l) => l,
            Err(e) => panic!(
                "case {i}: launch: {}",
                pledge_core::backend::error_chain(&e)
            ),
        };
        let cg = match b.cgroup_of(&plan.task) {
            Some(c) => c.clone(),
            None => panic!("case {i}: not tracked"),
        };
        let (hard_file, soft_file) = match m {
            CgroupMode::V2 => ("memory.max", "memory.low"),
            _ => ("memory.limit_in_bytes", "memory.soft_limit_in_bytes"),
        };
        let hard = read(&cg_file(&cg, V1Controller::Memory, hard_file));
        let soft = read(&cg_file(&cg, V1Controller::Memory, soft_file));
        match c.hard {
            Some(v) => assert_eq!(hard, v.to_string(), "case {i}: {hard_file}"),
            None if m == CgroupMode::V2 => assert_eq!(hard, "max", "case {i}: {hard_file}"),
            None => assert!(
                v1_unlimited(&hard),
                "case {i}: {hard_file} = {hard}, want unlimited"
            ),
        }
        match c.soft {
            Some(v) => assert_eq!(soft, v.to_string(), "case {i}: {soft_file}"),
            None if m == CgroupMode::V2 => assert_eq!(soft, "0", "case {i}: {soft_file}"),
            None => assert!(
                v1_unlimited(&soft),
                "case {i}: {soft_file} = {soft}, want unset"
            ),
        }
        if !c.cores.is_empty() {
            assert_eq!(
                read(&cg_file(&cg, V1Controller::CpuSet, "cpuset.cpus")),
                c.cores,
                "case {i}: cores pinned"
            );
        }
        // Nomad's layout: tasks with reserved cores live under reserve.slice (v2) or
        // cpuset's reserve/ (v1), the others under share.
        let want = if c.cores.is_empty() {
            "share"
        } else {
            "reserve"
        };
        let cpuset_dir = cg_file(&cg, V1Controller::CpuSet, "");
        let part = if m == CgroupMode::V2 {
            format!("/{want}.slice/")
        } else {
            format!("/{want}/")
        };
        assert!(
            cpuset_dir.to_string_lossy().contains(&part),
            "case {i}: {} is not under {part}",
            cpuset_dir.display()
        );
        match (m, c.cpu_max) {
            (CgroupMode::V2, Some((q, p))) => assert_eq!(
                read(&cg_file(&cg, V1Controller::Cpu, "cpu.max")),
                format!("{q} {p}"),
                "case {i}: cpu.max"
            ),
            (CgroupMode::V2, None) => assert!(
                read(&cg_file(&cg, V1Controller::Cpu, "cpu.max")).starts_with("max "),
                "case {i}: cpu.max uncapped"
            ),
            (_, Some((q, p))) => {
                assert_eq!(
                    read(&cg_file(&cg, V1Controller::Cpu, "cpu.cfs_quota_us")),
                    q.to_string(),
                    "case {i}: cpu.cfs_quota_us"
                );
                assert_eq!(
                    read(&cg_file(&cg, V1Controller::Cpu, "cpu.cfs_period_us")),
                    p.to_string(),
                    "case {i}: cpu.cfs_period_us"
                );
            }
            (_, None) => assert_eq!(
                read(&cg_file(&cg, V1Controller::Cpu, "cpu.cfs_quota_us")),
                "-1",
                "case {i}: cpu.cfs_quota_us uncapped"
            ),
        }
        let pids_max = read(&cg_file(&cg, V1Controller::Pids, "pids.max"));
        assert_eq!(
            pids_max,
            plan.cgroup
                .pids_max
                .map_or("max".to_string(), |n| n.to_string()),
            "case {i}: pids.max"
        );
        match m {
            CgroupMode::V2 => {
                assert_eq!(
                    read(&cg_file(&cg, V1Controller::Cpu, "cpu.weight.nice")),
                    plan.cgroup.nice.to_string()
                );
            }
            _ => {
                assert_eq!(
                    read(&cg_file(&cg, V1Controller::Cpu, "cpu.shares")),
                    "500",
                    "case {i}: cpu.shares"
                );
                // importance is applied as the task's nice value on v1
                let stat = read(Path::new(&format!(
                    "/proc/{}/stat",
                    launched.state.process.pid
                )));
                let nice = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(16))
                    .unwrap_or("?")
                    .to_string();
                assert_eq!(nice, plan.cgroup.nice.to_string(), "case {i}: nice");
            }
        }
        if let Err(e) = b.kill_all(&plan.task) {
            panic!("kill_all: {e}");
        }
        let r = wait_exit(&mut b, &wake, &plan.task, LONG);
        assert_eq!(r.signal, 9, "case {i}: killed task reports SIGKILL");
        if let Err(e) = b.cleanup(&plan.task) {
            panic!("cleanup: {e}");
        }
        for d in cg.dirs() {
            assert!(!d.exists(), "case {i}: {} removed", d.display());
        }
        assert!(!plan.state_dir.exists(), "case {i}: state dir removed");
    }
}

#[test]
fn task_is_in_its_cgroup_and_sees_only_its_pid_namespace() {
    if !privileged("task_is_in_its_cgroup_and_sees_only_its_pid_namespace") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let m = mode(&mut b);
    let scratch = Scratch::new();
    let fifo = Fifo::new(scratch.dir.path(), "ns");
    let mut shape = TaskShape::new(
        "ns",
        "sh",
        &["-c", "cat /proc/self/cgroup; echo ---; ps -e -o pid=,comm="],
    );
    shape.stdout = Some(fifo.path.clone());
    let plan = plan(&scratch, &shape);
    if let Err(e) = b.launch(&plan) {
        panic!("launch: {}", pledge_core::backend::error_chain(&e));
    }
    let r = wait_exit(&mut b, &wake, &plan.task, LONG);
    let out = fifo.finish();
    assert_eq!((r.exit_code, r.signal), (0, 0), "output: {out}");
    let (cgroups, ps) = out.split_once("---").unwrap_or((&out, ""));
    let want = match m {
        CgroupMode::V2 => format!("0::/{}", plan.cgroup.v2_path),
        _ => {
            let flat = plan
                .cgroup
                .v1_path
                .replace("/share/", "/")
                .replace("/reserve/", "/");
            format!("memory:/{flat}")
        }
    };
    assert!(
        cgroups.lines().any(|l| l.ends_with(&want)),
        "want a line ending {want:?} in:\n{cgroups}"
    );
    let procs: Vec<(u32, String)> = ps
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.to_string()))
        })
        .collect();
    // Our init is pid 1 (it forwards signals; a program as pid 1 would never get SIGTERM).
    assert!(
        procs.contains(&(1, "pledge-init".to_string())),
        "the driver's init is pid 1 of its namespace: {procs:?}"
    );
    assert!(
        procs.contains(&(2, "sh".to_string())),
        "sh is pid 2 of its namespace: {procs:?}"
    );
    assert!(
        procs.len() <= 3 && procs.iter().all(|(p, _)| *p <= 4),
        "only the task's own processes: {procs:?}"
    );
    if let Err(e) = b.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

#[test]
fn exit_codes_and_signals_are_reported_exactly() {
    if !privileged("exit_codes_and_signals_are_reported_exactly") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();

    let seven = plan(&scratch, &TaskShape::new("seven", "sh", &["-c", "exit 7"]));
    let sleeper = plan(&scratch, &TaskShape::new("sleeper", "sleep", &["60"]));
    let trap = plan(
        &scratch,
        &TaskShape::new(
            "trap",
            "sh",
            &[
                "-c",
                "trap 'exit 3' TERM; : > local/ready; while :; do sleep 0.05; done",
            ],
        ),
    );
    for p in [&seven, &sleeper, &trap] {
        if let Err(e) = b.launch(p) {
            panic!(
                "launch {}: {}",
                p.task,
                pledge_core::backend::error_chain(&e)
            );
        }
    }
    let r = wait_exit(&mut b, &wake, &seven.task, LONG);
    assert_eq!(
        (r.exit_code, r.signal, r.oom_killed, r.err.as_deref()),
        (7, 0, false, None)
    );

    // sleep has no handler, but it is pid 2 under the driver's init, which forwards SIGTERM:
    // it dies by the signal, and the program's signal (not the init's exit) is reported.
    if let Err(e) = b.signal(&sleeper.task, Signal::TERM) {
        panic!("signal: {e}");
    }
    let r = wait_exit(&mut b, &wake, &sleeper.task, LONG);
    assert_eq!((r.exit_code, r.signal), (0, 15));

    // A handler is reached through the pidfd: the trap's own exit code comes back.
    // The script marks its task dir once the trap is installed.
    let ready = trap.cwd.join("local/ready");
    for _ in 0..1000 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ready.exists(), "the trap was installed");
    if let Err(e) = b.signal(&trap.task, Signal::TERM) {
        panic!("signal: {e}");
    }
    let r = wait_exit(&mut b, &wake, &trap.task, LONG);
    assert_eq!((r.exit_code, r.signal), (3, 0));

    // Signalling an exited task is a Gone error, not a signal to a reused pid.
    let e = b.signal(&seven.task, Signal::TERM).err();
    assert_eq!(e.map(|e| e.class()), Some(FailureClass::Gone));
    for p in [&seven, &sleeper, &trap] {
        if let Err(e) = b.cleanup(&p.task) {
            panic!("cleanup: {e}");
        }
        assert!(b.cleanup(&p.task).is_ok(), "cleanup is idempotent");
    }
}

#[test]
fn memory_hog_is_reported_oom_killed() {
    if !privileged("memory_hog_is_reported_oom_killed") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    // tail looks for the last newline of an endless stream without one: it grows forever.
    let mut shape = TaskShape::new("hog", "tail", &["/dev/zero"]);
    shape.resources.memory_mb = 32;
    let plan = plan(&scratch, &shape);
    if let Err(e) = b.launch(&plan) {
        panic!("launch: {}", pledge_core::backend::error_chain(&e));
    }
    let r = wait_exit(&mut b, &wake, &plan.task, Duration::from_secs(60));
    assert!(r.oom_killed, "{r:?}");
    assert_eq!(r.signal, 9);
    if let Err(e) = b.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

#[test]
fn usage_is_sampled_from_the_cgroup() {
    if !privileged("usage_is_sampled_from_the_cgroup") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let plan = plan(
        &scratch,
        &TaskShape::new("busy", "sh", &["-c", "while :; do :; done"]),
    );
    let l = match b.launch(&plan) {
        Ok(l) => l,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    };
    let mut u = pledge_core::Usage::default();
    for _ in 0..100 {
        u = match b.sample(&plan.task) {
            Ok(u) => u,
            Err(e) => panic!("sample: {e}"),
        };
        if u.cpu_user_ns + u.cpu_system_ns > 50_000_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(u.at.is_some());
    assert!(
        u.cpu_user_ns + u.cpu_system_ns > 50_000_000,
        "cpu time accumulates: {u:?}"
    );
    assert!(u.memory_usage > 0, "{u:?}");
    assert!(
        u.memory_max_usage >= u.memory_usage || u.memory_max_usage == 0,
        "{u:?}"
    );
    assert!(u.pids.contains(&l.state.process.pid), "{u:?}");
    if let Err(e) = b.kill_all(&plan.task) {
        panic!("kill_all: {e}");
    }
    let _ = wait_exit(&mut b, &wake, &plan.task, LONG);
    if let Err(e) = b.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

#[test]
fn launch_errors_reach_the_caller_and_leave_nothing_behind() {
    if !privileged("launch_errors_reach_the_caller_and_leave_nothing_behind") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let plan = plan(
        &scratch,
        &TaskShape::new("missing", "no-such-program-xyz", &[]),
    );
    let cg = match TaskCgroup::for_plan(b.roots(), &plan.cgroup) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let e = match b.launch(&plan) {
        Ok(_) => panic!("a missing program must not start"),
        Err(e) => e,
    };
    let msg = pledge_core::backend::error_chain(&e);
    assert!(msg.contains("no-such-program-xyz"), "{msg}");
    assert_eq!(e.class(), FailureClass::Fatal, "{msg}");
    assert_eq!(b.tracked(), 0);
    for d in cg.dirs() {
        assert!(!d.exists(), "{} removed after a failed start", d.display());
    }
    assert!(!plan.state_dir.exists());

    // A regular file where the FIFO should be is refused (symlink/hardlink planting).
    let planted = scratch.dir.path().join("planted");
    let _ = std::fs::write(&planted, "secret");
    let mut shape = TaskShape::new("planted", "true", &[]);
    shape.stdout = Some(planted.clone());
    let p2 = runtime_common::plan(&scratch, &shape);
    let e = b
        .launch(&p2)
        .err()
        .map(|e| pledge_core::backend::error_chain(&e))
        .unwrap_or_default();
    assert!(e.contains("not a FIFO"), "{e}");
    assert_eq!(read(&planted), "secret");
    let link = scratch.dir.path().join("link.fifo");
    let _ = std::os::unix::fs::symlink(&planted, &link);
    shape.stdout = Some(link);
    let p3 = runtime_common::plan(&scratch, &shape);
    let e = b
        .launch(&p3)
        .err()
        .map(|e| pledge_core::backend::error_chain(&e))
        .unwrap_or_default();
    assert!(e.contains("without following symlinks"), "{e}");
}

/// The inode of a namespace file, as `readlink /proc/self/ns/x` shows it (`x:[inode]`).
fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

#[test]
fn bridge_mode_joins_the_alloc_netns_and_host_pid_mode_shares_the_pid_namespace() {
    if !privileged("bridge_mode_joins_the_alloc_netns_and_host_pid_mode_shares_the_pid_namespace") {
        return;
    }
    // A network namespace held by a process (Nomad's /var/run/netns/<alloc> is a bind mount
    // of the same kind of nsfs file).
    let mut holder = match std::process::Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("unshare --net: {e}"),
    };
    let netns = format!("/proc/{}/ns/net", holder.id());
    for _ in 0..3000 {
        if ns_inode(&netns) != 0 && ns_inode(&netns) != ns_inode("/proc/self/ns/net") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let fifo = Fifo::new(scratch.dir.path(), "net");
    let mut shape = TaskShape::new(
        "net",
        "sh",
        &["-c", "readlink /proc/self/ns/net /proc/self/ns/pid"],
    );
    shape.stdout = Some(fifo.path.clone());
    shape.pid_mode = Some("host");
    let mut plan = plan(&scratch, &shape);
    plan.namespaces.net_path = Some(netns.clone().into());
    let want_net = format!("net:[{}]", ns_inode(&netns));
    let want_pid = format!("pid:[{}]", ns_inode("/proc/self/ns/pid"));
    let launched = b.launch(&plan);
    let r = match launched {
        Ok(_) => wait_exit(&mut b, &wake, &plan.task, LONG),
        Err(e) => {
            let _ = holder.kill();
            panic!("launch: {}", pledge_core::backend::error_chain(&e));
        }
    };
    let out = fifo.finish();
    let _ = b.cleanup(&plan.task);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_ne!(
        want_net,
        format!("net:[{}]", ns_inode("/proc/self/ns/net")),
        "the holder has its own netns"
    );
    assert_eq!(r.exit_code, 0, "{out}");
    assert!(
        out.lines().any(|l| l.trim() == want_net),
        "joined {want_net}: {out}"
    );
    assert!(
        out.lines().any(|l| l.trim() == want_pid),
        "host pid namespace {want_pid}: {out}"
    );
}

#[test]
fn a_restart_into_the_same_cgroup_kills_what_the_earlier_run_left() {
    if !privileged("a_restart_into_the_same_cgroup_kills_what_the_earlier_run_left") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let first = plan(&scratch, &TaskShape::new("restart", "sleep", &["600"]));
    if let Err(e) = b.launch(&first) {
        panic!("launch: {}", pledge_core::backend::error_chain(&e));
    }
    // Nomad's next attempt has a new id but the same `<alloc>.<task>` cgroup.
    let mut second = plan(&scratch, &TaskShape::new("restart", "sleep", &["600"]));
    second.cgroup.v1_path = first.cgroup.v1_path.clone();
    second.cgroup.v2_path = first.cgroup.v2_path.clone();
    let second_main = match b.launch(&second) {
        Ok(l) => l.state.process.pid,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    };
    let r = wait_exit(&mut b, &wake, &first.task, LONG);
    assert_eq!(r.signal, 9, "the leftover was killed: {r:?}");
    let pids = b.sample(&second.task).map(|u| u.pids).unwrap_or_default();
    // The new run's init (its main pid) and its program, nothing of the first run.
    assert_eq!(pids.len(), 2, "only the new run is in the cgroup: {pids:?}");
    assert!(pids.contains(&second_main), "{second_main} in {pids:?}");
    let _ = b.kill_all(&second.task);
    let _ = wait_exit(&mut b, &wake, &second.task, LONG);
    for t in [&first.task, &second.task] {
        if let Err(e) = b.cleanup(t) {
            panic!("cleanup: {e}");
        }
    }
}

#[test]
fn external_mode_execs_pledge_com_with_the_rendered_command_line() {
    if !privileged("external_mode_execs_pledge_com_with_the_rendered_command_line") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    // A stand-in pledge.com that records its argv and cwd.
    let fake = scratch.dir.path().join("pledge-1.8.com");
    let record = scratch.dir.path().join("argv.txt");
    let body = format!(
        "#!/bin/sh\necho \"$(id -u)|$PWD|$*\" > {}\nexit 4\n",
        record.display()
    );
    // The stand-in runs as the task's user (nobody): let it reach its files.
    let _ = std::fs::set_permissions(scratch.dir.path(), std::fs::Permissions::from_mode(0o777));
    if let Err(e) = std::fs::write(&fake, body) {
        panic!("{e}");
    }
    let _ = std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755));
    let mut plan = plan(&scratch, &TaskShape::new("external", "echo", &["hi"]));
    plan.pledge_executable = Some(fake.clone());
    plan.user = Some("nobody".into());
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let l = match b.launch(&plan) {
        Ok(l) => l,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    };
    assert!(
        l.sandbox_report.contains("external"),
        "{}",
        l.sandbox_report
    );
    let r = wait_exit(&mut b, &wake, &plan.task, LONG);
    assert_eq!(r.exit_code, 4);
    let got = read(&record);
    let want_argv = pledge_backend_linux::sandbox::external_argv(&plan)[1..].join(" ");
    let uid = nobody.map_or("?".to_string(), |u| u.to_string());
    assert_eq!(got, format!("{uid}|{}|{want_argv}", plan.cwd.display()));
    assert!(got.ends_with("-- echo hi"), "{got}");
    if let Err(e) = b.cleanup(&plan.task) {
        panic!("cleanup: {e}");
    }
}

#[test]
fn the_task_starts_with_default_signal_dispositions() {
    if !privileged("the_task_starts_with_default_signal_dispositions") {
        return;
    }
    let wake = Wake::default();
    let mut b = backend(&wake);
    let scratch = Scratch::new();
    let fifo = Fifo::new(scratch.dir.path(), "sigs");
    let mut shape = TaskShape::new("sigs", "sh", &["-c", "grep SigIgn /proc/self/status"]);
    shape.stdout = Some(fifo.path.clone());
    let plan = plan(&scratch, &shape);
    if let Err(e) = b.launch(&plan) {
        panic!("launch: {}", pledge_core::backend::error_chain(&e));
    }
    let r = wait_exit(&mut b, &wake, &plan.task, LONG);
    let out = fifo.finish();
    assert_eq!(r.exit_code, 0, "{out}");
    // grep is exec'd by sh, which ignores nothing itself: the mask must be all zero (the
    // supervisor's chain ignored SIGPIPE and glibc's internal signals 32 and 33).
    assert!(
        out.trim().ends_with("0000000000000000"),
        "no signal ignored: {out}"
    );
    let _ = b.cleanup(&plan.task);
}
