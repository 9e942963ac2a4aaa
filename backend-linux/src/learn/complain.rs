//! Complain mode (`sandbox_mode = "complain"`): the task runs with everything allowed, and each
//! distinct call its promises would deny is reported once, e.g.
//! `promise "inet" needed for socket(AF_INET, SOCK_STREAM, 6)`.
//!
//! Mechanism: the learn observer's, run by the task's supervisor. The task child, at the point
//! where enforcement would load the seccomp allowlist, installs the user-notification filter
//! instead and hands its listener to the supervisor over a socketpair ([`child_install`]);
//! the supervisor answers every call with CONTINUE and checks it against the task's promise set
//! with [`pledge_core::policy::promises::allows`] — the same question the compiled filter
//! answers ([`Complainer`]). Landlock is not applied in complain mode (the sandbox's `prepare`
//! skips it), so file accesses are not judged. Messages go to the supervisor's log and, one per
//! line, to [`COMPLAINTS_FILE`] in the task's state dir, which the backend turns into task events.
//!
//! Cost: every syscall of the task is a round trip to the supervisor, as in learn mode; complain
//! mode is for migrating a job, enforce mode (the default) has the normal filter cost.

use super::observe::{learn_filter, receive_listener, FdMessage};
use super::record::{describe_call, Reply};
use crate::sandbox::{FilterArch, ENOSYS_SYSCALLS, FIRST_UNKNOWN_NR};
use pledge_core::policy::promises::{self, EvalContext};
use pledge_core::PromiseSet;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// The file in the task's state dir holding one complaint per line.
pub const COMPLAINTS_FILE: &str = "complaints.log";

/// The child's end of the supervisor's socketpair, set by the supervisor before it clones the
/// task child (which inherits the value); -1 when not in complain mode.
static CHILD_SOCK: AtomicI32 = AtomicI32::new(-1);

/// Turns calls into complaints: each distinct denied call once.
#[derive(Debug)]
pub struct Complainer {
    promises: PromiseSet,
    arch: FilterArch,
    /// The task's pid as it sees itself (for the table's "self" checks).
    root: u32,
    /// The same process as notifications name it (the supervisor's pid namespace).
    root_tid: u32,
    launched: bool,
    seen: BTreeSet<String>,
}

impl Complainer {
    /// For a task holding `promises` (with the sandbox's implicit ones) whose first process
    /// is `root` in its own pid namespace and `root_tid` in the supervisor's.
    pub fn new(promises: PromiseSet, root: u32, root_tid: u32) -> Self {
        Self {
            promises,
            arch: FilterArch::native(),
            root,
            root_tid,
            launched: false,
            seen: BTreeSet::new(),
        }
    }

    /// How to answer the call, and the complaint when it is a new would-be violation.
    pub fn on_call(
        &mut self,
        tid: u32,
        nr: i32,
        arch: u32,
        args: [u64; 6],
    ) -> (Reply, Option<String>) {
        let nr = nr as u32;
        if arch != self.arch.audit_arch()
            || (self.arch == FilterArch::X86_64 && nr & 0x4000_0000 != 0)
        {
            return (
                Reply::Continue,
                self.once(format!(
                    "syscall {nr} of a foreign ABI (arch {arch:#x}) would kill the task"
                )),
            );
        }
        let name = crate::sandbox::syscall_name(self.arch, nr);
        if nr >= FIRST_UNKNOWN_NR || name.is_some_and(|n| ENOSYS_SYSCALLS.contains(&n)) {
            // Enforcement answers these with ENOSYS whatever the promises; so does complain mode,
            // so the task takes the code path it will take when enforced.
            return (Reply::Errno(libc::ENOSYS), None);
        }
        let Some(name) = name else {
            return (
                Reply::Continue,
                self.once(format!(
                    "syscall {nr} would be denied: no promise allows it"
                )),
            );
        };
        if name == "execve" && !self.launched && tid == self.root_tid {
            self.launched = true; // the launcher's own execve (pinned in the real filter)
            return (Reply::Continue, None);
        }
        let ctx = EvalContext { pid: self.root };
        if promises::allows(&self.promises, name, &args, ctx) {
            return (Reply::Continue, None);
        }
        let call = describe_call(name, &args, self.root);
        let alts = promises::promises_allowing(name, &args, ctx);
        let msg = if alts.is_empty() {
            format!("{call} would be denied: no promise allows it")
        } else {
            let shown: Vec<String> = alts
                .iter()
                .map(|a| {
                    let missing: PromiseSet =
                        a.iter().filter(|p| !self.promises.contains(*p)).collect();
                    format!("{:?}", missing.to_string())
                })
                .collect();
            let word = if alts[0]
                .iter()
                .filter(|p| !self.promises.contains(*p))
                .count()
                > 1
            {
                "promises"
            } else {
                "promise"
            };
            if shown.len() == 1 {
                format!("{word} {} needed for {call}", shown[0])
            } else {
                format!(
                    "{word} {} (or {}) needed for {call}",
                    shown[0],
                    shown[1..].join(", ")
                )
            }
        };
        (Reply::Continue, self.once(msg))
    }

    fn once(&mut self, msg: String) -> Option<String> {
        self.seen.insert(msg.clone()).then_some(msg)
    }
}

/// Supervisor side, before cloning the task child: a socketpair whose child end the child will
/// find ([`child_install`]). Returns the supervisor's end.
pub fn prepare_socket() -> std::io::Result<OwnedFd> {
    let (ours, child) = super::observe::seqpacket_pair()?;
    // The child finds it by number after the clone; close_child_end closes our copy.
    CHILD_SOCK.store(std::os::fd::IntoRawFd::into_raw_fd(child), Ordering::SeqCst);
    Ok(ours)
}

/// Supervisor side, after cloning: closes our copy of the child's end.
pub fn close_child_end() {
    let fd = CHILD_SOCK.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: closing the fd prepare_socket created and nobody else in this process owns.
        unsafe { libc::close(fd) };
    }
}

/// Task child side, in place of loading the allowlist: installs the notification filter and
/// hands its listener to the supervisor. Returns false when that failed.
pub fn child_install() -> bool {
    let sock = CHILD_SOCK.load(Ordering::SeqCst);
    if sock < 0 {
        return false;
    }
    let arch = FilterArch::native();
    let Some(sendmsg_nr) = crate::sandbox::syscall_number(arch, "sendmsg") else {
        return false;
    };
    let mut fdmsg = FdMessage::new();
    let filter = learn_filter(arch, sendmsg_nr, sock, fdmsg.msg_ptr());
    let fprog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: the program was built for this message and socket; the task child is
    // single-threaded.
    let ok = unsafe { fdmsg.install_and_send(&fprog, sock) };
    // The filter stays installed; the message and program may go (the kernel copied it).
    std::mem::forget(fdmsg);
    ok
}

/// Supervisor side: the listener, once the child handed it over.
pub fn receive(sock: &OwnedFd) -> Option<OwnedFd> {
    receive_listener(sock).ok()
}

/// Where complaints go.
pub struct Sink {
    file: Option<std::fs::File>,
}

impl Sink {
    /// Appends to `<state_dir>/complaints.log`.
    pub fn open(state_dir: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join(COMPLAINTS_FILE))
            .ok();
        Self { file }
    }

    fn emit(&mut self, msg: &str) {
        eprintln!("complain: {msg}");
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{}", msg.replace('\n', " "));
        }
    }
}

/// Answers one pending notification (if any) on `listener`.
fn serve_one(listener: &OwnedFd, c: &mut Complainer, sink: &mut Sink) {
    // SAFETY: RECV needs a zeroed seccomp_notif, which all-zero is.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif into `req`.
    if unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut req,
        )
    } != 0
    {
        return;
    }
    let (reply, msg) = c.on_call(req.pid, req.data.nr, req.data.arch, req.data.args);
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match reply {
        Reply::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Reply::Errno(e) => resp.error = -e,
    }
    // SAFETY: SEND reads one seccomp_notif_resp we own; ENOENT (caller gone) is fine.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &resp,
        )
    };
    if let Some(m) = msg {
        sink.emit(&m);
    }
}

/// Serves notifications while reading `pipe` to EOF (the task child's launch report, which
/// ends at its execve — which itself waits for us). Returns what was read.
pub fn serve_until_eof(
    listener: &OwnedFd,
    pipe: &OwnedFd,
    c: &mut Complainer,
    sink: &mut Sink,
) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two pollfds we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return out;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            serve_one(listener, c, sink);
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            let mut buf = [0u8; 4096];
            // SAFETY: read into a buffer we own.
            let r = unsafe { libc::read(pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                return out;
            }
            if out.len() < 64 * 1024 {
                out.extend_from_slice(&buf[..r as usize]);
            }
        }
    }
}

/// Serves notifications until `child` exits; returns its wait status (as `waitpid` wrote
/// it). Other children (orphans reparented to the subreaper) are reaped on the way. Sleeps in
/// poll on the listener and a pidfd of the child, waking at least once a second for orphans.
pub fn serve_until_exit(
    listener: &OwnedFd,
    child: libc::pid_t,
    c: &mut Complainer,
    sink: &mut Sink,
) -> i32 {
    // SAFETY: pidfd_open takes no pointers; a failure (-1) just means we poll with a timeout.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child, 0) } as RawFd;
    // SAFETY: the fd was just created (when >= 0) and nobody else owns it.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG into our int.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if r == child {
            return status;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            return 0;
        }
        if r > 0 {
            continue;
        }
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_ref().map_or(-1, |p| p.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let timeout = if pidfd.is_some() { 1000 } else { 50 };
        // SAFETY: poll on two pollfds we own (a negative fd is ignored by poll).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if n > 0 && fds[0].revents & libc::POLLIN != 0 {
            serve_one(listener, c, sink);
        }
    }
}

/// The supervisor's side of one complain-mode task.
pub struct Session {
    listener: OwnedFd,
    complainer: Complainer,
    sink: Sink,
}

impl Session {
    /// After cloning the task child: waits for its listener. `None` when the child failed
    /// before handing it over (its launch report then says why). `program` names the task's
    /// program by host pid; it is asked once the listener arrived (the program exists then).
    pub fn accept(
        sock: OwnedFd,
        plan: &pledge_core::SandboxPlan,
        program: impl FnOnce() -> u32,
    ) -> Option<Self> {
        close_child_end();
        let listener = receive(&sock)?;
        let child = program();
        // The promises the task really holds: its own plus what the sandbox adds for the
        // program (prepare is pure lookups; Landlock is off in complain mode).
        let promises = crate::sandbox::prepare(plan)
            .map(|p| p.report().promises.clone())
            .unwrap_or_else(|_| plan.promises.clone());
        // "Self" in the table means the pid the task sees for itself (the enforcing filter is
        // compiled in the task's pid namespace): the innermost NSpid.
        let own = std::fs::read_to_string(format!("/proc/{child}/status"))
            .ok()
            .and_then(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|v| v.split_whitespace().last().and_then(|p| p.parse().ok()))
            })
            .unwrap_or(child);
        Some(Self {
            listener,
            complainer: Complainer::new(promises, own, child),
            sink: Sink::open(&plan.state_dir),
        })
    }

    /// Reads the child's launch report to EOF while serving its calls.
    pub fn read_report(&mut self, pipe: OwnedFd) -> Vec<u8> {
        serve_until_eof(&self.listener, &pipe, &mut self.complainer, &mut self.sink)
    }

    /// Serves the task until `child` exits; its raw wait status.
    pub fn wait(&mut self, child: libc::pid_t) -> i32 {
        serve_until_exit(&self.listener, child, &mut self.complainer, &mut self.sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pledge_core::Promise;

    fn nr(name: &str) -> i32 {
        crate::sandbox::syscall_number(FilterArch::native(), name).map_or(-1, |n| n as i32)
    }

    #[test]
    fn each_violation_once_with_the_promise_it_needs() {
        let set: PromiseSet = [Promise::Stdio, Promise::Rpath].into_iter().collect();
        let mut c = Complainer::new(set, 10, 10);
        let aa = FilterArch::native().audit_arch();
        assert_eq!(
            c.on_call(10, nr("read"), aa, [0; 6]),
            (Reply::Continue, None)
        );
        let (r, m) = c.on_call(10, nr("socket"), aa, [2, 1, 6, 0, 0, 0]);
        assert_eq!(r, Reply::Continue);
        assert_eq!(
            m.as_deref(),
            Some("promise \"inet\" (or \"anet\", \"dns\") needed for socket(AF_INET, SOCK_STREAM, 6)")
        );
        assert_eq!(
            c.on_call(10, nr("socket"), aa, [2, 1, 6, 0, 0, 0]).1,
            None,
            "reported once"
        );
        let (_, m) = c.on_call(10, nr("openat"), aa, [0, 0, 0o101, 0o644, 0, 0]);
        assert_eq!(
            m.as_deref(),
            Some("promises \"wpath cpath\" needed for openat(O_WRONLY|O_CREAT)")
        );
        let (_, m) = c.on_call(10, nr("ptrace"), aa, [0; 6]);
        assert!(m.is_some_and(|m| m.contains("no promise allows it")));
        assert_eq!(
            c.on_call(10, nr("clone3"), aa, [0; 6]).0,
            Reply::Errno(libc::ENOSYS)
        );
        // The launch execve is free; a second one needs exec.
        assert_eq!(c.on_call(10, nr("execve"), aa, [0; 6]).1, None);
        assert!(c
            .on_call(10, nr("execve"), aa, [0; 6])
            .1
            .is_some_and(|m| m.starts_with("promise \"exec\"")));
    }
}
