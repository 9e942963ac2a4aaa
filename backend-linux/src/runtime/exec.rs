//! Exec into a running task (`nomad alloc exec`, script checks): the command runs in the task's
//! cgroup, its namespaces and the same sandbox (promises and unveil) as the task.
//!
//! The plugin is multi-threaded, so it cannot setns or prepare a sandbox after fork. It starts a
//! helper instead, the plugin binary as `supervise --exec`, with the [`ExecSpec`] on fd 3 and
//! the caller's stdio (pipes or a pty slave) on 0-2. The single-threaded helper joins the
//! task's namespaces, forks (so the child lands in the task's pid namespace), and the child
//! joins the cgroup, applies the sandbox and execs. The helper relays the exit status: the
//! same code, or the same signal.

use crate::runtime::cgroup::{CgroupOps, CgroupRoots, TaskCgroup};
use crate::runtime::error::RuntimeError;
use crate::runtime::state::REPORT_FD;
use pledge_core::{ExecPlan, ExitResult, SandboxPlan};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// What the helper needs, sent as JSON on fd 3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The task's plan with the exec'd command.
    pub plan: SandboxPlan,
    /// Host pid whose namespaces are joined.
    pub target_pid: u32,
    /// cgroup.procs files to join.
    pub join: Vec<PathBuf>,
    /// The child gets the pty on 0-2 as its controlling terminal.
    pub tty: bool,
}

/// Where the helper binary and the cgroup mounts are; cheap to clone, `Send`.
#[derive(Clone, Debug)]
pub struct ExecContext {
    /// The plugin binary (run as `supervise --exec`).
    pub exe: PathBuf,
    /// Cgroup mounts.
    pub roots: CgroupRoots,
}

impl Default for ExecContext {
    fn default() -> Self {
        Self {
            exe: PathBuf::from("/proc/self/exe"),
            roots: CgroupRoots::detect(),
        }
    }
}

/// A running exec'd command.
#[derive(Debug)]
pub struct ExecChild {
    child: Option<std::process::Child>,
    /// Write end of the command's stdin (no tty).
    pub stdin: Option<OwnedFd>,
    /// Read end of its stdout (no tty).
    pub stdout: Option<OwnedFd>,
    /// Read end of its stderr (no tty).
    pub stderr: Option<OwnedFd>,
    /// The pty master (tty): read output, write input, [`ExecChild::resize`].
    pub pty: Option<OwnedFd>,
}

/// Starts `plan` with the default context (this binary, detected cgroups).
pub fn spawn_exec(plan: &ExecPlan) -> Result<ExecChild, RuntimeError> {
    ExecContext::default().spawn(plan)
}

impl ExecContext {
    /// Starts the command of `plan` inside its task.
    pub fn spawn(&self, plan: &ExecPlan) -> Result<ExecChild, RuntimeError> {
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;
        if plan.plan.command.is_empty() {
            return Err(RuntimeError::InvalidExec {
                field: "command",
                reason: "must name a program".into(),
            });
        }
        if plan.target_pid == 0 {
            return Err(RuntimeError::InvalidExec {
                field: "target_pid",
                reason: "the task has no running process".into(),
            });
        }
        let cgroup = TaskCgroup::for_plan(&self.roots, &plan.plan.cgroup).map_err(|source| {
            RuntimeError::Cgroup {
                task: plan.plan.task.clone(),
                source,
            }
        })?;
        let spec = ExecSpec {
            plan: plan.plan.clone(),
            target_pid: plan.target_pid,
            join: cgroup.join_files(),
            tty: plan.tty,
        };
        let bytes = serde_json::to_vec(&spec).map_err(|source| RuntimeError::StateCorrupt {
            path: PathBuf::from("<exec spec>"),
            source,
        })?;
        let proc_err = |op| {
            move |source| RuntimeError::Process {
                op,
                pid: std::process::id(),
                source,
            }
        };
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(proc_err("creating the exec spec pipe"))?;
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("supervise")
            .arg("--exec")
            .env_clear()
            .current_dir("/");
        let mut pty = None;
        if plan.tty {
            let p = nix::pty::openpty(None, None).map_err(proc_err("opening a pty"))?;
            let _ = nix::fcntl::fcntl(
                &p.master,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            let dup = |fd: &OwnedFd| {
                fd.try_clone().map_err(|e| RuntimeError::Process {
                    op: "duplicating the pty slave",
                    pid: std::process::id(),
                    source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                })
            };
            cmd.stdin(Stdio::from(dup(&p.slave)?))
                .stdout(Stdio::from(dup(&p.slave)?))
                .stderr(Stdio::from(p.slave));
            pty = Some(p.master);
        } else {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        let rd_raw = rd.as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2, fcntl, close_range) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if rd_raw == REPORT_FD {
                    if libc::fcntl(rd_raw, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(rd_raw, REPORT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                crate::runtime::state::cloexec_above_report_fd();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|source| RuntimeError::SpawnSupervisor {
                exe: self.exe.clone(),
                source,
            })?;
        drop(rd);
        let mut wr = std::fs::File::from(wr);
        // The spec is small; the helper reads it to EOF before doing anything.
        if let Err(source) = wr.write_all(&bytes) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RuntimeError::StateIo {
                op: "sending the exec spec to",
                path: self.exe.clone(),
                source,
            });
        }
        drop(wr);
        Ok(ExecChild {
            stdin: child.stdin.take().map(OwnedFd::from),
            stdout: child.stdout.take().map(OwnedFd::from),
            stderr: child.stderr.take().map(OwnedFd::from),
            child: Some(child),
            pty,
        })
    }
}

impl ExecChild {
    /// Pid of the helper process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Sets the pty's window size.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), RuntimeError> {
        let Some(m) = &self.pty else {
            return Err(RuntimeError::InvalidExec {
                field: "tty_size",
                reason: "the exec session has no tty".into(),
            });
        };
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which is valid for the call.
        let r = unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r < 0 {
            return Err(RuntimeError::Process {
                op: "resizing the pty",
                pid: self.pid(),
                source: nix::Error::last(),
            });
        }
        Ok(())
    }

    /// Kills the command (the helper and, through its death signal, the child).
    pub fn kill(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
        }
    }

    /// Blocks until the command exits.
    pub fn wait(&mut self) -> ExitResult {
        use std::os::unix::process::ExitStatusExt;
        let Some(mut c) = self.child.take() else {
            return ExitResult {
                err: Some("exec already waited for".into()),
                ..ExitResult::default()
            };
        };
        match c.wait() {
            Ok(st) => ExitResult {
                exit_code: st.code().unwrap_or(0),
                signal: st.signal().unwrap_or(0),
                oom_killed: false,
                err: None,
            },
            Err(e) => ExitResult {
                err: Some(format!("waiting for the exec helper: {e}")),
                ..ExitResult::default()
            },
        }
    }
}

impl Drop for ExecChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The helper (`supervise --exec`); returns its exit code (or re-raises the child's signal).
pub fn helper_main() -> i32 {
    match helper() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nomad-pledge-driver exec: {e}");
            127
        }
    }
}

fn helper() -> Result<i32, String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: fd 3 is the spec pipe the plugin passed; nothing else owns it.
    let mut f = unsafe { std::fs::File::from_raw_fd(REPORT_FD) };
    let mut bytes = Vec::new();
    Read::by_ref(&mut f)
        .take(16 * 1024 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the exec spec: {e}"))?;
    drop(f);
    let spec: ExecSpec =
        serde_json::from_slice(&bytes).map_err(|e| format!("bad exec spec: {e}"))?;
    let mut joins = Vec::new();
    for p in &spec.join {
        use std::os::unix::fs::OpenOptionsExt;
        joins.push(
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(p)
                .map_err(|e| format!("opening {}: {e}", p.display()))?,
        );
    }
    enter_namespaces(spec.target_pid)?;
    // SAFETY: the helper is single-threaded (subcommands run before any thread starts).
    let pid = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Ok(nix::unistd::ForkResult::Child) => exec_child(&spec, &joins),
        Err(e) => return Err(format!("fork: {e}")),
    };
    drop(joins);
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: SIG_IGN installs no handler.
        unsafe { libc::signal(s, libc::SIG_IGN) };
    }
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => {
                // Die the same way, so the plugin sees the signal in the exit status.
                // SAFETY: restoring the default disposition and raising a signal on ourselves.
                unsafe {
                    libc::signal(sig as i32, libc::SIG_DFL);
                    libc::raise(sig as i32);
                }
                return Ok(128 + sig as i32);
            }
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(format!("waitpid: {e}")),
        }
    }
}

/// Joins the target's ipc, uts, net, pid (for our children) and mount namespaces, skipping
/// those we already share.
fn enter_namespaces(pid: u32) -> Result<(), String> {
    use nix::sched::CloneFlags;
    use std::os::unix::fs::MetadataExt;
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let mine = format!("/proc/self/ns/{name}");
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&mine)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            (Err(e), _) => return Err(format!("task process {pid} is gone ({theirs}: {e})")),
            _ => false,
        };
        if same {
            continue;
        }
        let f = std::fs::File::open(&theirs).map_err(|e| format!("opening {theirs}: {e}"))?;
        nix::sched::setns(&f, flag)
            .map_err(|e| format!("joining the task's {name} namespace: {e}"))?;
    }
    Ok(())
}

fn exec_child(spec: &ExecSpec, joins: &[std::fs::File]) -> ! {
    let err = (|| -> Result<std::convert::Infallible, String> {
        for (f, p) in joins.iter().zip(&spec.join) {
            let mut f: &std::fs::File = f;
            f.write_all(b"0")
                .map_err(|e| format!("joining cgroup via {}: {e}", p.display()))?;
        }
        crate::runtime::child::reset_signal_dispositions();
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        if spec.tty {
            // SAFETY: TIOCSCTTY with arg 0 on our stdin (the pty slave) takes no pointer.
            if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                return Err(format!(
                    "acquiring the pty: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::SIGKILL);
        let prepared =
            crate::sandbox::prepare(&spec.plan).map_err(|e| crate::runtime::chain(&e))?;
        match crate::sandbox::enter_and_exec(prepared) {
            Ok(never) => match never {},
            Err(e) => Err(crate::runtime::chain(&e)),
        }
    })();
    let msg = match err {
        Ok(never) => match never {},
        Err(m) => m,
    };
    let _ = writeln!(std::io::stderr(), "nomad-pledge-driver exec: {msg}");
    // SAFETY: end the forked child without running atexit handlers.
    unsafe { libc::_exit(127) }
}
