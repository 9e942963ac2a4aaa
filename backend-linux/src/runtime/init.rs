//! The task's pid-namespace init (private pid mode only), like tini or `docker --init`.
//!
//! The kernel drops a signal sent to a namespace's pid 1 from an ancestor namespace unless
//! pid 1 handles it (only SIGKILL and SIGSTOP are forced), so a program running as pid 1
//! would never see StopTask's SIGTERM. Instead the task child becomes this init: it forks the
//! program (pid 2), forwards every catchable signal it receives to the program alone (the same
//! process host pid mode signals: the program's own children are its business), reaps every
//! process reparented to it, and when the program exits writes the program's raw wait status
//! (4 bytes, native endian) to the supervisor's status pipe and exits. The init itself cannot
//! die by the program's signal (it is pid 1), so the pipe carries the exact status; the init's
//! own exit code is only a fallback (`code`, or `128 + signal`). When the init exits the
//! kernel kills whatever else is left in the namespace, as it did when the program was pid 1.

use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

/// The program's pid inside the task's namespace (the init's first and only fork).
pub const PROGRAM_NS_PID: libc::pid_t = 2;

/// Name shown by `ps` inside the task for the init.
const INIT_NAME: &std::ffi::CStr = c"pledge-init";

/// Blocks every signal (so none reaching the init before it waits is lost), forks, and
/// returns in the program's process (with the mask restored empty); the init never returns.
/// `Err` means the fork failed (still in the original process).
pub fn fork_program(status: OwnedFd) -> nix::Result<()> {
    let all = nix::sys::signal::SigSet::all();
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&all), None)?;
    // SAFETY: the task child is single-threaded (a fork of the single-threaded supervisor).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(status);
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )?;
            Ok(())
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => run_init(child, status),
        Err(e) => {
            let _ = nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            );
            Err(e)
        }
    }
}

/// The init holds only its status pipe: the report pipe and the complain socket must reach EOF
/// when the program execs or exits, which they cannot while the init keeps a copy.
fn close_all_but(keep: libc::c_int) {
    let close = |first: libc::c_int, last: libc::c_uint| {
        if let Ok(first) = libc::c_uint::try_from(first) {
            if first <= last {
                // SAFETY: close_range takes plain integers; it only closes our own fds, none of
                // which is used afterwards (the caller keeps `keep`).
                unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
            }
        }
    };
    close(3, libc::c_uint::try_from(keep - 1).unwrap_or(0));
    close(keep + 1, libc::c_uint::MAX);
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The init's loop; never returns.
fn run_init(program: Pid, status: OwnedFd) -> ! {
    let _ = nix::sys::prctl::set_name(INIT_NAME);
    close_all_but(status.as_raw_fd());
    install_handlers();
    let mut status = std::fs::File::from(status);
    // SAFETY: sigset_t is plain data; sigfillset initialises it.
    let mut waited: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to our sigset.
    unsafe { libc::sigfillset(&mut waited) };
    // Wake at least once a second to reap, in case a SIGCHLD was coalesced or missed.
    let timeout = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        // SAFETY: all pointers are to live locals; a null siginfo is allowed.
        let sig = unsafe { libc::sigtimedwait(&waited, std::ptr::null_mut(), &timeout) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(program.as_raw(), sig) };
        }
        if let Some(raw) = reap_all(program) {
            let _ = status.write_all(&raw.to_ne_bytes());
            let code = if libc::WIFSIGNALED(raw) {
                128 + libc::WTERMSIG(raw)
            } else {
                libc::WEXITSTATUS(raw)
            };
            // SAFETY: _exit ends the init without running the supervisor's atexit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// A handler for every catchable signal: signals the init has no handler for are dropped by
/// the kernel before they could even be waited for. (They stay blocked; the handler never
/// runs, sigtimedwait takes them.)
fn install_handlers() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: sigaction struct is plain data, zeroed then filled; the handler is a no-op
        // extern "C" fn. Failures (glibc's reserved 32/33) are harmless: those stay default.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = ignore_signal as *const () as usize;
            act.sa_flags = libc::SA_RESTART;
            libc::sigfillset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// Reaps every exited child; the program's raw wait status if it was among them.
fn reap_all(program: Pid) -> Option<i32> {
    let mut found = None;
    loop {
        let mut raw = 0;
        // SAFETY: waitpid writes into our int.
        let r = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG | libc::__WALL) };
        if r <= 0 {
            return found;
        }
        if r == program.as_raw() && (libc::WIFEXITED(raw) || libc::WIFSIGNALED(raw)) {
            found = Some(raw);
        }
    }
}

/// Reads the program's status the init left in the pipe (non-blocking: `None` when the init
/// was killed before writing, e.g. by kill_all's SIGKILL to the whole cgroup).
pub fn read_status(pipe: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 4];
    let n = nix::unistd::read(pipe, &mut buf).ok()?;
    (n == 4).then(|| i32::from_ne_bytes(buf))
}

/// The program's host pid: the child of `init` (complain mode names it in its table).
pub fn program_host_pid(init: u32) -> Option<u32> {
    let want = format!("PPid:\t{init}");
    crate::runtime::procfs::all_pids().into_iter().find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|st| st.lines().any(|l| l == want))
    })
}
