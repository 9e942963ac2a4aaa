//! 1000 start/stop cycles leave no process, cgroup, fd, state dir or FIFO writer behind.
//! Alone in its test binary, so nothing else perturbs the counts. Prints the supervisor's
//! private memory (USS) and the launch latency as figures, asserting neither.

mod runtime_common;

use pledge_core::Backend;
use runtime_common::*;
use std::time::{Duration, Instant};

#[test]
fn thousand_start_stop_cycles_leave_nothing_behind() {
    if !privileged("thousand_start_stop_cycles_leave_nothing_behind") {
        return;
    }
    let cycles: usize = std::env::var("RUNTIME_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let scratch = Scratch::new();
    let wake = Wake::default();
    let mut b = backend(&wake);
    let fifo = Fifo::new(scratch.dir.path(), "cycles");

    // Warm up once so lazily opened fds (the watcher's, tracing's) are counted in "before".
    let warm = plan(&scratch, &TaskShape::new("warm", "true", &[]));
    if let Err(e) = b.launch(&warm) {
        panic!("launch: {}", pledge_core::backend::error_chain(&e));
    }
    let _ = wait_exit(&mut b, &wake, &warm.task, Duration::from_secs(30));
    let _ = b.cleanup(&warm.task);

    let fds_before = fd_count();
    let cg_before = test_cgroups();
    let sup_before = supervisors();
    let mut launch_us: Vec<u128> = Vec::with_capacity(cycles);
    let mut uss_seen = None;
    for i in 0..cycles {
        // Even cycles exit on their own, odd ones are stopped (kill_all), as Nomad would.
        let stop = i % 2 == 1;
        let mut shape = if stop {
            TaskShape::new("cycle", "sleep", &["600"])
        } else {
            TaskShape::new("cycle", "true", &[])
        };
        shape.stdout = Some(fifo.path.clone());
        let plan = plan(&scratch, &shape);
        let t0 = Instant::now();
        let l = match b.launch(&plan) {
            Ok(l) => l,
            Err(e) => panic!(
                "cycle {i}: launch: {}",
                pledge_core::backend::error_chain(&e)
            ),
        };
        launch_us.push(t0.elapsed().as_micros());
        if stop {
            if uss_seen.is_none() {
                // Measured once the supervisor waits (after its report): its steady state.
                std::thread::sleep(Duration::from_millis(50));
                uss_seen = pledge_backend_linux::runtime::procfs::uss_split(
                    l.state.process.supervisor_pid,
                );
            }
            if let Err(e) = b.kill_all(&plan.task) {
                panic!("cycle {i}: kill_all: {e}");
            }
        }
        let r = wait_exit(&mut b, &wake, &plan.task, Duration::from_secs(30));
        assert_eq!(r.signal, if stop { 9 } else { 0 }, "cycle {i}: {r:?}");
        if let Err(e) = b.cleanup(&plan.task) {
            panic!("cycle {i}: cleanup: {e}");
        }
    }
    assert_eq!(b.tracked(), 0);
    assert_eq!(fd_count(), fds_before, "fds of the plugin process");
    assert_eq!(test_cgroups(), cg_before, "task cgroups");
    // Supervisors exit right after writing the record; give the last one a moment.
    for _ in 0..100 {
        if supervisors() == sup_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(supervisors(), sup_before, "supervisor processes");
    let leftover: Vec<_> = std::fs::read_dir(scratch.state_root())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftover.is_empty(), "state dirs: {leftover:?}");
    // No process other than our reader holds the FIFO.
    let mut holders = Vec::new();
    {
        for pid in pledge_backend_linux::runtime::procfs::all_pids() {
            if pid == std::process::id() {
                continue;
            }
            if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                if fds.flatten().any(|f| {
                    std::fs::read_link(f.path())
                        .map(|l| l == fifo.path)
                        .unwrap_or(false)
                }) {
                    holders.push(pid);
                }
            }
        }
    }
    assert!(
        holders.is_empty(),
        "processes still holding the log FIFO: {holders:?}"
    );
    let _ = fifo.finish();

    launch_us.sort_unstable();
    let pct = |p: usize| {
        launch_us
            .get(launch_us.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "runtime figures: {cycles} cycles; launch min {} us, p50 {} us, p99 {} us; supervisor USS {} KiB, of it anonymous {} KiB (the rest: its executable's pages, shared with the plugin in production)",
        pct(0),
        pct(50),
        pct(99),
        uss_seen.map_or("?".to_string(), |b| (b.0 / 1024).to_string()),
        uss_seen.map_or("?".to_string(), |b| (b.1 / 1024).to_string())
    );
}
