//! The per-task supervisor: the plugin binary re-executed as
//! `nomad-pledge-driver supervise <state_dir>` (Nomad runs every file in `plugin_dir` as a
//! plugin, so the supervisor cannot be a second executable).
//!
//! Single-threaded and small (no async runtime; a few allocations): it forks once so the plugin
//! only has to reap a process that exits at once, while the real supervisor is reparented and
//! survives the plugin. It clones the task child into new namespaces, waits for its exec,
//! reports on fd 3, reaps the task, and writes `exit.json` atomically before it exits.

use crate::learn::complain;
use crate::runtime::child;
use crate::runtime::error::RuntimeError;
use crate::runtime::procfs;
use crate::runtime::state::{self, ExitRecord, LaunchMessage, SupervisorSpec, REPORT_FD};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use pledge_core::FailureClass;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Entry point of the `supervise` subcommand; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    if args.first().is_some_and(|a| a == "--exec") {
        return crate::runtime::exec::helper_main();
    }
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: nomad-pledge-driver supervise <state_dir>  (started by the plugin)");
        return 2;
    };
    // A plugin that dies mid-launch must cost an EPIPE, not the supervisor (the task child
    // restores the default before exec: ignored signals survive execve).
    // SAFETY: SIG_IGN installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
    let mut report = Reporter::take_fd3();
    // SAFETY: the supervise subcommand runs before any thread is started (main dispatches
    // subcommands first), so fork in a single-threaded process is sound.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            report.send(&LaunchMessage::Failed {
                message: format!("forking the supervisor: {e}"),
                class: FailureClass::Retryable,
            });
            return 1;
        }
    }
    let me = std::process::id();
    report.send(&LaunchMessage::Supervisor {
        pid: me,
        start: procfs::start_time(me).unwrap_or(0),
    });
    match supervise(&dir, &mut report) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "supervisor {}: {}",
                dir.display(),
                crate::runtime::chain(&e)
            );
            1
        }
    }
}

/// The report channel to the plugin (fd 3 when it is a pipe, else nowhere).
struct Reporter(Option<File>);

impl Reporter {
    fn take_fd3() -> Self {
        use nix::sys::stat::{fstat, SFlag};
        // SAFETY: fstat on a possibly-closed fd only fails with EBADF.
        let is_pipe = fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(REPORT_FD) })
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO)
            .unwrap_or(false);
        if !is_pipe {
            return Self(None);
        }
        // SAFETY: fd 3 is the pipe the plugin passed us; nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(REPORT_FD) };
        // The task must not inherit the report pipe.
        let _ = nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Self(Some(File::from(fd)))
    }

    fn send(&mut self, msg: &LaunchMessage) {
        if let Some(f) = &mut self.0 {
            if let Ok(mut line) = serde_json::to_vec(msg) {
                line.push(b'\n');
                let _ = f.write_all(&line);
            }
        }
    }

    fn close(&mut self) {
        self.0 = None;
    }
}

fn oom_count(file: Option<&Path>) -> u64 {
    file.map(|f| {
        crate::runtime::cgroup::read_keyed(f)
            .get("oom_kill")
            .copied()
            .unwrap_or(0)
    })
    .unwrap_or(0)
}

fn supervise(dir: &Path, report: &mut Reporter) -> Result<(), RuntimeError> {
    let spec = match state::read_spec(dir) {
        Ok(s) => s,
        Err(e) => {
            report.send(&LaunchMessage::Failed {
                message: crate::runtime::chain(&e),
                class: FailureClass::Fatal,
            });
            return Err(e);
        }
    };
    // Counted before the task starts: a cgroup Nomad pre-created may carry earlier kills.
    let baseline = oom_count(spec.oom_file.as_deref());
    let (child_pid, mut complain, init_status) = match start_child(&spec) {
        Ok((pid, sandbox_report, complain, init_status)) => {
            report.send(&LaunchMessage::Started {
                pid: pid.as_raw().unsigned_abs(),
                start: procfs::start_time(pid.as_raw().unsigned_abs()).unwrap_or(0),
                sandbox_report,
            });
            report.close();
            (pid, complain, init_status)
        }
        Err((class, message)) => {
            report.send(&LaunchMessage::Failed {
                message: message.clone(),
                class,
            });
            return Err(RuntimeError::LaunchFailed {
                task: spec.plan.task.clone(),
                message,
                class,
            });
        }
    };
    // Keep only what the wait needs; hand the rest of the heap back (the supervisor lives as
    // long as the task: its private memory is per-task overhead).
    let oom_file = spec.oom_file.clone();
    drop(spec);
    // SAFETY: malloc_trim only releases free heap memory; no pointers are involved.
    unsafe { libc::malloc_trim(0) };
    let status = match &mut complain {
        // Complain mode: serve the task's calls until it exits.
        Some(session) => WaitStatus::from_raw(child_pid, session.wait(child_pid.as_raw()))
            .unwrap_or(WaitStatus::StillAlive),
        None => reap(child_pid),
    };
    // Private pid mode: `child_pid` is the namespace's init; the program's own status is what
    // it left in the pipe. Without one the init itself was killed (kill_all's SIGKILL).
    let status = match init_status
        .as_ref()
        .and_then(crate::runtime::init::read_status)
    {
        Some(raw) => WaitStatus::from_raw(child_pid, raw).unwrap_or(status),
        None => status,
    };
    let (exit_code, signal, err) = match status {
        WaitStatus::Exited(_, code) => (code, 0, None),
        WaitStatus::Signaled(_, sig, _) => (0, sig as i32, None),
        other => (
            0,
            0,
            Some(format!("the supervisor lost track of the task: {other:?}")),
        ),
    };
    let record = ExitRecord {
        exit_code,
        signal,
        oom_killed: oom_count(oom_file.as_deref()) > baseline,
        at: SystemTime::now(),
        err,
    };
    let bytes = serde_json::to_vec(&record).map_err(|source| RuntimeError::StateCorrupt {
        path: dir.join(state::EXIT_FILE),
        source,
    })?;
    state::write_atomic(dir, state::EXIT_FILE, &bytes).map_err(|source| RuntimeError::StateIo {
        op: "writing",
        path: dir.join(state::EXIT_FILE),
        source,
    })
}

/// Clones the task child and waits until it has exec'd (or failed to). Also returns the read
/// end of the init's status pipe in private pid mode.
#[allow(clippy::type_complexity)]
fn start_child(
    spec: &SupervisorSpec,
) -> Result<(Pid, String, Option<complain::Session>, Option<OwnedFd>), (FailureClass, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let retry = |m: String| (FailureClass::Retryable, m);
    let mut joins = Vec::with_capacity(spec.join.len());
    for p in &spec.join {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .map_err(|e| retry(format!("opening {}: {e}", p.display())))?;
        joins.push(f);
    }
    let netns = match &spec.plan.namespaces.net_path {
        Some(p) => Some(
            File::open(p)
                .map_err(|e| retry(format!("opening network namespace {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| retry(format!("creating the report pipe: {e}")))?;
    // Non-blocking: the supervisor reads it once, after the init is reaped.
    let (init_rd, init_wr) = if spec.plan.namespaces.pid {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| retry(format!("creating the init's status pipe: {e}")))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let complain_sock = if spec.plan.mode == pledge_core::SandboxMode::Complain
        && spec.plan.pledge_executable.is_none()
    {
        Some(
            complain::prepare_socket()
                .map_err(|e| retry(format!("creating the complain-mode socket: {e}")))?,
        )
    } else {
        None
    };
    // Orphans of the task (host pid mode) are reparented to us and reaped, not to init.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let ns = &spec.plan.namespaces;
    let mut flags = 0;
    if ns.pid {
        flags |= libc::CLONE_NEWPID | libc::CLONE_NEWNS;
    }
    if ns.mount {
        flags |= libc::CLONE_NEWNS;
    }
    if ns.ipc {
        flags |= libc::CLONE_NEWIPC;
    }
    if ns.uts {
        flags |= libc::CLONE_NEWUTS;
    }
    // SAFETY: the supervisor is single-threaded, so a fork-like clone is sound; the child only
    // runs the setup code and execs or _exits.
    let pid = match unsafe { clone_fork(flags) } {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            drop(rd);
            drop(init_rd);
            child::run(spec, &joins, netns.as_ref(), wr, init_wr)
        }
        Err(e) => {
            return Err(retry(format!(
                "cloning the task process into new namespaces: {e}"
            )))
        }
    };
    drop(wr);
    drop(init_wr);
    drop(joins);
    drop(netns);
    // Stray terminal or group signals must not cost us the exit status.
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGPIPE,
        Signal::SIGQUIT,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
    let mut session = complain_sock.and_then(|s| {
        // Complain mode names the program itself, which is the init's child in private pid mode.
        let init = pid.as_raw().unsigned_abs();
        let private = init_rd.is_some();
        complain::Session::accept(s, &spec.plan, || match private {
            true => crate::runtime::init::program_host_pid(init).unwrap_or(init),
            false => init,
        })
    });
    let buf = match &mut session {
        // The child's execve waits for us: serve its calls while reading the report.
        Some(s) => s.read_report(rd),
        None => {
            let mut buf = Vec::new();
            let _ = File::from(rd).take(64 * 1024).read_to_end(&mut buf);
            buf
        }
    };
    let (sandbox_report, failure) = child::parse_report(&buf);
    match failure {
        None => Ok((pid, sandbox_report, session, init_rd)),
        Some(f) => {
            // Closing the listener fails the child's pending calls, so it can exit.
            drop(session);
            let _ = reap(pid);
            Err(f)
        }
    }
}

/// Waits for `pid`, reaping any other (orphaned) child on the way.
fn reap(pid: Pid) -> WaitStatus {
    loop {
        match waitpid(None, None) {
            Ok(st) if st.pid() == Some(pid) => return st,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => return WaitStatus::StillAlive,
        }
    }
}

/// fork(2) with extra clone flags (new namespaces). Returns `None` in the child.
///
/// # Safety
/// The caller must be single-threaded, as for fork.
pub unsafe fn clone_fork(flags: libc::c_int) -> nix::Result<Option<Pid>> {
    // A null stack makes clone behave like fork: the child continues on a copy of this stack.
    // SAFETY: per the function contract; no pointers are passed (all zero).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_ulong::try_from(flags | libc::SIGCHLD).unwrap_or(0),
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        -1 => Err(nix::Error::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(
            i32::try_from(pid).map_err(|_| nix::Error::EOVERFLOW)?,
        ))),
    }
}
