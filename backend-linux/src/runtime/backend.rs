//! [`LinuxBackend`]: the [`Backend`] the grpc shell drives. Synchronous and cheap per call;
//! exits arrive through the watcher thread, which calls the shell's waker, after which the
//! shell calls [`Backend::drain_observations`].

use crate::runtime::cgroup::{CgroupOps, CgroupRoots, TaskCgroup};
use crate::runtime::error::RuntimeError;
use crate::runtime::procfs;
use crate::runtime::state::{self, LaunchMessage, SupervisorSpec, REPORT_FD};
use crate::runtime::watcher::{Waker, Watcher};
use pledge_core::backend::ProcessIdentity;
use pledge_core::{
    Backend, DriverState, Effect, ExitResult, FailureClass, HostFacts, LaunchStart, Launched,
    Observation, SandboxPlan, Signal, TaskId, Usage,
};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How the backend is set up. [`Default`] is what the plugin uses.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// The executable re-run as `<exe> supervise <state_dir>`: the plugin binary itself.
    pub supervisor_exe: PathBuf,
    /// Cgroup mounts; detected when `None`.
    pub cgroup_roots: Option<CgroupRoots>,
    /// How long launch() waits for the supervisor's report (a log FIFO without reader blocks
    /// the task's open).
    pub launch_timeout: Duration,
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            // Works even if the file was replaced by an upgrade while the plugin runs.
            supervisor_exe: PathBuf::from("/proc/self/exe"),
            cgroup_roots: None,
            launch_timeout: Duration::from_secs(30),
        }
    }
}

/// A task this backend tracks.
struct Tracked {
    state: DriverState,
    cgroup: TaskCgroup,
    /// pidfd of the supervisor while it runs.
    supervisor: Option<OwnedFd>,
    token: Option<u64>,
    /// pidfd of the task's main process while it runs.
    main: Option<OwnedFd>,
    exited: bool,
    /// Bytes of the complain-mode complaints file already turned into task events.
    complaints_read: u64,
}

impl Tracked {
    /// Stops the watcher's interest in the supervisor's pidfd (kept open: cleanup uses it).
    fn stop_watching(&mut self, watcher: &mut Watcher) {
        if let (Some(tok), Some(fd)) = (self.token.take(), &self.supervisor) {
            watcher.unwatch(tok, fd.as_fd());
        }
    }

    /// The task has exited: no more signals to its pid, no more watching its supervisor.
    /// Idempotent.
    fn mark_exited(&mut self, watcher: &mut Watcher) {
        if self.exited {
            return;
        }
        self.exited = true;
        self.main = None;
        self.stop_watching(watcher);
        self.supervisor = None;
    }
}

/// The Linux backend: supervisors, cgroups, namespaces, stats, re-attach.
pub struct LinuxBackend {
    opts: BackendOptions,
    roots: CgroupRoots,
    tasks: HashMap<TaskId, Tracked>,
    watcher: Watcher,
    /// State roots task dirs were seen under (plus the default), where cleanup of an id this
    /// backend does not track looks for what it left.
    state_roots: std::collections::BTreeSet<PathBuf>,
}

impl LinuxBackend {
    /// A backend with default options; `waker` is called (from another thread) whenever
    /// observations are pending.
    pub fn new(waker: Waker) -> Result<Self, RuntimeError> {
        Self::with_options(waker, BackendOptions::default())
    }

    /// A backend with explicit options (tests point `supervisor_exe` at a built binary).
    pub fn with_options(waker: Waker, opts: BackendOptions) -> Result<Self, RuntimeError> {
        let roots = opts
            .cgroup_roots
            .clone()
            .unwrap_or_else(CgroupRoots::detect);
        let watcher = Watcher::new(waker).map_err(|source| RuntimeError::StateIo {
            op: "starting the supervisor watcher (epoll, eventfd, thread)",
            path: PathBuf::from("-"),
            source,
        })?;
        Ok(Self {
            opts,
            roots,
            tasks: HashMap::new(),
            watcher,
            state_roots: [PathBuf::from(pledge_core::PluginConfig::DEFAULT_STATE_DIR)].into(),
        })
    }

    /// The cgroup mounts in use.
    pub fn roots(&self) -> &CgroupRoots {
        &self.roots
    }

    /// The cgroup of a tracked task (tests and benchmarks inspect its files).
    pub fn cgroup_of(&self, task: &TaskId) -> Option<&TaskCgroup> {
        self.tasks.get(task).map(|t| &t.cgroup)
    }

    /// The driver state of a tracked task.
    pub fn state_of(&self, task: &TaskId) -> Option<&DriverState> {
        self.tasks.get(task).map(|t| &t.state)
    }

    /// Number of tracked tasks.
    pub fn tracked(&self) -> usize {
        self.tasks.len()
    }

    fn get(&mut self, task: &TaskId) -> Result<&mut Tracked, RuntimeError> {
        self.tasks
            .get_mut(task)
            .ok_or_else(|| RuntimeError::UnknownTask(task.clone()))
    }

    fn track(
        &mut self,
        state: DriverState,
        cgroup: TaskCgroup,
        exited: bool,
    ) -> Result<(), RuntimeError> {
        let task = state.plan.task.clone();
        let p = &state.process;
        let supervisor = if exited {
            None
        } else {
            procfs::pidfd_checked(p.supervisor_pid, p.supervisor_start).map_err(|source| {
                RuntimeError::Process {
                    op: "opening a pidfd for the supervisor",
                    pid: p.supervisor_pid,
                    source,
                }
            })?
        };
        let main = if exited {
            None
        } else {
            procfs::pidfd_checked(p.pid, p.pid_start).ok().flatten()
        };
        let mut token = None;
        match &supervisor {
            Some(fd) => match self.watcher.watch(&task, fd.as_fd()) {
                Ok(t) => token = Some(t),
                Err(source) => {
                    return Err(RuntimeError::StateIo {
                        op: "watching the supervisor pidfd",
                        path: p.state_dir.clone(),
                        source,
                    })
                }
            },
            // Already gone (a fast task): drain reads its exit file.
            None if !exited => self.watcher.fire(&task),
            None => {}
        }
        self.tasks.insert(
            task,
            Tracked {
                state,
                cgroup,
                supervisor,
                token,
                main,
                exited,
                complaints_read: 0,
            },
        );
        Ok(())
    }

    fn spawn_supervisor(&self, plan: &SandboxPlan, dir: &Path) -> Result<OwnedFd, RuntimeError> {
        use std::os::unix::process::CommandExt;
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
            RuntimeError::Process {
                op: "creating the launch pipe",
                pid: std::process::id(),
                source: e,
            }
        })?;
        let log = std::fs::File::create(dir.join(state::LOG_FILE)).map_err(|source| {
            RuntimeError::StateIo {
                op: "creating",
                path: dir.join(state::LOG_FILE),
                source,
            }
        })?;
        let wr_raw = wr.as_raw_fd();
        let mut cmd = std::process::Command::new(&self.opts.supervisor_exe);
        cmd.arg("supervise")
            .arg(dir)
            .env_clear()
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log);
        // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
        // functions (setsid, dup2, fcntl, close_range) without allocating.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if wr_raw == REPORT_FD {
                    if libc::fcntl(wr_raw, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(wr_raw, REPORT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                state::cloexec_above_report_fd();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|source| RuntimeError::SpawnSupervisor {
                exe: self.opts.supervisor_exe.clone(),
                source,
            })?;
        drop(wr);
        // The `supervise` process forks the real supervisor and exits at once.
        let _ = child.wait();
        let _ = plan;
        Ok(rd)
    }

    /// Reads the supervisor's report lines until Started/Failed, EOF or the deadline.
    fn await_report(rd: OwnedFd, timeout: Duration) -> (Option<(u32, u64)>, Option<LaunchMessage>) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = Instant::now() + timeout;
        let mut buf: Vec<u8> = Vec::new();
        let mut sup = None;
        loop {
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                match serde_json::from_slice::<LaunchMessage>(&line) {
                    Ok(LaunchMessage::Supervisor { pid, start }) => sup = Some((pid, start)),
                    Ok(m) => return (sup, Some(m)),
                    Err(_) => {}
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (sup, None);
            }
            let ms = u16::try_from(left.as_millis().min(10_000)).unwrap_or(10_000);
            let mut fds = [PollFd::new(rd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::Error::EINTR) => continue,
                Ok(_) => {}
                Err(_) => return (sup, None),
            }
            let mut chunk = [0u8; 4096];
            match nix::unistd::read(&rd, &mut chunk) {
                Ok(0) => return (sup, None),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(nix::Error::EINTR) => {}
                Err(_) => return (sup, None),
            }
        }
    }

    /// The launch up to the supervisor's start: cgroup, spec, spawn. Returns the read end of
    /// the report pipe.
    fn launch_begin(
        &mut self,
        plan: &SandboxPlan,
        cgroup: &TaskCgroup,
    ) -> Result<OwnedFd, RuntimeError> {
        let task = &plan.task;
        let dir = plan.state_dir.as_path();
        let t0 = Instant::now();
        cgroup
            .create()
            .and_then(|()| {
                if cgroup.populated() {
                    tracing::warn!(task = %task, "the task's cgroup still holds processes of an earlier run; killing them");
                }
                cgroup.evict()
            })
            .and_then(|()| cgroup.apply(&plan.cgroup))
            .map_err(|source| RuntimeError::Cgroup {
                task: task.clone(),
                source,
            })?;
        let spec = SupervisorSpec {
            plan: plan.clone(),
            join: cgroup.join_files(),
            oom_file: cgroup.oom_file(),
            setpriority: cgroup.nice_by_setpriority(),
        };
        let bytes = serde_json::to_vec(&spec).map_err(|source| RuntimeError::StateCorrupt {
            path: dir.join(state::SPEC_FILE),
            source,
        })?;
        state::write_atomic(dir, state::SPEC_FILE, &bytes).map_err(|source| {
            RuntimeError::StateIo {
                op: "writing",
                path: dir.join(state::SPEC_FILE),
                source,
            }
        })?;
        let t1 = t0.elapsed();
        let rd = self.spawn_supervisor(plan, dir)?;
        tracing::debug!(task = %task, cgroup_and_spec = ?t1, spawn = ?t0.elapsed(), "launch begun");
        Ok(rd)
    }

    /// The launch after the supervisor's report (or its absence): the task is tracked, or the
    /// error says why not.
    fn launch_end(
        &mut self,
        plan: &SandboxPlan,
        cgroup: &TaskCgroup,
        (sup, msg): Reported,
    ) -> Result<Launched, RuntimeError> {
        let task = &plan.task;
        let dir = plan.state_dir.as_path();
        match msg {
            Some(LaunchMessage::Started {
                pid,
                start,
                sandbox_report,
            }) => {
                let (supervisor_pid, supervisor_start) = sup.unwrap_or((0, 0));
                let state = DriverState {
                    version: DriverState::VERSION,
                    plan: plan.clone(),
                    process: ProcessIdentity {
                        supervisor_pid,
                        supervisor_start,
                        pid,
                        pid_start: start,
                        state_dir: dir.to_path_buf(),
                    },
                    started_at: SystemTime::now(),
                };
                self.track(state.clone(), cgroup.clone(), false)?;
                Ok(Launched {
                    state,
                    sandbox_report,
                })
            }
            Some(LaunchMessage::Failed { message, class }) => Err(RuntimeError::LaunchFailed {
                task: task.clone(),
                message,
                class,
            }),
            Some(LaunchMessage::Supervisor { .. }) | None => {
                if let Some((pid, start)) = sup {
                    if let Ok(Some(fd)) = procfs::pidfd_checked(pid, start) {
                        let _ = procfs::pidfd_send_signal(&fd, libc::SIGKILL);
                    }
                }
                let log = std::fs::read_to_string(dir.join(state::LOG_FILE)).unwrap_or_default();
                if log.trim().is_empty() {
                    Err(RuntimeError::LaunchTimeout {
                        task: task.clone(),
                        secs: self.opts.launch_timeout.as_secs(),
                    })
                } else {
                    Err(RuntimeError::LaunchFailed {
                        task: task.clone(),
                        message: format!("supervisor failed: {}", log.trim()),
                        class: FailureClass::Retryable,
                    })
                }
            }
        }
    }

    /// Kills what is left, removes the cgroup and the state dir.
    fn teardown(
        cgroup: &TaskCgroup,
        dir: &Path,
        supervisor: Option<&OwnedFd>,
    ) -> Result<(), RuntimeError> {
        let task_err = |source| RuntimeError::Cgroup {
            task: TaskId::default(),
            source,
        };
        cgroup.destroy().map_err(task_err)?;
        if let Some(fd) = supervisor {
            // The supervisor reaps the killed task and writes its record at once.
            if !procfs::pidfd_exited(fd, 2000) {
                let _ = procfs::pidfd_send_signal(fd, libc::SIGKILL);
                let _ = procfs::pidfd_exited(fd, 1000);
            }
        }
        match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RuntimeError::StateIo {
                op: "removing",
                path: dir.to_path_buf(),
                source,
            }),
        }
    }
}

/// Complete lines of `file` after byte `*offset`; advances `*offset` past them.
fn read_new_lines(file: &Path, offset: &mut u64) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(file) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.take(1 << 20).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    *offset += end as u64 + 1;
    String::from_utf8_lossy(&buf[..end])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// SIGKILLs every live supervisor of `dir` (a killed supervisor writes no exit record) and
/// waits for each to be gone. Its task is in the task's cgroup, which the launch evicts.
fn kill_stale_supervisors(dir: &Path) {
    for pid in procfs::supervisors_of(dir) {
        let Ok(fd) = procfs::pidfd_open(pid) else {
            continue; // already gone
        };
        tracing::warn!(pid, dir = %dir.display(), "a supervisor of an earlier, unrecovered task with this id still runs; killing it");
        let _ = procfs::pidfd_send_signal(&fd, libc::SIGKILL);
        if !procfs::pidfd_exited(&fd, 2000) {
            tracing::warn!(
                pid,
                "the stale supervisor did not exit within 2 s of SIGKILL"
            );
        }
    }
}

fn prepare_state_dir(dir: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |op, source| RuntimeError::StateIo {
        op,
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() {
        // A leftover of an earlier attempt with the same id must not pose as this task's exit,
        // and neither may a supervisor an earlier plugin started for this id that nobody
        // recovered: it would write its task's exit into the new dir. End it first. (Without
        // the dir it has nowhere to write, so only then is /proc scanned.)
        kill_stale_supervisors(dir);
        std::fs::remove_dir_all(dir).map_err(|e| io("removing stale", e))?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("creating", e))
}

/// What the supervisor reported on the launch pipe: its (pid, start time), and the last
/// message (none if the pipe closed or the launch timed out first).
type Reported = (Option<(u32, u64)>, Option<LaunchMessage>);

impl LinuxBackend {
    /// Never leave a cgroup, a process or a state dir behind a failed start.
    fn failed_launch_cleanup(
        plan: &SandboxPlan,
        cgroup: &TaskCgroup,
        r: Result<Launched, RuntimeError>,
    ) -> Result<Launched, RuntimeError> {
        if r.is_err() {
            if let Err(t) = Self::teardown(cgroup, &plan.state_dir, None) {
                tracing::warn!(task = %plan.task, "cleaning up a failed launch: {}", crate::runtime::chain(&t));
            }
        }
        r
    }

    fn learn_state_root(&mut self, state_dir: &Path) {
        if let Some(root) = state_dir.parent() {
            if !self.state_roots.contains(root) {
                self.state_roots.insert(root.to_path_buf());
            }
        }
    }

    /// Cleanup of an id this backend does not track: what an earlier plugin left for it (a
    /// cleanup that failed before a restart) is removed: any live supervisor, the cgroup named
    /// in its spec, the state dir. Nothing there is success.
    fn purge_untracked(&mut self, task: &TaskId) -> Result<(), RuntimeError> {
        let dirs: Vec<PathBuf> = self
            .state_roots
            .iter()
            .map(|r| r.join(task.file_name()))
            .filter(|d| d.exists())
            .collect();
        for dir in dirs {
            tracing::info!(task = %task, dir = %dir.display(), "removing what an untracked task left");
            kill_stale_supervisors(&dir);
            match state::read_spec(&dir) {
                Ok(spec) => {
                    let cgroup =
                        TaskCgroup::for_plan(&self.roots, &spec.plan.cgroup).map_err(|source| {
                            RuntimeError::Cgroup {
                                task: task.clone(),
                                source,
                            }
                        })?;
                    Self::teardown(&cgroup, &dir, None)?;
                }
                // No readable spec: the launch never got that far, so no cgroup was made.
                Err(_) => {
                    std::fs::remove_dir_all(&dir).map_err(|source| RuntimeError::StateIo {
                        op: "removing",
                        path: dir.clone(),
                        source,
                    })?
                }
            }
        }
        Ok(())
    }
}

impl Backend for LinuxBackend {
    type Error = RuntimeError;

    fn probe(&mut self) -> HostFacts {
        crate::runtime::probe::host_facts(&self.roots)
    }

    fn launch(&mut self, plan: &SandboxPlan) -> Result<Launched, RuntimeError> {
        // The two halves, with the wait in between on this thread.
        match self.launch_start(plan) {
            LaunchStart::Done(r) => r,
            LaunchStart::Waiting(wait) => self.launch_finish(plan, wait()),
        }
    }

    fn launch_start(&mut self, plan: &SandboxPlan) -> LaunchStart<RuntimeError> {
        if self.tasks.contains_key(&plan.task) {
            return LaunchStart::Done(Err(RuntimeError::AlreadyRunning(plan.task.clone())));
        }
        self.learn_state_root(&plan.state_dir);
        let cgroup = match TaskCgroup::for_plan(&self.roots, &plan.cgroup) {
            Ok(c) => c,
            Err(source) => {
                return LaunchStart::Done(Err(RuntimeError::Cgroup {
                    task: plan.task.clone(),
                    source,
                }))
            }
        };
        if let Err(e) = prepare_state_dir(&plan.state_dir) {
            return LaunchStart::Done(Err(e));
        }
        match self.launch_begin(plan, &cgroup) {
            // The wait for the report (up to the launch timeout) runs wherever the caller
            // likes; launch_finish takes it from there.
            Ok(rd) => {
                let timeout = self.opts.launch_timeout;
                LaunchStart::Waiting(Box::new(move || {
                    Box::new(Self::await_report(rd, timeout)) as Box<dyn std::any::Any + Send>
                }))
            }
            Err(e) => LaunchStart::Done(Self::failed_launch_cleanup(plan, &cgroup, Err(e))),
        }
    }

    fn launch_finish(
        &mut self,
        plan: &SandboxPlan,
        waited: Box<dyn std::any::Any + Send>,
    ) -> Result<Launched, RuntimeError> {
        let cgroup = TaskCgroup::for_plan(&self.roots, &plan.cgroup).map_err(|source| {
            RuntimeError::Cgroup {
                task: plan.task.clone(),
                source,
            }
        })?;
        let reported = match waited.downcast::<Reported>() {
            Ok(r) => *r,
            // Not ours: as if the supervisor never reported (it is killed, nothing is kept).
            Err(_) => (None, None),
        };
        let r = self.launch_end(plan, &cgroup, reported);
        Self::failed_launch_cleanup(plan, &cgroup, r)
    }

    fn signal(&mut self, task: &TaskId, signal: Signal) -> Result<(), RuntimeError> {
        let t = self.get(task)?;
        let (Some(fd), false) = (&t.main, t.exited) else {
            return Err(RuntimeError::Exited(task.clone()));
        };
        match procfs::pidfd_send_signal(fd, signal.number()) {
            Ok(()) => Ok(()),
            Err(nix::Error::ESRCH) => Err(RuntimeError::Exited(task.clone())),
            Err(source) => Err(RuntimeError::Process {
                op: "signalling the task",
                pid: t.state.process.pid,
                source,
            }),
        }
    }

    fn kill_all(&mut self, task: &TaskId) -> Result<(), RuntimeError> {
        let t = self.get(task)?;
        if let Some(fd) = &t.main {
            let _ = procfs::pidfd_send_signal(fd, libc::SIGKILL);
        }
        t.cgroup.kill_all().map_err(|source| RuntimeError::Cgroup {
            task: task.clone(),
            source,
        })
    }

    fn reattach(&mut self, state: &DriverState) -> Result<Effect, RuntimeError> {
        let task = state.plan.task.clone();
        self.learn_state_root(&state.process.state_dir);
        if let Some(t) = self.tasks.get_mut(&task) {
            // A repeated reattach answers as a first one would (the fake's contract): once the
            // supervisor has recorded the exit, the task is exited, and its watcher's event,
            // if still pending, is dropped so the exit is not reported a second time.
            if let Some(rec) = state::read_exit(&t.state.process.state_dir)? {
                t.mark_exited(&mut self.watcher);
                return Ok(Effect::AlreadyExited {
                    state: Box::new(t.state.clone()),
                    result: rec.result(),
                    at: rec.at,
                });
            }
            return Ok(Effect::Launched(Box::new(Launched {
                state: t.state.clone(),
                sandbox_report: "already tracked".into(),
            })));
        }
        let cgroup = TaskCgroup::for_plan(&self.roots, &state.plan.cgroup).map_err(|source| {
            RuntimeError::Cgroup {
                task: task.clone(),
                source,
            }
        })?;
        let dir = state.process.state_dir.clone();
        let exited = |rec: state::ExitRecord, me: &mut Self| -> Result<Effect, RuntimeError> {
            me.track(state.clone(), cgroup.clone(), true)?;
            Ok(Effect::AlreadyExited {
                state: Box::new(state.clone()),
                result: rec.result(),
                at: rec.at,
            })
        };
        if let Some(rec) = state::read_exit(&dir)? {
            return exited(rec, self);
        }
        let p = &state.process;
        let alive = procfs::pidfd_checked(p.supervisor_pid, p.supervisor_start)
            .map_err(|source| RuntimeError::Process {
                op: "opening a pidfd for the supervisor",
                pid: p.supervisor_pid,
                source,
            })?
            .is_some();
        if !alive {
            // It may have written the record just now.
            if let Some(rec) = state::read_exit(&dir)? {
                return exited(rec, self);
            }
            let what = match Self::teardown(&cgroup, &dir, None) {
                Ok(()) => "the task's processes were killed and its cgroup removed".to_string(),
                Err(e) => format!("cleaning up failed: {}", crate::runtime::chain(&e)),
            };
            return Err(RuntimeError::SupervisorLost {
                task,
                pid: p.supervisor_pid,
                what,
            });
        }
        self.track(state.clone(), cgroup, false)?;
        Ok(Effect::Launched(Box::new(Launched {
            state: state.clone(),
            sandbox_report: "re-attached to the running supervisor".into(),
        })))
    }

    fn sample(&mut self, task: &TaskId) -> Result<Usage, RuntimeError> {
        let t = self.get(task)?;
        let mut u = t.cgroup.usage();
        u.at = Some(SystemTime::now());
        Ok(u)
    }

    fn cleanup(&mut self, task: &TaskId) -> Result<(), RuntimeError> {
        let Some(mut t) = self.tasks.remove(task) else {
            return self.purge_untracked(task);
        };
        t.stop_watching(&mut self.watcher);
        let dir = t.state.process.state_dir.clone();
        match Self::teardown(&t.cgroup, &dir, t.supervisor.as_ref()) {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = match e {
                    RuntimeError::Cgroup { source, .. } => RuntimeError::Cgroup {
                        task: task.clone(),
                        source,
                    },
                    other => other,
                };
                // Keep tracking it so a retried cleanup can finish the job.
                self.tasks.insert(task.clone(), t);
                Err(e)
            }
        }
    }

    fn configured(&mut self, plugin: &pledge_core::PluginConfig) {
        self.state_roots.insert(plugin.state_dir.clone());
    }

    fn drain_observations(&mut self, out: &mut Vec<Observation>) {
        // Complain mode: each new line the supervisor wrote is one would-be violation.
        for (task, t) in self.tasks.iter_mut() {
            if t.state.plan.mode == pledge_core::SandboxMode::Complain {
                let file = t
                    .state
                    .process
                    .state_dir
                    .join(crate::learn::complain::COMPLAINTS_FILE);
                for message in read_new_lines(&file, &mut t.complaints_read) {
                    tracing::warn!(task = %task, "complain mode: {message}");
                    out.push(Observation::Note {
                        task: task.clone(),
                        message: format!("complain mode: {message}"),
                    });
                }
            }
        }
        for task in self.watcher.take() {
            let Some(t) = self.tasks.get_mut(&task) else {
                continue;
            };
            if t.exited {
                continue;
            }
            t.mark_exited(&mut self.watcher);
            let lost = |why: String| ExitResult {
                exit_code: 0,
                signal: 0,
                oom_killed: false,
                err: Some(why),
            };
            let (result, at) = match state::read_exit(&t.state.process.state_dir) {
                Ok(Some(rec)) => (rec.result(), rec.at),
                Ok(None) => {
                    let _ = t.cgroup.kill_all();
                    (
                        lost(format!(
                            "supervisor (pid {}) exited without recording the task's exit status; the task's processes were killed",
                            t.state.process.supervisor_pid
                        )),
                        SystemTime::now(),
                    )
                }
                Err(e) => {
                    let _ = t.cgroup.kill_all();
                    (lost(crate::runtime::chain(&e)), SystemTime::now())
                }
            };
            out.push(Observation::Exited { task, result, at });
        }
    }
}
