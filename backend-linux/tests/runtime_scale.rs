//! 200 running tasks at once: every one is stopped and reported, nothing is left. Prints the
//! launch latency with that many tasks running, the plugin-side memory of tracking them and
//! the supervisors' private memory (figures, not assertions).

mod runtime_common;

use pledge_core::Backend;
use runtime_common::*;
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_hundred_tasks_run_stop_and_clean_up() {
    if !privileged("two_hundred_tasks_run_stop_and_clean_up") {
        return;
    }
    let n: usize = std::env::var("RUNTIME_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let scratch = Scratch::new();
    let wake = Wake::default();
    let mut b = backend(&wake);
    let rss_before = rss_kib();
    let mut plans = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    let mut sups = Vec::with_capacity(n);
    for i in 0..n {
        let plan = plan(&scratch, &TaskShape::new("many", "sleep", &["600"]));
        let t0 = Instant::now();
        match b.launch(&plan) {
            Ok(l) => sups.push(l.state.process.supervisor_pid),
            Err(e) => panic!("launch {i}: {}", pledge_core::backend::error_chain(&e)),
        }
        lat.push(t0.elapsed().as_micros());
        plans.push(plan);
    }
    let rss_running = rss_kib();
    let anon: u64 = sups
        .iter()
        .filter_map(|p| pledge_backend_linux::runtime::procfs::uss_split(*p))
        .map(|(_, a)| a)
        .sum();
    assert_eq!(b.tracked(), n);
    for p in &plans {
        if let Err(e) = b.kill_all(&p.task) {
            panic!("kill_all: {e}");
        }
    }
    for p in &plans {
        let r = wait_exit(&mut b, &wake, &p.task, Duration::from_secs(60));
        assert_eq!(r.signal, 9, "{}: {r:?}", p.task);
        if let Err(e) = b.cleanup(&p.task) {
            panic!("cleanup: {e}");
        }
    }
    assert_eq!(b.tracked(), 0);
    lat.sort_unstable();
    let pct = |q: usize| {
        lat.get(lat.len().saturating_sub(1) * q / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "runtime scale: {n} tasks; launch min {} us, p50 {} us, p99 {} us (sequential, with up to {n} running); \
         test-process RSS {rss_before} -> {rss_running} KiB; supervisors' anonymous memory {} KiB in total ({} KiB each)",
        pct(0),
        pct(50),
        pct(99),
        anon / 1024,
        anon / 1024 / n.max(1) as u64
    );
}
