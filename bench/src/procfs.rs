//! What the memory and scale phases read about processes: RSS, USS, CPU time, fds, children.

use pledge_backend_linux::runtime::procfs::all_pids;

use std::path::Path;

/// Clock ticks per second for /proc/PID/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Resident set size in KiB (`VmRSS`), or 0 if the process is gone.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Unique set size in KiB: private clean + private dirty pages (smaps_rollup).
pub fn uss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    ["Private_Clean:", "Private_Dirty:"]
        .iter()
        .map(|k| field_kib(&text, k))
        .sum()
}

fn status_field(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    field_kib(&text, key)
}

fn field_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `pid` in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised comm (which may contain spaces).
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SEC
}

/// Number of open fds of `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Every pid whose command line contains `needle` (as one argument or within one).
pub fn pids_with_arg(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for pid in all_pids() {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd
            .split(|b| *b == 0)
            .any(|a| String::from_utf8_lossy(a).contains(needle))
        {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Children of `parent` whose comm starts with `comm_prefix` (comm is cut at 15 bytes).
pub fn children_named(parent: u32, comm_prefix: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for pid in all_pids() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(parent) && !comm.is_empty() && comm_prefix.starts_with(comm) {
            out.push(pid);
        }
    }
    out
}

/// Whether `path` (a cgroup directory) still exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me) > 0);
        assert!(uss_kib(me) > 0);
        assert!(fd_count(me) >= 3);
        assert!(cpu_seconds(me) >= 0.0);
        assert_eq!(rss_kib(u32::MAX), 0, "a missing process reads as 0");
    }

    #[test]
    fn finds_a_child_by_argument() {
        let mut child = std::process::Command::new("sleep")
            .arg("31.4159")
            .spawn()
            .expect("sleep");
        // Right after spawn the child may not have exec'd yet (its cmdline is still ours):
        // look again until it shows, within a generous bound.
        let mut found = pids_with_arg("31.4159");
        for _ in 0..500 {
            if found.contains(&child.id()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = pids_with_arg("31.4159");
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(children_named(std::process::id(), "sleep").is_empty() || !found.is_empty());
    }
}
