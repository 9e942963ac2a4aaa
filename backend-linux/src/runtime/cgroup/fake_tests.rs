//! The cgroup code against a tempdir laid out like cgroupfs: the v2 paths run here on every
//! host (real v2 runs happen in the VM rig), and v1 without touching the host's hierarchies.

use super::*;
use pledge_core::CgroupPlan;
use std::fs;

/// Interface files the kernel creates in a new v2 cgroup (empty, as fixtures).
const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.kill",
    "cgroup.events",
    "cgroup.freeze",
    "cpu.weight",
    "cpu.weight.nice",
    "cpu.max",
    "cpu.stat",
    "memory.max",
    "memory.low",
    "memory.current",
    "memory.peak",
    "memory.stat",
    "memory.swap.current",
    "memory.events",
    "cpuset.cpus",
    "pids.max",
];

const V1_FILES: &[(V1Controller, &[&str])] = &[
    (
        V1Controller::Cpu,
        &[
            "cgroup.procs",
            "cpu.shares",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cpu.stat",
        ],
    ),
    (
        V1Controller::CpuAcct,
        &[
            "cgroup.procs",
            "cpuacct.usage",
            "cpuacct.usage_user",
            "cpuacct.usage_sys",
            "cpuacct.stat",
        ],
    ),
    (
        V1Controller::CpuSet,
        &["cgroup.procs", "cpuset.cpus", "cpuset.mems"],
    ),
    (
        V1Controller::Memory,
        &[
            "cgroup.procs",
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.max_usage_in_bytes",
            "memory.stat",
            "memory.oom_control",
            "memory.kmem.usage_in_bytes",
        ],
    ),
    (V1Controller::Pids, &["cgroup.procs", "pids.max"]),
    (V1Controller::Freezer, &["cgroup.procs", "freezer.state"]),
];

fn touch_all(dir: &std::path::Path, files: &[&str]) {
    let _ = fs::create_dir_all(dir);
    for f in files {
        let _ = fs::write(dir.join(f), "");
    }
}

fn get(dir: &std::path::Path, f: &str) -> String {
    fs::read_to_string(dir.join(f))
        .unwrap_or_else(|e| format!("<{f}: {e}>"))
        .trim()
        .to_string()
}

fn mib(n: u64) -> u64 {
    n * 1024 * 1024
}

fn plan(memory_low: Option<u64>, memory_max: Option<u64>) -> CgroupPlan {
    CgroupPlan {
        v2_path: "nomad.slice/share.slice/a1.web.scope".into(),
        v1_path: "nomad/share/a1.web".into(),
        cpu_shares: 500,
        cpu_weight: 20,
        cpu_max: Some((50_000, 100_000)),
        memory_low,
        memory_max,
        cpuset_cpus: Some("1".into()),
        pids_max: Some(128),
        nice: -5,
    }
}

fn v2_fixture() -> (tempfile::TempDir, TaskCgroup, std::path::PathBuf) {
    let root = match tempfile::tempdir() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let _ = fs::write(
        root.path().join("cgroup.controllers"),
        "cpuset cpu io memory pids",
    );
    let _ = fs::write(root.path().join("cgroup.subtree_control"), "");
    let roots = CgroupRoots::v2_at(root.path().to_path_buf());
    let cg = match TaskCgroup::for_plan(&roots, &plan(None, None)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let dir = root.path().join("nomad.slice/share.slice/a1.web.scope");
    (root, cg, dir)
}

#[test]
fn v2_creates_the_path_and_writes_each_resource_case() {
    let (root, cg, dir) = v2_fixture();
    assert!(matches!(cg.create(), Ok(())));
    assert!(dir.is_dir());
    // One write per controller: a regular file keeps the overlay of the writes, the last of
    // which is +pids (cgroupfs applies each).
    assert!(
        get(root.path(), "cgroup.subtree_control").starts_with("+pids"),
        "controllers enabled on the root"
    );
    touch_all(&dir, V2_FILES);
    let _ = fs::write(dir.join("cpu.max"), "max 100000");
    for (low, max, want_low, want_max) in [
        (None, Some(mib(200)), "", "209715200"),
        (Some(mib(150)), Some(mib(250)), "157286400", "262144000"),
        (Some(mib(200)), None, "209715200", "max"),
    ] {
        let p = plan(low, max);
        assert!(matches!(cg.apply(&p), Ok(())), "{:?}", cg.apply(&p));
        assert_eq!(get(&dir, "memory.max"), want_max);
        assert_eq!(get(&dir, "memory.low"), want_low);
        let _ = fs::write(dir.join("memory.low"), "");
    }
    assert_eq!(get(&dir, "cpu.weight"), "20");
    assert_eq!(get(&dir, "cpu.max"), "50000 100000");
    assert_eq!(get(&dir, "cpu.weight.nice"), "-5");
    assert_eq!(get(&dir, "cpuset.cpus"), "1");
    assert_eq!(get(&dir, "pids.max"), "128");
    assert_eq!(cg.join_files(), vec![dir.join("cgroup.procs")]);
    assert_eq!(cg.oom_file(), Some(dir.join("memory.events")));
    assert!(!cg.nice_by_setpriority());
}

#[test]
fn v2_missing_controller_files_are_errors_naming_the_file() {
    let (_root, cg, dir) = v2_fixture();
    assert!(matches!(cg.create(), Ok(())));
    // No interface files: the cpu controller is not enabled for this cgroup. (cgroups-rs
    // opens files with O_CREAT, which makes cpu.weight here; cgroupfs refuses that too.)
    let e = cg
        .apply(&plan(None, Some(mib(64))))
        .err()
        .map(|e| crate::runtime::chain(&e))
        .unwrap_or_default();
    assert!(e.contains("cpu.max"), "{e}");
    assert!(e.contains(&dir.display().to_string()), "{e}");
}

#[test]
fn v2_kill_stats_and_populated_read_the_kernel_files() {
    let (_root, cg, dir) = v2_fixture();
    assert!(matches!(cg.create(), Ok(())));
    touch_all(&dir, V2_FILES);
    let _ = fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n");
    let _ = fs::write(dir.join("cgroup.procs"), "11\n12\n");
    let _ = fs::write(dir.join("cpu.stat"), "usage_usec 300\nuser_usec 200\nsystem_usec 100\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n");
    let _ = fs::write(
        dir.join("memory.stat"),
        "anon 4096\nfile 8192\nkernel 1024\n",
    );
    let _ = fs::write(dir.join("memory.current"), "16384\n");
    let _ = fs::write(dir.join("memory.peak"), "32768\n");
    let _ = fs::write(dir.join("memory.swap.current"), "512\n");
    let _ = fs::write(dir.join("memory.max"), "max\n");
    let _ = fs::write(dir.join("memory.low"), "0\n");
    assert!(cg.populated());
    assert_eq!(cg.pids(), vec![11, 12]);
    let u = cg.usage();
    assert_eq!((u.cpu_user_ns, u.cpu_system_ns), (200_000, 100_000));
    assert_eq!((u.throttled_periods, u.throttled_ns), (2, 7_000));
    assert_eq!(
        (u.memory_rss, u.memory_cache, u.memory_kernel),
        (4096, 8192, 1024)
    );
    assert_eq!(
        (u.memory_usage, u.memory_max_usage, u.memory_swap),
        (16384, 32768, 512)
    );
    assert!(matches!(cg.kill_all(), Ok(())));
    assert_eq!(
        get(&dir, "cgroup.kill"),
        "1",
        "v2 kills through cgroup.kill"
    );
    let _ = fs::write(dir.join("cgroup.events"), "populated 0\n");
    assert!(!cg.populated());
}

#[test]
fn v2_remove_of_a_missing_cgroup_is_ok() {
    let (_root, cg, _dir) = v2_fixture();
    assert!(matches!(cg.remove(), Ok(())));
    assert!(matches!(cg.kill_all(), Ok(())), "nothing to kill");
}

fn v1_fixture() -> (tempfile::TempDir, TaskCgroup) {
    let root = match tempfile::tempdir() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let mounts: BTreeMap<V1Controller, PathBuf> = V1Controller::ALL
        .iter()
        .map(|c| (*c, root.path().join(c.name())))
        .collect();
    for m in mounts.values() {
        let _ = fs::create_dir_all(m);
    }
    let cs = &mounts[&V1Controller::CpuSet];
    let _ = fs::write(cs.join("cpuset.cpus"), "0-1\n");
    let _ = fs::write(cs.join("cpuset.mems"), "0\n");
    // New cpuset cgroups start with empty cpuset.cpus/mems files, as the kernel makes them.
    for d in ["nomad", "nomad/share", "nomad/share/a1.web"] {
        touch_all(&cs.join(d), &["cpuset.cpus", "cpuset.mems"]);
    }
    let cg = match TaskCgroup::for_plan(&CgroupRoots::v1_at(mounts), &plan(None, None)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    (root, cg)
}

#[test]
fn v1_uses_nomads_paths_copies_cpuset_mems_and_writes_each_resource_case() {
    let (root, cg) = v1_fixture();
    let TaskCgroup::V1(v1) = &cg else {
        panic!("v1 fixture")
    };
    assert_eq!(
        v1.dir(V1Controller::CpuSet),
        Some(root.path().join("cpuset/nomad/share/a1.web").as_path())
    );
    assert_eq!(
        v1.dir(V1Controller::Memory),
        Some(root.path().join("memory/nomad/a1.web").as_path())
    );
    assert!(matches!(cg.create(), Ok(())));
    let cs = root.path().join("cpuset/nomad/share/a1.web");
    assert_eq!(
        get(&cs, "cpuset.mems"),
        "0",
        "cpuset.mems copied from the parent"
    );
    for (c, files) in V1_FILES {
        if let Some(d) = v1.dir(*c) {
            for f in *files {
                if !d.join(f).exists() {
                    let _ = fs::write(d.join(f), "");
                }
            }
        }
    }
    let mem = root.path().join("memory/nomad/a1.web");
    for (low, max, want_low, want_max) in [
        (None, Some(mib(200)), "", "209715200"),
        (Some(mib(150)), Some(mib(250)), "157286400", "262144000"),
        (Some(mib(200)), None, "209715200", "-1"),
    ] {
        let _ = fs::write(mem.join("memory.soft_limit_in_bytes"), "");
        assert!(
            matches!(cg.apply(&plan(low, max)), Ok(())),
            "{:?}",
            cg.apply(&plan(low, max))
        );
        assert_eq!(get(&mem, "memory.limit_in_bytes"), want_max);
        assert_eq!(get(&mem, "memory.soft_limit_in_bytes"), want_low);
    }
    let cpu = root.path().join("cpu/nomad/a1.web");
    assert_eq!(get(&cpu, "cpu.shares"), "500");
    assert_eq!(get(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(get(&cs, "cpuset.cpus"), "1");
    assert_eq!(
        get(&root.path().join("pids/nomad/a1.web"), "pids.max"),
        "128"
    );
    assert!(cg.nice_by_setpriority());
    assert_eq!(cg.oom_file(), Some(mem.join("memory.oom_control")));
    assert_eq!(cg.join_files().len(), 6, "one cgroup.procs per hierarchy");
}

#[test]
fn v1_kill_freezes_and_thaws_and_stats_read_v1_files() {
    let (root, cg) = v1_fixture();
    assert!(matches!(cg.create(), Ok(())));
    let fz = root.path().join("freezer/nomad/a1.web");
    let _ = fs::write(fz.join("freezer.state"), "THAWED");
    let _ = fs::write(fz.join("cgroup.procs"), "");
    let acct = root.path().join("cpuacct/nomad/a1.web");
    let _ = fs::write(acct.join("cpuacct.usage_user"), "111\n");
    let _ = fs::write(acct.join("cpuacct.usage_sys"), "222\n");
    let _ = fs::write(acct.join("cpuacct.usage"), "333\n");
    let cpu = root.path().join("cpu/nomad/a1.web");
    let _ = fs::write(
        cpu.join("cpu.stat"),
        "nr_periods 9\nnr_throttled 4\nthrottled_time 5000\n",
    );
    let mem = root.path().join("memory/nomad/a1.web");
    let _ = fs::write(
        mem.join("memory.stat"),
        "rss 10\ncache 20\nswap 30\ntotal_rss 100\ntotal_cache 200\ntotal_swap 300\n",
    );
    let _ = fs::write(mem.join("memory.usage_in_bytes"), "4000\n");
    let _ = fs::write(mem.join("memory.max_usage_in_bytes"), "5000\n");
    let _ = fs::write(mem.join("memory.kmem.usage_in_bytes"), "600\n");
    assert!(matches!(cg.kill_all(), Ok(())));
    assert_eq!(
        get(&fz, "freezer.state"),
        "THAWED",
        "frozen for the kill, thawed after"
    );
    let u = cg.usage();
    assert_eq!((u.cpu_user_ns, u.cpu_system_ns), (111, 222));
    assert_eq!((u.throttled_periods, u.throttled_ns), (4, 5000));
    assert_eq!(
        (u.memory_rss, u.memory_cache, u.memory_swap),
        (100, 200, 300),
        "hierarchical totals"
    );
    assert_eq!(
        (u.memory_usage, u.memory_max_usage, u.memory_kernel),
        (4000, 5000, 600)
    );
    assert!(!cg.populated());
}
