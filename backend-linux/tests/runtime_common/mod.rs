//! Shared setup for the privileged runtime tests: root/cgroup checks (skip with a reason, or
//! fail under CI=true), a backend using the test supervisor binary, plans built by the core's
//! own planner, FIFO readers and exit waiting.
#![allow(dead_code, unreachable_pub)]

use pledge_backend_linux::runtime::{BackendOptions, LinuxBackend};
use pledge_core::backend::CgroupMode;
use pledge_core::{
    plan_sandbox, Backend, ExitResult, Observation, PluginConfig, RawTaskConfig, SandboxPlan,
    TaskId, TaskResources, TaskSpec,
};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Parent cgroup of every test task (never Nomad's own `nomad`/`nomad.slice`).
pub const TEST_PARENT_V1: &str = "pledge-rt-test";
/// v2 form.
pub const TEST_PARENT_V2: &str = "pledge-rt-test.slice";

/// True when the test may run; prints why not otherwise. Under CI=true a missing
/// prerequisite is a failure.
pub fn privileged(test: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("not running as root")
    } else if pledge_backend_linux::runtime::cgroup::CgroupRoots::detect().mode == CgroupMode::None
    {
        Some("no usable cgroup hierarchy")
    } else {
        None
    };
    match why {
        None => true,
        Some(w) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: {w} (CI=true requires it)"
            );
            eprintln!("SKIP {test}: {w}");
            false
        }
    }
}

/// Wakes the test when the backend has observations.
#[derive(Clone, Default)]
pub struct Wake(Arc<(Mutex<u64>, Condvar)>);

impl Wake {
    pub fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        let me = self.clone();
        Arc::new(move || {
            let (m, c) = &*me.0;
            *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            c.notify_all();
        })
    }

    pub fn wait(&self, d: Duration) {
        let (m, c) = &*self.0;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.wait_timeout(g, d);
    }
}

/// The test supervisor binary built by cargo for this package.
pub fn supervisor_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pledge-runtime-test-supervisor"))
}

pub fn backend(wake: &Wake) -> LinuxBackend {
    let opts = BackendOptions {
        supervisor_exe: supervisor_exe(),
        ..BackendOptions::default()
    };
    match LinuxBackend::with_options(wake.waker(), opts) {
        Ok(b) => b,
        Err(e) => panic!("backend: {e}"),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A scratch area: alloc dirs and the plugin state dir, removed on drop. It also remembers the
/// cgroup of every plan made with it and destroys those on drop (kill + rmdir; a no-op for
/// those already cleaned up), so a failing test leaves no process or cgroup behind.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    cgroups: Mutex<Vec<pledge_core::CgroupPlan>>,
}

impl Scratch {
    pub fn new() -> Self {
        match tempfile::Builder::new().prefix("pledge-rt-").tempdir() {
            Ok(dir) => Self {
                dir,
                cgroups: Mutex::new(Vec::new()),
            },
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let roots = pledge_backend_linux::runtime::cgroup::CgroupRoots::detect();
        let plans = std::mem::take(&mut *self.cgroups.lock().unwrap_or_else(|e| e.into_inner()));
        for p in plans {
            if let Ok(cg) = pledge_backend_linux::runtime::cgroup::TaskCgroup::for_plan(&roots, &p)
            {
                let _ = cg.destroy();
            }
        }
    }
}

/// Task shape for [`plan`].
pub struct TaskShape<'a> {
    pub name: &'a str,
    pub command: &'a str,
    pub args: &'a [&'a str],
    pub promises: &'a str,
    pub unveil: Vec<String>,
    pub resources: TaskResources,
    pub stdout: Option<PathBuf>,
    pub pid_mode: Option<&'a str>,
}

impl<'a> TaskShape<'a> {
    pub fn new(name: &'a str, command: &'a str, args: &'a [&'a str]) -> Self {
        Self {
            name,
            command,
            args,
            promises: "stdio rpath wpath cpath proc exec prot_exec",
            unveil: vec![
                "rx:/usr".into(),
                "rx:/bin".into(),
                "rx:/lib".into(),
                "r:/etc".into(),
                "r:/proc".into(),
                "rw:/dev".into(),
            ],
            resources: TaskResources {
                cpu_shares: 100,
                memory_mb: 64,
                ..TaskResources::default()
            },
            stdout: None,
            pid_mode: None,
        }
    }
}

/// A plan made by the core's planner from a spec and a task config, as StartTask would; the
/// cgroup parent is moved to the test parent.
pub fn plan(scratch: &Scratch, shape: &TaskShape<'_>) -> SandboxPlan {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let alloc = format!("{:08x}-{n:04}-test", std::process::id());
    let id = match TaskId::parse(format!("{alloc}/{}/{n:08x}", shape.name)) {
        Ok(i) => i,
        Err(e) => panic!("id: {e}"),
    };
    let alloc_dir = scratch.dir.path().join(&alloc);
    let task_dir = alloc_dir.join(shape.name);
    for d in ["local", "secrets", "tmp", "private"] {
        let _ = std::fs::create_dir_all(task_dir.join(d));
    }
    let _ = std::fs::create_dir_all(alloc_dir.join("alloc/logs"));
    let spec = TaskSpec {
        id,
        name: shape.name.to_string(),
        alloc_id: alloc.clone(),
        job_name: "runtime-test".into(),
        task_group_name: "g".into(),
        alloc_dir,
        env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        user: None,
        stdout_path: shape
            .stdout
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/null")),
        stderr_path: PathBuf::from("/dev/null"),
        resources: shape.resources.clone(),
        netns_path: None,
    };
    let plugin = PluginConfig {
        state_dir: scratch.state_root(),
        unveil_best_effort: true,
        ..PluginConfig::default()
    };
    let roots = pledge_backend_linux::runtime::cgroup::CgroupRoots::detect();
    let host = pledge_backend_linux::runtime::probe::host_facts(&roots);
    let raw = RawTaskConfig {
        command: Some(shape.command.to_string()),
        args: Some(shape.args.iter().map(|s| s.to_string()).collect()),
        promises: Some(shape.promises.to_string()),
        unveil: Some(shape.unveil.clone()),
        pid_mode: shape.pid_mode.map(str::to_string),
        ..RawTaskConfig::default()
    };
    let cfg = match raw.validate(&plugin, &host) {
        Ok(c) => c,
        Err(e) => panic!("task config: {e}"),
    };
    let mut plan = plan_sandbox(&spec, &cfg, &plugin, &host);
    plan.cgroup.v1_path = plan
        .cgroup
        .v1_path
        .replacen("nomad/", &format!("{TEST_PARENT_V1}/"), 1);
    plan.cgroup.v2_path =
        plan.cgroup
            .v2_path
            .replacen("nomad.slice/", &format!("{TEST_PARENT_V2}/"), 1);
    scratch
        .cgroups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(plan.cgroup.clone());
    plan
}

/// Launches `plan` with a backend that is then dropped without cleanup, as when the plugin
/// goes away: the task runs on; returns its persisted state.
pub fn launch_and_abandon(plan: &SandboxPlan) -> pledge_core::DriverState {
    let wake = Wake::default();
    let mut first = backend(&wake);
    match first.launch(plan) {
        Ok(l) => l.state,
        Err(e) => panic!("launch: {}", pledge_core::backend::error_chain(&e)),
    }
}

/// True while `pid` is the process that started at `start` and not a zombie.
pub fn running(pid: u32, start: u64) -> bool {
    pledge_backend_linux::runtime::procfs::start_time(pid) == Some(start)
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

/// Drains until `task` exits or `limit` passes (a liveness bound, not a timing assertion).
pub fn wait_exit(b: &mut LinuxBackend, wake: &Wake, task: &TaskId, limit: Duration) -> ExitResult {
    let end = Instant::now() + limit;
    let mut obs = Vec::new();
    loop {
        b.drain_observations(&mut obs);
        for o in obs.drain(..) {
            if let Observation::Exited {
                task: t, result, ..
            } = o
            {
                PENDING
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((t, result));
            }
        }
        if let Some(r) = take_pending(task) {
            return r;
        }
        if Instant::now() >= end {
            let diag = b.state_of(task).map(|s| {
                let p = &s.process;
                let alive = |pid, start| {
                    pledge_backend_linux::runtime::procfs::start_time(pid) == Some(start)
                };
                format!(
                    "exit file: {}, supervisor {} alive: {}, task {} alive: {}, log: {}",
                    p.state_dir.join("exit.json").exists(),
                    p.supervisor_pid,
                    alive(p.supervisor_pid, p.supervisor_start),
                    p.pid,
                    alive(p.pid, p.pid_start),
                    read(&p.state_dir.join("supervisor.log"))
                )
            });
            panic!("task {task} did not exit within {limit:?}: {diag:?}");
        }
        wake.wait(Duration::from_millis(50));
    }
}

static PENDING: Mutex<Vec<(TaskId, ExitResult)>> = Mutex::new(Vec::new());

fn take_pending(task: &TaskId) -> Option<ExitResult> {
    let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let i = p.iter().position(|(t, _)| t == task)?;
    Some(p.remove(i).1)
}

/// A FIFO like logmon's, with a reader collecting what the task writes.
pub struct Fifo {
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<String>>,
}

impl Fifo {
    pub fn new(dir: &Path, name: &str) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(format!(".{name}.stdout.fifo"));
        if let Err(e) = nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        {
            panic!("mkfifo {}: {e}", path.display());
        }
        // Non-blocking open: the reader exists at once (as logmon's pending open), so the
        // task's blocking open for writing returns.
        let mut f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => panic!("open fifo: {e}"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match f.read(&mut buf) {
                    Ok(0) if st.load(Ordering::SeqCst) => break,
                    Ok(0) => std::thread::sleep(Duration::from_millis(5)),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if st.load(Ordering::SeqCst) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        });
        Self {
            path,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reading (after the task exited) and returns the output.
    pub fn finish(mut self) -> String {
        std::thread::sleep(Duration::from_millis(20));
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// Reads a cgroup file, trimmed.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
}

/// Leaf cgroups below the test parent on every mounted hierarchy.
pub fn test_cgroups() -> Vec<PathBuf> {
    let roots = pledge_backend_linux::runtime::cgroup::CgroupRoots::detect();
    let mut parents: Vec<PathBuf> = match roots.mode {
        CgroupMode::V2 => vec![roots.v2.join(TEST_PARENT_V2)],
        _ => roots.v1.values().map(|m| m.join(TEST_PARENT_V1)).collect(),
    };
    parents.sort();
    parents.dedup();
    let mut out = Vec::new();
    for p in parents {
        walk(&p, &mut out);
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == "share"
                || name == "reserve"
                || name == "share.slice"
                || name == "reserve.slice"
            {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Processes running the test supervisor binary.
pub fn supervisors() -> Vec<u32> {
    let exe = supervisor_exe();
    pledge_backend_linux::runtime::procfs::all_pids()
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .collect()
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
