//! One run of `nomad-pledge-driver run`: what Nomad's client does for an allocation, in order.
//! Launch the plugin, PluginInfo, ConfigSchema + SetConfig, Fingerprint, TaskEvents,
//! TaskConfigSchema, Capabilities; per group an alloc dir and ports; per task env, templates,
//! FIFOs and StartTask; then WaitTask until every task ends, with Ctrl-C (or `--timeout`) turned
//! into StopTask(kill_signal, kill_timeout); DestroyTask(force); Shutdown.

use super::allocdir::{AllocDirError, RunDir, TaskDir};
use super::cgroup;
use super::encode::{encode_body, EncodeErrors};
use super::env::{EnvInputs, NodeFacts, TaskEnv};
use super::hints::{hints, Failure};
use super::job::{Group, Job, JobError, Task};
use super::logs::{FifoError, LogPump};
use super::plugin::{Plugin, PluginError};
use super::ports::{self, AllocatedPort, PortError};
use super::spec::Spec;
use super::taskconfig::{task_config, TaskConfigInputs};
use super::template::{render_all, TemplateError};
use crate::pb;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Exit status for a failure of the runner or the plugin itself (as `docker run` uses 125).
pub const EXIT_RUNNER_FAILED: i32 = 125;
/// How long each shutdown step may take before the runner moves on.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Ctrl-C and SIGTERM, caught from the very start: an early one must not kill the runner and
/// leave the plugin and its tasks behind.
struct StopSignals {
    rx: tokio::sync::mpsc::UnboundedReceiver<&'static str>,
    requested: Arc<AtomicBool>,
}

impl StopSignals {
    fn install() -> Result<Self, RunError> {
        let io = |source| RunError::Io {
            what: "cannot install the SIGINT/SIGTERM handlers".into(),
            source,
        };
        let mut sigint = signal(SignalKind::interrupt()).map_err(io)?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(io)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let requested = Arc::new(AtomicBool::new(false));
        let flag = requested.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = sigint.recv() => "SIGINT",
                    _ = sigterm.recv() => "SIGTERM",
                };
                flag.store(true, Ordering::SeqCst);
                if tx.send(name).is_err() {
                    break;
                }
            }
        });
        Ok(Self { rx, requested })
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The job file.
    pub job: PathBuf,
    /// Only this group.
    pub group: Option<String>,
    /// Only this task.
    pub task: Option<String>,
    /// Agent config holding `plugin "nomad-pledge-driver" { config { … } }`.
    pub plugin_config: Option<PathBuf>,
    /// Stop the tasks after this long, as Ctrl-C would.
    pub timeout: Option<Duration>,
    /// Show every plugin log line.
    pub verbose: bool,
    /// Keep the run directory.
    pub keep: bool,
    /// The plugin binary (default: this executable).
    pub plugin: Option<PathBuf>,
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The job file.
    #[error(transparent)]
    Job(#[from] JobError),
    /// No task to run.
    #[error("{0}")]
    NoTasks(String),
    /// Directories.
    #[error(transparent)]
    AllocDir(#[from] AllocDirError),
    /// Ports.
    #[error(transparent)]
    Ports(#[from] PortError),
    /// Templates.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// FIFOs.
    #[error(transparent)]
    Fifo(#[from] FifoError),
    /// The plugin.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A config did not fit the plugin's schema.
    #[error("{what} does not fit the plugin's schema: {errors}")]
    Encode {
        /// Which config.
        what: String,
        /// Every problem.
        errors: EncodeErrors,
    },
    /// The plugin's schema itself is unusable.
    #[error("the plugin's {what} schema is invalid: {reason}")]
    Schema {
        /// Which schema.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Anything else from the OS.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A task the runner started.
struct Started {
    label: String,
    id: String,
    task: Task,
    pump: Option<LogPump>,
    promises: String,
    unveil: Vec<String>,
    cgroup: PathBuf,
    reserve_cores: bool,
    outcome: Option<Outcome>,
}

#[derive(Clone, Debug)]
enum Outcome {
    Exited {
        code: i32,
        signal: i32,
        oom: bool,
        err: String,
    },
    WaitFailed(String),
}

impl Outcome {
    fn status(&self) -> i32 {
        match self {
            Self::Exited { signal, .. } if *signal > 0 => 128 + signal,
            Self::Exited { code, .. } => *code,
            Self::WaitFailed(_) => EXIT_RUNNER_FAILED,
        }
    }
}

/// Runs the job's pledge tasks; returns the exit status for the process.
pub async fn run(opts: Options) -> Result<i32, RunError> {
    let job = Job::from_file(&opts.job)?;
    let selected = select(&job, &opts)?;
    let mut run_dir = RunDir::create(None)?;
    let exe = match &opts.plugin {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|source| RunError::Io {
            what: "cannot find this executable".into(),
            source,
        })?,
    };
    if !nix::unistd::geteuid().is_root() {
        say("warning: not running as root: the plugin cannot switch users or manage cgroups, so tasks may fail to start");
    }
    let mut signals = StopSignals::install()?;
    let plugin = Plugin::launch(&exe, &run_dir.path().join("plugin"), opts.verbose).await?;
    let outcome = drive(&job, &selected, &opts, &run_dir, &plugin, &mut signals).await;
    plugin.shutdown(SHUTDOWN_GRACE).await;
    if opts.keep {
        say(&format!("kept run directory {}", run_dir.keep().display()));
    }
    outcome
}

fn select<'j>(job: &'j Job, opts: &Options) -> Result<Vec<(&'j Group, &'j Task)>, RunError> {
    let all: Vec<(&Group, &Task)> = job.tasks().collect();
    let mut picked: Vec<(&Group, &Task)> = all
        .iter()
        .copied()
        .filter(|(g, t)| {
            t.driver == "pledge"
                && opts.group.as_ref().is_none_or(|n| *n == g.name)
                && opts.task.as_ref().is_none_or(|n| *n == t.name)
        })
        .collect();
    // Prestart tasks first, as Nomad's lifecycle hooks order them (stable within each kind).
    picked.sort_by_key(|(_, t)| t.lifecycle_hook.as_deref() != Some("prestart"));
    if picked.is_empty() {
        let found: Vec<String> = all
            .iter()
            .map(|(g, t)| {
                format!(
                    "group {:?} task {:?} (driver {:?})",
                    g.name, t.name, t.driver
                )
            })
            .collect();
        return Err(RunError::NoTasks(format!(
            "job {:?} has no task with driver = \"pledge\"{}{}; tasks: {}",
            job.name,
            opts.group
                .as_ref()
                .map(|g| format!(" in group {g:?}"))
                .unwrap_or_default(),
            opts.task
                .as_ref()
                .map(|t| format!(" named {t:?}"))
                .unwrap_or_default(),
            found.join(", ")
        )));
    }
    Ok(picked)
}

async fn drive(
    job: &Job,
    selected: &[(&Group, &Task)],
    opts: &Options,
    run_dir: &RunDir,
    plugin: &Plugin,
    signals: &mut StopSignals,
) -> Result<i32, RunError> {
    let mut base = plugin.base.clone();
    let mut driver = plugin.driver.clone();
    let info = base
        .plugin_info(pb::base::PluginInfoRequest {})
        .await
        .map_err(|s| PluginError::rpc("BasePlugin/PluginInfo", &s))?
        .into_inner();
    if info.name != "pledge" {
        say(&format!(
            "warning: the plugin calls itself {:?}, not \"pledge\"",
            info.name
        ));
    }
    set_config(&mut base, opts, run_dir).await?;
    watch_fingerprint(&mut driver).await?;
    let events = watch_events(&mut driver).await;
    let schema = driver
        .task_config_schema(pb::drivers::TaskConfigSchemaRequest {})
        .await
        .map_err(|s| PluginError::rpc("Driver/TaskConfigSchema", &s))?
        .into_inner()
        .spec
        .ok_or_else(|| RunError::Schema {
            what: "task config",
            reason: "TaskConfigSchema returned no spec".into(),
        })?;
    let task_spec = Spec::from_proto(&schema).map_err(|reason| RunError::Schema {
        what: "task config",
        reason,
    })?;
    let caps = driver
        .capabilities(pb::drivers::CapabilitiesRequest {})
        .await
        .map_err(|s| PluginError::rpc("Driver/Capabilities", &s))?
        .into_inner()
        .capabilities
        .unwrap_or_default();
    if caps.fs_isolation != pb::drivers::driver_capabilities::FsIsolation::None as i32 {
        say("note: the plugin asks for filesystem isolation; the runner lays out host paths as for fs_isolation = NONE");
    }

    let node = NodeFacts::probe(uuid::Uuid::new_v4().to_string());
    let mode = cgroup::Mode::detect();
    let host_env: BTreeMap<String, String> = std::env::vars().collect();
    let several = selected.len() > 1;
    let mut started: Vec<Started> = Vec::new();
    let mut start_failed = false;
    let mut setup_error: Option<RunError> = None;
    let mut allocs: HashMap<String, (super::allocdir::AllocDir, String, Vec<AllocatedPort>)> =
        HashMap::new();

    for (group, task) in selected {
        if !allocs.contains_key(&group.name) {
            let alloc_id = uuid::Uuid::new_v4().to_string();
            let prepared_alloc = run_dir
                .alloc(&alloc_id)
                .map_err(RunError::from)
                .and_then(|a| Ok((a, ports::allocate(group.network.as_ref())?)));
            let (alloc, allocation) = match prepared_alloc {
                Ok(v) => v,
                Err(e) => {
                    setup_error = Some(e);
                    break;
                }
            };
            for n in &allocation.notes {
                say(&format!("note: {n}"));
            }
            for p in &allocation.ports {
                say(&format!(
                    "port {:?}: {}:{}  ->  http://{}:{}/",
                    p.label, p.host_ip, p.value, p.host_ip, p.value
                ));
            }
            allocs.insert(group.name.clone(), (alloc, alloc_id, allocation.ports));
        }
        let Some((alloc, alloc_id, group_ports)) = allocs.get(&group.name) else {
            continue;
        };
        let prepared = prepare_task(&PrepareInputs {
            job,
            group,
            task,
            alloc,
            alloc_id,
            ports: group_ports,
            node: &node,
            host_env: &host_env,
            cgroup_mode: mode,
            spec: &task_spec,
        });
        // A setup error must not return early: tasks already started are stopped first.
        let Prepared {
            dirs,
            env,
            msgpack,
            promises,
            unveil,
        } = match prepared {
            Ok(p) => p,
            Err(e) => {
                setup_error = Some(e);
                break;
            }
        };
        let label = task.name.clone();
        let pump = if task.logs_disabled {
            None
        } else {
            match LogPump::start(
                &dirs.stdout_fifo,
                &dirs.stderr_fifo,
                several.then(|| format!("[{label}] ")),
            ) {
                Ok(p) => Some(p),
                Err(e) => {
                    setup_error = Some(e.into());
                    break;
                }
            }
        };
        let reserve_cores = task.resources.cores > 0;
        let cg = cgroup::task_path(mode, alloc_id, &task.name, reserve_cores);
        let id = format!(
            "{alloc_id}/{}/{}",
            task.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let tc = task_config(TaskConfigInputs {
            id: &id,
            job,
            group,
            task,
            alloc_id,
            alloc_dir: alloc.path(),
            dirs: &dirs,
            env: &env.env,
            msgpack,
            ports: group_ports,
            cgroup: &cg,
            node: &node,
        });
        if signals.requested() {
            say("interrupted: not starting the remaining tasks");
            break;
        }
        say(&format!(
            "starting task {:?} of job {:?} (user {}, promises {:?})",
            task.name,
            job.name,
            task.user.as_deref().unwrap_or("root"),
            if promises.is_empty() {
                "stdio rpath"
            } else {
                &promises
            }
        ));
        match driver
            .start_task(pb::drivers::StartTaskRequest { task: Some(tc) })
            .await
        {
            Ok(_) => {
                say(&format!(
                    "task {:?} started (id {id}); Ctrl-C stops it",
                    task.name
                ));
                started.push(Started {
                    label,
                    id,
                    task: (*task).clone(),
                    pump,
                    promises,
                    unveil,
                    cgroup: cg,
                    reserve_cores,
                    outcome: None,
                });
            }
            Err(status) => {
                say(&format!(
                    "task {:?} failed to start: {}",
                    task.name,
                    status.message()
                ));
                let mut pump = pump;
                if let Some(p) = pump.as_mut() {
                    tokio::task::block_in_place(|| p.finish(Duration::from_secs(1)));
                }
                let notes = plugin.notes();
                print_hints(&Failure {
                    stderr: &pump.as_ref().map(LogPump::stderr_tail).unwrap_or_default(),
                    stdout: &pump.as_ref().map(LogPump::stdout_tail).unwrap_or_default(),
                    plugin_notes: &notes,
                    promises: &promises,
                    unveil: &unveil,
                    ..Failure::default()
                });
                start_failed = true;
                break;
            }
        }
    }

    let stop_now = start_failed || setup_error.is_some() || signals.requested();
    let stopped_by_runner = wait_all(&mut driver, &mut started, opts, stop_now, signals).await;

    for s in &mut started {
        let _ = tokio::time::timeout(
            SHUTDOWN_GRACE,
            driver.destroy_task(pb::drivers::DestroyTaskRequest {
                task_id: s.id.clone(),
                force: true,
            }),
        )
        .await;
        if let Some(p) = s.pump.as_mut() {
            tokio::task::block_in_place(|| p.finish(Duration::from_secs(2)));
        }
        match cgroup::remove_leftover(mode, &s.cgroup, s.reserve_cores) {
            Ok(true) => say(&format!(
                "note: removed cgroup {} the plugin left behind",
                s.cgroup.display()
            )),
            Ok(false) => {}
            Err(e) => say(&format!("warning: {e}")),
        }
    }

    if let Some(e) = setup_error {
        return Err(e);
    }
    let mut notes = plugin.notes();
    if let Ok(ev) = events.lock() {
        notes.extend(ev.iter().cloned());
    }
    let mut status = if start_failed {
        1
    } else if started.is_empty() && signals.requested() {
        128 + 2
    } else {
        0
    };
    for s in &started {
        let Some(outcome) = &s.outcome else { continue };
        // A sidecar is stopped by the runner once the main tasks end; its status does not count.
        report(s, outcome, stopped_by_runner || s.task.sidecar, &notes);
        if status == 0 && !s.task.sidecar {
            status = outcome.status();
        }
    }
    Ok(status)
}

/// What [`prepare_task`] needs.
#[derive(Clone, Copy, Debug)]
pub struct PrepareInputs<'a> {
    /// The job.
    pub job: &'a Job,
    /// The task's group.
    pub group: &'a Group,
    /// The task.
    pub task: &'a Task,
    /// The group's alloc dir.
    pub alloc: &'a super::allocdir::AllocDir,
    /// Its id.
    pub alloc_id: &'a str,
    /// The group's ports.
    pub ports: &'a [AllocatedPort],
    /// The node.
    pub node: &'a NodeFacts,
    /// The host environment.
    pub host_env: &'a BTreeMap<String, String>,
    /// Cgroup mode (for NOMAD_PARENT_CGROUP).
    pub cgroup_mode: cgroup::Mode,
    /// The plugin's task config schema.
    pub spec: &'a Spec,
}

/// A task ready for StartTask.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Its directories.
    pub dirs: TaskDir,
    /// Its environment.
    pub env: TaskEnv,
    /// `msgpack_driver_config`.
    pub msgpack: Vec<u8>,
    /// `promises` as configured, for hints.
    pub promises: String,
    /// `unveil` as configured, for hints.
    pub unveil: Vec<String>,
}

/// What Nomad's task runner does before StartTask: task dir, environment, templates, then the
/// config interpolated with the task's variables and encoded against the plugin's schema.
pub fn prepare_task(i: &PrepareInputs<'_>) -> Result<Prepared, RunError> {
    let dirs = i.alloc.task_dir(&i.task.name)?;
    let mut env = TaskEnv::build(&EnvInputs {
        job: i.job,
        group: i.group,
        task: i.task,
        alloc_id: i.alloc_id,
        dirs: &dirs,
        ports: i.ports,
        node: i.node,
        host_env: i.host_env.clone(),
        cgroup_parent: i.cgroup_mode.parent(),
    })?;
    let rendered = render_all(&i.task.templates, &env, &dirs)?;
    env.env.extend(rendered.env);
    let at = format!("group {:?} task {:?} config", i.group.name, i.task.name);
    let cfg = env.eval_body(&i.task.config, &at)?;
    let msgpack = encode_body(i.spec, &cfg, "config").map_err(|errors| RunError::Encode {
        what: format!("task {:?} config", i.task.name),
        errors,
    })?;
    let (promises, unveil) = sandbox_settings(&cfg);
    Ok(Prepared {
        dirs,
        env,
        msgpack,
        promises,
        unveil,
    })
}

/// Reads `promises` and `unveil` from the evaluated config, for the hints.
fn sandbox_settings(cfg: &hcl::Body) -> (String, Vec<String>) {
    let get = |k: &str| {
        cfg.attributes()
            .find(|a| a.key.as_str() == k)
            .map(|a| hcl::Value::from(a.expr.clone()))
    };
    let promises = match get("promises") {
        Some(hcl::Value::String(s)) => s,
        _ => String::new(),
    };
    let unveil = match get("unveil") {
        Some(hcl::Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| match v {
                hcl::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    (promises, unveil)
}

async fn set_config(
    base: &mut pb::base::base_plugin_client::BasePluginClient<tonic::transport::Channel>,
    opts: &Options,
    run_dir: &RunDir,
) -> Result<(), RunError> {
    let schema = base
        .config_schema(pb::base::ConfigSchemaRequest {})
        .await
        .map_err(|s| PluginError::rpc("BasePlugin/ConfigSchema", &s))?
        .into_inner()
        .spec;
    let msgpack = match schema {
        None => Vec::new(),
        Some(spec) => {
            let spec = Spec::from_proto(&spec).map_err(|reason| RunError::Schema {
                what: "plugin config",
                reason,
            })?;
            let mut body = match &opts.plugin_config {
                Some(path) => super::agent::plugin_config_body(path)?,
                None => hcl::Body::default(),
            };
            // Keep the plugin's task state inside the run dir unless the operator chose a place.
            let has = |k: &str| body.attributes().any(|a| a.key.as_str() == k);
            if spec_has_attr(&spec, "state_dir") && !has("state_dir") {
                let dir = run_dir.path().join("state");
                body.0.push(hcl::Structure::Attribute(hcl::Attribute::new(
                    "state_dir",
                    dir.display().to_string(),
                )));
            }
            encode_body(&spec, &body, "plugin").map_err(|errors| RunError::Encode {
                what: "the plugin config".into(),
                errors,
            })?
        }
    };
    base.set_config(super::plugin::set_config_request(msgpack))
        .await
        .map_err(|s| PluginError::rpc("BasePlugin/SetConfig", &s))?;
    Ok(())
}

fn spec_has_attr(spec: &Spec, name: &str) -> bool {
    match spec {
        Spec::Object(m) => m.iter().any(|(k, s)| match s {
            Spec::Attr { name: n, .. } => (if n.is_empty() { k } else { n }) == name,
            other => spec_has_attr(other, name),
        }),
        Spec::Default { primary, .. } => spec_has_attr(primary, name),
        Spec::Attr { name: n, .. } => n == name,
        _ => false,
    }
}

async fn watch_fingerprint(
    driver: &mut pb::drivers::driver_client::DriverClient<tonic::transport::Channel>,
) -> Result<(), RunError> {
    let mut stream = driver
        .fingerprint(pb::drivers::FingerprintRequest {})
        .await
        .map_err(|s| PluginError::rpc("Driver/Fingerprint", &s))?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(50), stream.message()).await;
    match first {
        Ok(Ok(Some(fp))) => {
            use pb::drivers::fingerprint_response::HealthState as H;
            match H::try_from(fp.health) {
                Ok(H::Healthy) => {}
                Ok(H::Unhealthy) => say(&format!(
                    "warning: the driver reports itself unhealthy: {} (Nomad would not place tasks here; see TROUBLESHOOT.md)",
                    fp.health_description
                )),
                _ => say(&format!(
                    "warning: the driver is not detected on this host: {} (see TROUBLESHOOT.md)",
                    fp.health_description
                )),
            }
        }
        Ok(Ok(None)) => say("warning: the fingerprint stream ended at once"),
        Ok(Err(s)) => say(&format!("warning: fingerprint failed: {}", s.message())),
        Err(_) => say("warning: no fingerprint within 50 s"),
    }
    // Keep reading, as Nomad does: a plugin must never see its fingerprint stream dropped.
    tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
    Ok(())
}

async fn watch_events(
    driver: &mut pb::drivers::driver_client::DriverClient<tonic::transport::Channel>,
) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    if let Ok(resp) = driver.task_events(pb::drivers::TaskEventsRequest {}).await {
        let mut stream = resp.into_inner();
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(ev)) = stream.message().await {
                say(&format!("event: task {:?}: {}", ev.task_name, ev.message));
                if let Ok(mut s) = seen.lock() {
                    s.push(ev.message);
                }
            }
        });
    }
    seen
}

/// Waits for every started task; the first Ctrl-C, SIGTERM or `--timeout` stops them all.
/// Returns whether the runner stopped them.
async fn wait_all(
    driver: &mut pb::drivers::driver_client::DriverClient<tonic::transport::Channel>,
    started: &mut [Started],
    opts: &Options,
    stop_now: bool,
    signals: &mut StopSignals,
) -> bool {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, s) in started.iter().enumerate() {
        let mut d = driver.clone();
        let id = s.id.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let r = d
                .wait_task(pb::drivers::WaitTaskRequest { task_id: id })
                .await;
            let outcome = match r {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    let res = resp.result.unwrap_or_default();
                    Outcome::Exited {
                        code: res.exit_code,
                        signal: res.signal,
                        oom: res.oom_killed,
                        err: resp.err,
                    }
                }
                Err(s) => Outcome::WaitFailed(s.message().to_owned()),
            };
            let _ = tx.send((i, outcome));
        });
    }
    drop(tx);
    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut stopping = stop_now;
    if stop_now {
        stop_all(driver, started);
    }
    let mut remaining = started.len();
    let mut sidecars_stopped = false;
    while remaining > 0 {
        let mains_done = started
            .iter()
            .all(|s| s.task.sidecar || s.outcome.is_some());
        if mains_done && !sidecars_stopped && !stopping && started.iter().any(|s| s.task.sidecar) {
            sidecars_stopped = true;
            say("the main tasks have ended; stopping the sidecars");
            stop_all(driver, started);
        }
        let timeout = async {
            match deadline {
                Some(d) if !stopping => tokio::time::sleep_until(d).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            got = rx.recv() => match got {
                Some((i, outcome)) => {
                    if let Some(s) = started.get_mut(i) {
                        s.outcome = Some(outcome);
                    }
                    remaining -= 1;
                }
                None => break,
            },
            Some(name) = signals.rx.recv() => {
                if stopping {
                    say(&format!("{name} again: already stopping; the plugin kills the task at its kill_timeout"));
                } else {
                    stopping = true;
                    stop_all(driver, started);
                }
            }
            () = timeout => {
                say("--timeout reached");
                stopping = true;
                stop_all(driver, started);
            }
        }
    }
    stopping
}

fn stop_all(
    driver: &pb::drivers::driver_client::DriverClient<tonic::transport::Channel>,
    started: &[Started],
) {
    for s in started.iter().filter(|s| s.outcome.is_none()) {
        let signal = s.task.kill_signal.clone().unwrap_or_default();
        say(&format!(
            "stopping task {:?} with {} (kill_timeout {:?})",
            s.label,
            if signal.is_empty() {
                "the driver's default signal"
            } else {
                &signal
            },
            s.task.kill_timeout
        ));
        let mut d = driver.clone();
        let req = pb::drivers::StopTaskRequest {
            task_id: s.id.clone(),
            timeout: Some(prost_types::Duration {
                seconds: i64::try_from(s.task.kill_timeout.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(s.task.kill_timeout.subsec_nanos()).unwrap_or(0),
            }),
            signal,
        };
        let label = s.label.clone();
        tokio::spawn(async move {
            if let Err(st) = d.stop_task(req).await {
                say(&format!(
                    "warning: StopTask for {label:?} failed: {}",
                    st.message()
                ));
            }
        });
    }
}

fn report(s: &Started, outcome: &Outcome, stopped_by_runner: bool, notes: &[String]) {
    match outcome {
        Outcome::WaitFailed(m) => {
            say(&format!("task {:?}: WaitTask failed: {m}", s.label));
        }
        Outcome::Exited {
            code,
            signal,
            oom,
            err,
        } => {
            let how = if *signal > 0 {
                format!("was killed by signal {signal}")
            } else {
                format!("exited with code {code}")
            };
            let extra = if err.is_empty() {
                String::new()
            } else {
                format!(" ({err})")
            };
            say(&format!("task {:?} {how}{extra}", s.label));
            let failed = *code != 0 || *signal != 0 || *oom;
            if failed && !(stopped_by_runner && *signal != 9 && *signal != 31 && !*oom) {
                let stderr = s
                    .pump
                    .as_ref()
                    .map(LogPump::stderr_tail)
                    .unwrap_or_default();
                let stdout = s
                    .pump
                    .as_ref()
                    .map(LogPump::stdout_tail)
                    .unwrap_or_default();
                print_hints(&Failure {
                    exit_code: Some(*code),
                    signal: *signal,
                    oom_killed: *oom,
                    stopped_by_runner,
                    stderr: &stderr,
                    stdout: &stdout,
                    plugin_notes: notes,
                    promises: &s.promises,
                    unveil: &s.unveil,
                });
            }
        }
    }
}

fn print_hints(f: &Failure<'_>) {
    for h in hints(f) {
        say(&h);
    }
}

/// The runner's own messages go to stderr, so the task's stdout stays clean on stdout.
pub(crate) fn say(msg: &str) {
    eprintln!("==> {msg}");
}
