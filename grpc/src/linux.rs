//! The Linux task runtime wired into the plugin: [`LinuxExec`] runs exec plans through the
//! runtime's exec helper (the task's namespaces, cgroup and sandbox) as [`ExecSession`]s.

use crate::service::exec::{ExecExit, ExecIo, ExecRunner, ExecSession};
use pledge_backend_linux::runtime::exec::{ExecChild, ExecContext};
use pledge_core::ExecPlan;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Starts exec plans with the runtime's helper (`supervise --exec`).
#[derive(Debug, Default)]
pub struct LinuxExec {
    ctx: ExecContext,
}

impl LinuxExec {
    /// A runner using `ctx` (helper binary and cgroup mounts).
    pub fn new(ctx: ExecContext) -> Self {
        Self { ctx }
    }
}

/// One running exec; the child is behind a mutex because the output pumps, the RPC and the
/// timeout share the session. `wait` takes the lock only after the output reached EOF.
struct LinuxSession {
    child: Mutex<ExecChild>,
    pid: u32,
    /// Set once the helper was reaped, so its pid is never signalled after it may be reused.
    reaped: AtomicBool,
}

impl ExecRunner for LinuxExec {
    fn start(&self, plan: &ExecPlan) -> Result<Arc<dyn ExecSession>, String> {
        let child = self
            .ctx
            .spawn(plan)
            .map_err(|e| pledge_core::backend::error_chain(&e))?;
        let pid = child.pid();
        Ok(Arc::new(LinuxSession {
            child: Mutex::new(child),
            pid,
            reaped: AtomicBool::new(false),
        }))
    }
}

impl ExecSession for LinuxSession {
    fn take_io(&self) -> ExecIo {
        let Ok(mut c) = self.child.lock() else {
            return ExecIo::default();
        };
        ExecIo {
            stdin: c.stdin.take().map(File::from),
            stdout: c.stdout.take().map(File::from),
            stderr: c.stderr.take().map(File::from),
            // The pty stays in the child for resize; the pumps use a duplicate.
            pty: c
                .pty
                .as_ref()
                .and_then(|p| p.try_clone().ok())
                .map(File::from),
        }
    }

    fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        let c = self
            .child
            .lock()
            .map_err(|_| "exec session poisoned".to_owned())?;
        c.resize(rows, cols)
            .map_err(|e| pledge_core::backend::error_chain(&e))
    }

    fn kill(&self) {
        // While nobody waits, kill through the child (std knows whether it was reaped).
        if let Ok(mut c) = self.child.try_lock() {
            c.kill();
            return;
        }
        // wait() holds the lock: the helper is not reaped yet unless `reaped` says so. SIGKILL
        // of the helper; its death signal takes the command with it.
        if self.reaped.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    fn wait(&self) -> ExecExit {
        let r = match self.child.lock() {
            Ok(mut c) => {
                let r = c.wait();
                self.reaped.store(true, Ordering::SeqCst);
                r
            }
            Err(_) => return ExecExit::default(),
        };
        ExecExit {
            exit_code: r.exit_code,
            signal: r.signal,
        }
    }
}
