//! Phases that drive the real plugin over its gRPC API, as Nomad would: the full-task launch
//! (StartTask → WaitTask of `true`), memory (supervisor USS, plugin RSS at 0/50/200 tasks) and
//! scale (200 concurrent StartTask, 1 s stats for all, stop all, leak check).

use crate::measure::{human_ns, percentile, ratio, verdict};
use crate::procfs;
use crate::report::Table;
use pledge_grpc::pb;
use pledge_grpc::runner::allocdir::RunDir;
use pledge_grpc::runner::cgroup::{self, Mode};
use pledge_grpc::runner::encode::encode_body;
use pledge_grpc::runner::plugin::{Plugin, PluginError};
use pledge_grpc::runner::spec::Spec;
use pledge_grpc::schema;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a single StartTask may take before the phase gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Goals from the runtime issue.
pub const GOAL_SUPERVISOR_USS_KIB: u64 = 1024;
/// Plugin RSS with 200 tasks.
pub const GOAL_PLUGIN_RSS_KIB: u64 = 30 * 1024;

/// Why a plugin phase could not run.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// Launching or talking to the plugin.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A gRPC call failed.
    #[error("{rpc}: {status}")]
    Rpc {
        /// Which call.
        rpc: &'static str,
        /// The status.
        status: Box<tonic::Status>,
    },
    /// Setup (dirs, encoding).
    #[error("{0}")]
    Setup(String),
}

fn rpc(rpc: &'static str) -> impl Fn(tonic::Status) -> PhaseError {
    move |status| PhaseError::Rpc {
        rpc,
        status: Box::new(status),
    }
}

/// A plugin child plus what the phases need to build tasks for it.
pub struct Bench {
    plugin: Plugin,
    /// Its pid (for RSS and CPU).
    pub pid: u32,
    run: RunDir,
    task_spec: Spec,
    mode: Mode,
    run_tag: String,
    next: u64,
    /// Cgroups the tasks were given, for the leak check.
    cgroups: Vec<PathBuf>,
}

/// One started task.
#[derive(Clone, Debug)]
pub struct Started {
    /// TaskConfig.id.
    pub id: String,
    /// Time StartTask took.
    pub took: Duration,
}

impl Bench {
    /// Launches `driver` as Nomad would and configures it with a private state dir.
    pub async fn launch(driver: &Path) -> Result<Self, PhaseError> {
        let run = RunDir::create(None).map_err(|e| PhaseError::Setup(e.to_string()))?;
        let socket_dir = run.path().join("sockets");
        let mut plugin = Plugin::launch(driver, &socket_dir, false).await?;
        let pid = procfs::children_named(std::process::id(), "nomad-pledge-driver")
            .into_iter()
            .next()
            .unwrap_or(0);
        let plugin_spec =
            Spec::from_proto(&schema::plugin_config_spec()).map_err(PhaseError::Setup)?;
        let state = run.path().join("state");
        let body = hcl::Body::builder()
            .add_attribute(("state_dir", state.display().to_string()))
            .build();
        let msgpack = encode_body(&plugin_spec, &body, "plugin")
            .map_err(|e| PhaseError::Setup(e.to_string()))?;
        plugin
            .base
            .set_config(pledge_grpc::runner::plugin::set_config_request(msgpack))
            .await
            .map_err(rpc("SetConfig"))?;
        let task_spec = Spec::from_proto(&schema::task_config_spec()).map_err(PhaseError::Setup)?;
        Ok(Self {
            plugin,
            pid,
            run,
            task_spec,
            mode: Mode::detect(),
            run_tag: format!("b3ac{:04x}", std::process::id() & 0xffff),
            next: 0,
            cgroups: Vec::new(),
        })
    }

    /// The plugin's driver client (cheap to clone; one HTTP/2 connection).
    pub fn driver(&self) -> pb::drivers::driver_client::DriverClient<tonic::transport::Channel> {
        self.plugin.driver.clone()
    }

    /// A StartTask request for `command args` as user nobody with `stdio rpath`, in a fresh
    /// alloc dir, with Nomad's cgroup path and resources (100 MHz, 64 MiB).
    pub fn request(
        &mut self,
        command: &str,
        args: &[&str],
    ) -> Result<pb::drivers::StartTaskRequest, PhaseError> {
        self.next += 1;
        let alloc_id = format!("{}-0000-4000-8000-{:012x}", self.run_tag, self.next);
        let task = "bench";
        let alloc = self
            .run
            .alloc(&alloc_id)
            .map_err(|e| PhaseError::Setup(e.to_string()))?;
        let dirs = alloc
            .task_dir(task)
            .map_err(|e| PhaseError::Setup(e.to_string()))?;
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let body = hcl::Body::builder()
            .add_attribute(("command", command))
            .add_attribute(("args", args))
            .add_attribute(("promises", "stdio rpath"))
            .build();
        let msgpack = encode_body(&self.task_spec, &body, "config")
            .map_err(|e| PhaseError::Setup(e.to_string()))?;
        let cg = cgroup::task_path(self.mode, &alloc_id, task, false);
        self.cgroups.push(cg.clone());
        let env = [
            ("NOMAD_TASK_DIR", dirs.local.display().to_string()),
            ("NOMAD_ALLOC_DIR", dirs.shared.display().to_string()),
            ("NOMAD_ALLOC_ID", alloc_id.clone()),
            ("NOMAD_TASK_NAME", task.to_string()),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let tc = pb::drivers::TaskConfig {
            id: format!("{alloc_id}/{task}/0000beef"),
            name: task.into(),
            msgpack_driver_config: msgpack,
            env,
            resources: Some(pb::drivers::Resources {
                allocated_resources: Some(pb::drivers::AllocatedTaskResources {
                    cpu: Some(pb::drivers::AllocatedCpuResources { cpu_shares: 100 }),
                    memory: Some(pb::drivers::AllocatedMemoryResources {
                        memory_mb: 64,
                        memory_max_mb: 0,
                    }),
                    networks: Vec::new(),
                }),
                linux_resources: Some(pb::drivers::LinuxResources {
                    cpu_shares: 100,
                    memory_limit_bytes: 64 << 20,
                    cpuset_cgroup: cg.display().to_string(),
                    ..Default::default()
                }),
                ports: Vec::new(),
            }),
            user: "nobody".into(),
            alloc_dir: alloc.path().display().to_string(),
            stdout_path: "/dev/null".into(),
            stderr_path: "/dev/null".into(),
            task_group_name: "bench".into(),
            job_name: "pledge-bench".into(),
            job_id: "pledge-bench".into(),
            alloc_id,
            namespace: "default".into(),
            ..Default::default()
        };
        Ok(pb::drivers::StartTaskRequest { task: Some(tc) })
    }

    /// Where every task's files live (for the leak check).
    pub fn run_dir(&self) -> &Path {
        self.run.path()
    }

    /// Stops the plugin (its tasks must be destroyed first).
    pub async fn shutdown(self) -> LeakReport {
        let tag = self.run_tag.clone();
        let run_dir = self.run.path().to_path_buf();
        let cgroups = self.cgroups.clone();
        let mode = self.mode;
        self.plugin.shutdown(Duration::from_secs(5)).await;
        // Per-task cgroups the plugin created are its to remove; Nomad's wrangler would remove
        // the assigned one, so do that too before looking for leftovers.
        for cg in &cgroups {
            let _ = cgroup::remove_leftover(mode, cg, false);
        }
        let report = leak_check(&tag, &run_dir);
        drop(self.run);
        report
    }
}

/// Starts `req` and returns its id and how long StartTask took.
pub async fn start(
    mut driver: pb::drivers::driver_client::DriverClient<tonic::transport::Channel>,
    req: pb::drivers::StartTaskRequest,
) -> Result<Started, PhaseError> {
    let id = req.task.as_ref().map(|t| t.id.clone()).unwrap_or_default();
    let t0 = Instant::now();
    // Bounded, so a stuck launch fails the phase (and gets cleaned up) instead of hanging it.
    tokio::time::timeout(START_TIMEOUT, driver.start_task(req))
        .await
        .map_err(|_| PhaseError::Setup(format!("StartTask of {id} took over {START_TIMEOUT:?}")))?
        .map_err(rpc("StartTask"))?;
    Ok(Started {
        id,
        took: t0.elapsed(),
    })
}

/// StopTask (SIGTERM, 5 s) then DestroyTask(force).
pub async fn stop_and_destroy(
    mut driver: pb::drivers::driver_client::DriverClient<tonic::transport::Channel>,
    id: String,
) -> Result<(), PhaseError> {
    driver
        .stop_task(pb::drivers::StopTaskRequest {
            task_id: id.clone(),
            timeout: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            signal: "SIGTERM".into(),
        })
        .await
        .map_err(rpc("StopTask"))?;
    driver
        .destroy_task(pb::drivers::DestroyTaskRequest {
            task_id: id,
            force: true,
        })
        .await
        .map_err(rpc("DestroyTask"))?;
    Ok(())
}

/// What was left behind after everything was stopped.
#[derive(Clone, Debug, Default)]
pub struct LeakReport {
    /// Processes still running from the run dir (cwd or argv under it).
    pub processes: Vec<u32>,
    /// Cgroup directories still named after this run's allocs.
    pub cgroups: Vec<PathBuf>,
}

impl LeakReport {
    /// One line for the report.
    pub fn summary(&self) -> String {
        if self.processes.is_empty() && self.cgroups.is_empty() {
            "no processes or cgroups left behind".into()
        } else {
            format!(
                "LEAK: {} processes {:?}, {} cgroups {:?}",
                self.processes.len(),
                self.processes,
                self.cgroups.len(),
                self.cgroups
            )
        }
    }
}

fn leak_check(tag: &str, run_dir: &Path) -> LeakReport {
    let run = run_dir.display().to_string();
    let mut processes = procfs::pids_with_arg(&run);
    for pid in pledge_backend_linux::runtime::procfs::all_pids() {
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if cwd.starts_with(run_dir) && !processes.contains(&pid) {
            processes.push(pid);
        }
    }
    processes.retain(|p| *p != std::process::id());
    let mut cgroups = Vec::new();
    find_named(Path::new(cgroup::ROOT), tag, 6, &mut cgroups);
    LeakReport { processes, cgroups }
}

fn find_named(dir: &Path, needle: &str, depth: usize, out: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().contains(needle) {
            out.push(p);
        } else {
            find_named(&p, needle, depth - 1, out);
        }
    }
}

/// StartTask → WaitTask → DestroyTask of `true`, `rounds` times; per-round wall time in ns.
pub async fn full_launch(bench: &mut Bench, rounds: usize) -> Result<Vec<f64>, PhaseError> {
    let truth = crate::launch::which("true").unwrap_or_else(|| "/usr/bin/true".into());
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..=rounds {
        let req = bench.request(&truth, &[])?;
        let mut d = bench.driver();
        let t0 = Instant::now();
        let s = start(d.clone(), req).await?;
        let res = d
            .wait_task(pb::drivers::WaitTaskRequest {
                task_id: s.id.clone(),
            })
            .await
            .map_err(rpc("WaitTask"))?
            .into_inner();
        let took = t0.elapsed();
        d.destroy_task(pb::drivers::DestroyTaskRequest {
            task_id: s.id,
            force: true,
        })
        .await
        .map_err(rpc("DestroyTask"))?;
        let code = res.result.map_or(-1, |r| r.exit_code);
        if code != 0 || !res.err.is_empty() {
            return Err(PhaseError::Setup(format!(
                "task `true` exited {code} ({})",
                res.err
            )));
        }
        if i > 0 {
            samples.push(took.as_nanos() as f64);
        }
    }
    Ok(samples)
}

/// Results of the memory and scale phases.
pub struct ScaleResult {
    /// Memory table.
    pub memory: Table,
    /// Scale table.
    pub scale: Table,
    /// Goal lines.
    pub goals: Vec<String>,
}

/// Starts `n_small` then up to `n_large` `sleep` tasks concurrently, samples memory, streams
/// stats at 1 s for all for `stats_secs`, stops everything and checks for leaks.
pub async fn memory_and_scale(
    driver_exe: &Path,
    n_small: usize,
    n_large: usize,
    stats_secs: u64,
) -> Result<ScaleResult, PhaseError> {
    let mut bench = Bench::launch(driver_exe).await?;
    let pid = bench.pid;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = procfs::rss_kib(pid);
    let idle_fds = procfs::fd_count(pid);

    // Wave 1: n_small tasks (memory at 50), then wave 2 up to n_large, all concurrent.
    let mut started: Vec<Started> = Vec::new();
    let mut rss_at = Vec::new();
    let mut start_ms = Vec::new();
    let mut wave_wall = Vec::new();
    for target in [n_small, n_large] {
        let mut reqs = Vec::new();
        while started.len() + reqs.len() < target {
            reqs.push(bench.request("sleep", &["3600"])?);
        }
        let t0 = Instant::now();
        let handles: Vec<_> = reqs
            .into_iter()
            .map(|r| tokio::spawn(start(bench.driver(), r)))
            .collect();
        let mut errors = Vec::new();
        for h in handles {
            match h.await {
                Ok(Ok(s)) => {
                    start_ms.push(s.took.as_secs_f64() * 1e3);
                    started.push(s);
                }
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        wave_wall.push((target, t0.elapsed()));
        if !errors.is_empty() {
            stop_all(&bench, &started).await;
            let leaks = bench.shutdown().await;
            return Err(PhaseError::Setup(format!(
                "{} of {target} StartTask calls failed, e.g. {}; {}",
                errors.len(),
                errors[0],
                leaks.summary()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_at.push((target, procfs::rss_kib(pid)));
    }

    // Supervisor USS: every process whose argv names this run's state dir is a supervisor.
    let state = bench.run_dir().join("state").display().to_string();
    let supervisors = procfs::pids_with_arg(&state);
    let mut uss: Vec<f64> = supervisors
        .iter()
        .map(|p| procfs::uss_kib(*p) as f64)
        .collect();
    uss.sort_by(f64::total_cmp);

    // Stats for all tasks at 1 s for stats_secs, counting messages and plugin CPU.
    let cpu0 = procfs::cpu_seconds(pid);
    let t0 = Instant::now();
    let deadline = Duration::from_secs(stats_secs);
    let streams: Vec<_> = started
        .iter()
        .map(|s| {
            let mut d = bench.driver();
            let id = s.id.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let Ok(resp) = d
                    .task_stats(pb::drivers::TaskStatsRequest {
                        task_id: id,
                        collection_interval: Some(prost_types::Duration {
                            seconds: 1,
                            nanos: 0,
                        }),
                    })
                    .await
                else {
                    return 0;
                };
                let mut stream = resp.into_inner();
                let _ = tokio::time::timeout(deadline, async {
                    while let Ok(Some(_)) = stream.message().await {
                        n += 1;
                    }
                })
                .await;
                n
            })
        })
        .collect();
    let mut messages = 0u64;
    for s in streams {
        messages += s.await.unwrap_or(0);
    }
    let stats_wall = t0.elapsed().as_secs_f64();
    let cpu_pct = (procfs::cpu_seconds(pid) - cpu0) / stats_wall * 100.0;
    let rss_stats = procfs::rss_kib(pid);

    // Stop all, concurrently.
    let t0 = Instant::now();
    let stop_errors = stop_all(&bench, &started).await;
    let stop_wall = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_rss = procfs::rss_kib(pid);
    let after_fds = procfs::fd_count(pid);
    let leaks = bench.shutdown().await;

    let mut start_sorted = start_ms.clone();
    start_sorted.sort_by(f64::total_cmp);
    let p50 = percentile(&start_sorted, 50.0);
    let p99 = percentile(&start_sorted, 99.0);

    let mut memory = Table::new(&["memory", "value", "goal"]);
    let uss_p50 = percentile(&uss, 50.0);
    memory.row(vec![
        format!("supervisor USS per task (p50 of {})", uss.len()),
        format!(
            "{uss_p50:.0} KiB (max {:.0})",
            uss.last().copied().unwrap_or(0.0)
        ),
        format!("≤ {GOAL_SUPERVISOR_USS_KIB} KiB"),
    ]);
    memory.row(vec![
        "plugin RSS idle".into(),
        format!("{idle_rss} KiB"),
        String::new(),
    ]);
    for (n, rss) in &rss_at {
        memory.row(vec![
            format!("plugin RSS with {n} tasks"),
            format!(
                "{rss} KiB ({} vs idle)",
                ratio(*rss as f64, idle_rss as f64)
            ),
            if *n == n_large {
                format!("≤ {} KiB", GOAL_PLUGIN_RSS_KIB)
            } else {
                String::new()
            },
        ]);
    }
    memory.row(vec![
        format!("plugin RSS streaming stats for {n_large}"),
        format!("{rss_stats} KiB"),
        String::new(),
    ]);
    memory.row(vec![
        "plugin RSS / fds after stopping all".into(),
        format!("{after_rss} KiB / {after_fds} fds (idle: {idle_fds} fds)"),
        String::new(),
    ]);

    let mut scale = Table::new(&["scale", "value"]);
    for (n, wall) in &wave_wall {
        scale.row(vec![
            format!("start wave up to {n} tasks, wall"),
            human_ns(wall.as_nanos() as f64),
        ]);
    }
    scale.row(vec![
        format!(
            "StartTask latency p50 / p99 ({} concurrent calls)",
            start_ms.len()
        ),
        format!("{p50:.1} ms / {p99:.1} ms"),
    ]);
    scale.row(vec![
        format!("stats: {n_large} streams at 1 s for {stats_secs} s"),
        format!(
            "{messages} messages ({:.2}/task/s)",
            messages as f64 / n_large.max(1) as f64 / stats_wall
        ),
    ]);
    scale.row(vec![
        "plugin CPU during stats".into(),
        format!("{cpu_pct:.1} % of one core"),
    ]);
    scale.row(vec![
        format!("StopTask+DestroyTask all {n_large} (concurrent)"),
        format!(
            "{} ({} errors)",
            human_ns(stop_wall.as_nanos() as f64),
            stop_errors
        ),
    ]);
    scale.row(vec!["leak check".into(), leaks.summary()]);

    let goals = vec![
        format!(
            "supervisor USS p50 = {uss_p50:.0} KiB (goal ≤ {GOAL_SUPERVISOR_USS_KIB} KiB): {}",
            verdict(uss_p50, GOAL_SUPERVISOR_USS_KIB as f64, 1.0)
        ),
        format!(
            "plugin RSS at {n_large} tasks = {} KiB (goal ≤ {} KiB): {}",
            rss_at.last().map_or(0, |r| r.1),
            GOAL_PLUGIN_RSS_KIB,
            verdict(
                rss_at.last().map_or(0, |r| r.1) as f64,
                GOAL_PLUGIN_RSS_KIB as f64,
                1.0
            )
        ),
        format!("leaks after stopping all: {}", leaks.summary()),
    ];
    Ok(ScaleResult {
        memory,
        scale,
        goals,
    })
}

/// Stops and destroys every task concurrently; returns the number of failures.
async fn stop_all(bench: &Bench, started: &[Started]) -> usize {
    let handles: Vec<_> = started
        .iter()
        .map(|s| tokio::spawn(stop_and_destroy(bench.driver(), s.id.clone())))
        .collect();
    let mut errors = 0;
    for h in handles {
        if !matches!(h.await, Ok(Ok(()))) {
            errors += 1;
        }
    }
    errors
}
