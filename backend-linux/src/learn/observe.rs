//! The observer: fork, install a user-notification filter in the child just before `execve`,
//! receive its listener fd over a socketpair (SCM_RIGHTS), and answer every notification with
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE` after the [`Recorder`] has looked at it.
//!
//! The filter is inherited across fork, clone and execve, so every thread and descendant of
//! the program is observed. The one call it lets through unobserved is the child's own
//! `sendmsg` of the listener fd, pinned to the socket's fd number *and* the address of our
//! `msghdr` (a program cannot hit both by accident; the socket is closed before execve).
//!
//! The parent is a child subreaper, so descendants that outlive the program are reaped here
//! and the observation ends when the last of them has exited (or on the deadline / SIGINT /
//! SIGTERM, when the whole tree is stopped: SIGTERM, then SIGKILL after a grace period).

use super::record::{MemReader, Recorder, Reply};
use crate::sandbox::FilterArch;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why learning could not run.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A system call of the observer failed.
    #[error("{step}: {source}")]
    Syscall {
        /// What we were doing.
        step: String,
        /// The error.
        source: std::io::Error,
    },
    /// A string for execve contained a NUL byte.
    #[error("{what} contains a NUL byte")]
    NulByte {
        /// Which string.
        what: String,
    },
    /// The child could not set up the observation (it reported why on stderr).
    #[error("the observed child exited before handing over its seccomp listener (is seccomp user notification available? kernel ≥ 5.5 needed)")]
    NoListener,
    /// Preparing the program failed (not found, unreadable ELF...).
    #[error("preparing the program")]
    Prepare(#[from] crate::sandbox::SandboxError),
    /// Bad command line or job file.
    #[error("{0}")]
    Usage(String),
}

impl LearnError {
    fn last_os(step: impl Into<String>) -> Self {
        Self::Syscall {
            step: step.into(),
            source: std::io::Error::last_os_error(),
        }
    }
}

/// What to run and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserveOptions {
    /// The program, resolved (absolute).
    pub program: PathBuf,
    /// argv, including argv\[0].
    pub argv: Vec<String>,
    /// The environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Stop the program after this long.
    pub deadline: Option<Duration>,
    /// Stop the program on SIGINT/SIGTERM to the observer (Ctrl-C) instead of dying with it.
    pub stop_on_signal: bool,
    /// Print each new distinct observation to stderr (1), and every path (2).
    pub verbose: u8,
}

/// How the observed program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramExit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl ProgramExit {
    /// Shell-style exit status (128+N for signal N).
    pub fn status(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }
}

/// The result of one observation.
#[derive(Debug)]
pub struct Observed {
    /// Everything recorded.
    pub recorder: Recorder,
    /// How the program itself (the first process) ended.
    pub exit: ProgramExit,
    /// Whether learn stopped it (deadline or signal).
    pub stopped: bool,
    /// Notifications answered.
    pub notifications: u64,
    /// Wall time of the observation.
    pub elapsed: Duration,
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Grace between SIGTERM and SIGKILL when learn stops the program.
const STOP_GRACE: Duration = Duration::from_secs(3);

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_RET_K: u16 = 0x06;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The learn filter: every syscall → USER_NOTIF, except `sendmsg(sock_fd, msg_ptr, ...)`.
pub(crate) fn learn_filter(
    arch: FilterArch,
    sendmsg_nr: u32,
    sock_fd: RawFd,
    msg_ptr: u64,
) -> Vec<libc::sock_filter> {
    // Instructions 1..=11 jump to the last one (notify) on mismatch.
    let checks: [(u32, u32); 6] = [
        (4, arch.audit_arch()),
        (0, sendmsg_nr),
        (16, u32::try_from(sock_fd).unwrap_or(u32::MAX)),
        (20, 0),
        (24, (msg_ptr & 0xffff_ffff) as u32),
        (28, (msg_ptr >> 32) as u32),
    ];
    let mut prog = Vec::new();
    let total = checks.len() * 2 + 2;
    for (off, want) in checks {
        prog.push(stmt(BPF_LD_W_ABS, off));
        let here = prog.len();
        let to_notify = u8::try_from(total - 1 - here - 1).unwrap_or(0);
        prog.push(libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 0,
            jf: to_notify,
            k: want,
        });
    }
    prog.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF));
    prog
}

fn cstring(what: &str, bytes: &[u8]) -> Result<CString, LearnError> {
    CString::new(bytes).map_err(|_| LearnError::NulByte { what: what.into() })
}

/// The message the child sends: one SCM_RIGHTS fd. Boxed so its address is the same in the
/// child after fork (the filter pins it).
#[repr(C)]
pub(crate) struct FdMessage {
    msg: libc::msghdr,
    iov: libc::iovec,
    byte: u8,
    // CMSG_SPACE(sizeof(int)) = 24 on 64-bit; u64 array for alignment.
    cmsg: [u64; 4],
}

impl FdMessage {
    /// A boxed one-fd SCM_RIGHTS message with its pointers set (the fd is filled in later).
    pub(crate) fn new() -> Box<Self> {
        // SAFETY: all-zero is a valid msghdr/iovec/array; the pointers are filled in below.
        let mut fdmsg: Box<FdMessage> = Box::new(unsafe { std::mem::zeroed() });
        let fm: *mut FdMessage = &mut *fdmsg;
        // SAFETY: `fm` points at the boxed message; the pointers set here point into the
        // same box, which moves only as a Box (its heap address is stable).
        unsafe {
            (*fm).iov.iov_base = std::ptr::addr_of_mut!((*fm).byte).cast();
            (*fm).iov.iov_len = 1;
            (*fm).msg.msg_iov = std::ptr::addr_of_mut!((*fm).iov);
            (*fm).msg.msg_iovlen = 1;
            (*fm).msg.msg_control = std::ptr::addr_of_mut!((*fm).cmsg).cast();
            (*fm).msg.msg_controllen =
                libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(std::ptr::addr_of!((*fm).msg));
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        }
        fdmsg
    }

    /// The address the filter pins `sendmsg`'s second argument to.
    pub(crate) fn msg_ptr(&self) -> u64 {
        std::ptr::addr_of!(self.msg) as u64
    }

    /// Installs `fprog` with a new listener and sends the listener over `sock` (the one
    /// unobserved call), then closes both. Returns false when either step failed.
    ///
    /// # Safety
    /// `fprog` must point at a valid program built with [`learn_filter`] for this message and
    /// `sock`; the caller must be single-threaded (no other thread may race the filter).
    pub(crate) unsafe fn install_and_send(
        &mut self,
        fprog: &libc::sock_fprog,
        sock: RawFd,
    ) -> bool {
        // SAFETY: per the function contract.
        unsafe {
            let listener = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                fprog as *const libc::sock_fprog,
            );
            if listener < 0 {
                return false;
            }
            let c = libc::CMSG_FIRSTHDR(std::ptr::addr_of!(self.msg));
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), listener as RawFd);
            let sent = libc::sendmsg(sock, std::ptr::addr_of!(self.msg), 0) == 1;
            libc::close(listener as RawFd);
            libc::close(sock);
            sent
        }
    }
}

/// Runs the program under observation until it and all its descendants are gone.
pub fn observe(opts: &ObserveOptions, recorder: Recorder) -> Result<Observed, LearnError> {
    let arch = FilterArch::native();
    let sendmsg_nr = crate::sandbox::syscall_number(arch, "sendmsg")
        .ok_or_else(|| LearnError::Usage("no sendmsg on this architecture".into()))?;
    let program = cstring("program path", opts.program.as_os_str().as_bytes())?;
    let argv: Vec<CString> = opts
        .argv
        .iter()
        .enumerate()
        .map(|(i, a)| cstring(&format!("args[{i}]"), a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = opts
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("env {k:?}"), format!("{k}={v}").as_bytes()))
        .collect::<Result<_, _>>()?;
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp_ptrs: Vec<*const libc::c_char> = envp
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let cwd = cstring("cwd", opts.cwd.as_os_str().as_bytes())?;

    let (parent_sock, child_sock) = seqpacket_pair().map_err(|source| LearnError::Syscall {
        step: "socketpair".into(),
        source,
    })?;

    let mut fdmsg = FdMessage::new();
    let fm: *mut FdMessage = &mut *fdmsg;
    let msg_ptr = fdmsg.msg_ptr();
    let filter = learn_filter(arch, sendmsg_nr, child_sock.as_raw_fd(), msg_ptr);
    let fprog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
        filter: filter.as_ptr().cast_mut(),
    };

    if opts.stop_on_signal {
        STOP_REQUESTED.store(false, Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic (async-signal-safe).
            unsafe { libc::signal(sig, on_stop_signal as *const () as libc::sighandler_t) };
        }
    }
    // SAFETY: integer-only prctl; makes orphaned descendants ours to reap.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let started = Instant::now();
    // SAFETY: the caller guarantees a single-threaded process (module contract); the child
    // only makes raw syscalls on memory prepared before the fork and then execs or _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(LearnError::last_os("fork"));
    }
    if pid == 0 {
        // SAFETY: child side; see child_exec.
        unsafe {
            child_exec(
                &cwd,
                &fprog,
                fm,
                child_sock.as_raw_fd(),
                &program,
                &argv_ptrs,
                &envp_ptrs,
            )
        }
    }
    drop(child_sock);
    let root = pid as u32;
    let listener = match receive_listener(&parent_sock) {
        Ok(l) => l,
        Err(e) => {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            return Err(e);
        }
    };
    drop(parent_sock);
    // Faster wake-ups of the observed thread on 6.7+ (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    // older kernels reject it, which only costs speed.
    let sync_wake: u64 = 1;
    // SAFETY: SET_FLAGS reads one u64 we own.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
            &sync_wake,
        )
    };

    let mut recorder = recorder;
    recorder.set_root(root, opts.verbose);
    let mut run = Loop {
        listener,
        root: pid,
        exit: None,
        stop_at: opts.deadline.map(|d| started + d),
        stopping_since: None,
        stopped: false,
        notifications: 0,
    };
    if let Err(e) = run.run(&mut recorder) {
        // Never leave the program behind, blocked on a listener nobody reads.
        signal_tree(pid, libc::SIGKILL);
        while run.reap() {
            std::thread::sleep(Duration::from_millis(10));
        }
        return Err(e);
    }
    Ok(Observed {
        recorder,
        exit: run.exit.unwrap_or(ProgramExit::Code(0)),
        stopped: run.stopped,
        notifications: run.notifications,
        elapsed: started.elapsed(),
    })
}

/// The child between fork and execve. Never returns.
///
/// # Safety
/// Must be called only in the child of a fork of a single-threaded process; every pointer must
/// point at memory prepared before the fork.
unsafe fn child_exec(
    cwd: &CString,
    fprog: &libc::sock_fprog,
    fm: *mut FdMessage,
    sock: RawFd,
    program: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let fail = |what: &[u8]| -> ! {
        // SAFETY: write/_exit on fd 2 with a buffer we own.
        unsafe {
            libc::write(2, what.as_ptr().cast(), what.len());
            libc::_exit(127)
        }
    };
    // SAFETY: (all calls below) raw syscalls on memory prepared before the fork.
    unsafe {
        // Own process group, so stopping the program stops its whole tree, and a Ctrl-C goes
        // to the observer first (which then stops the program with SIGTERM).
        libc::setpgid(0, 0);
        if libc::chdir(cwd.as_ptr()) != 0 {
            fail(b"nomad-pledge-driver learn: chdir to the working directory failed\n");
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail(b"nomad-pledge-driver learn: prctl(PR_SET_NO_NEW_PRIVS) failed\n");
        }
        // The one unobserved call happens inside (see the module doc). From here on, every
        // call waits for the parent, which now holds the listener.
        if !(*fm).install_and_send(fprog, sock) {
            fail(b"nomad-pledge-driver learn: seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER) or handing over its listener failed\n");
        }
        libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(b"nomad-pledge-driver learn: execve failed\n")
    }
}

pub(crate) fn receive_listener(sock: &OwnedFd) -> Result<OwnedFd, LearnError> {
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: std::ptr::addr_of_mut!(byte).cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: all-zero is a valid msghdr; the pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    loop {
        // SAFETY: recvmsg into buffers we own; MSG_CMSG_CLOEXEC keeps the fd ours.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return Err(LearnError::NoListener);
        }
        break;
    }
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the control length.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(LearnError::NoListener);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads the observed process's memory, valid only while its notification is.
pub(crate) struct ProcMem<'a> {
    pub(crate) listener: &'a OwnedFd,
    pub(crate) id: u64,
}

impl ProcMem<'_> {
    fn still_valid(&self) -> bool {
        // SAFETY: ID_VALID reads one u64 we own.
        unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
                &self.id,
            ) == 0
        }
    }
}

impl MemReader for ProcMem<'_> {
    fn read(&mut self, pid: u32, addr: u64, buf: &mut [u8]) -> usize {
        if addr == 0 || buf.is_empty() {
            return 0;
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: process_vm_readv writes at most buf.len() bytes into buf.
        let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        if n <= 0 || !self.still_valid() {
            return 0;
        }
        n as usize
    }
}

struct Loop {
    listener: OwnedFd,
    root: libc::pid_t,
    exit: Option<ProgramExit>,
    stop_at: Option<Instant>,
    stopping_since: Option<Instant>,
    stopped: bool,
    notifications: u64,
}

impl Loop {
    fn run(&mut self, rec: &mut Recorder) -> Result<(), LearnError> {
        let fd = self.listener.as_raw_fd();
        let mut hung_up = false;
        loop {
            if !self.reap() {
                return Ok(());
            }
            self.maybe_stop();
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let timeout = if hung_up { 20 } else { 100 };
            // SAFETY: poll on one pollfd we own.
            let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(LearnError::last_os("poll on the seccomp listener"));
            }
            if pfd.revents & libc::POLLHUP != 0 {
                hung_up = true;
            }
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            // SAFETY: RECV needs a zeroed seccomp_notif, which all-zero is.
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: RECV writes one seccomp_notif into `req`.
            if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req) } != 0 {
                // ENOENT: the caller went away (signal, death) before we read it.
                continue;
            }
            self.notifications += 1;
            let mut mem = ProcMem {
                listener: &self.listener,
                id: req.id,
            };
            let reply = rec.on_call(req.pid, req.data.nr, req.data.arch, req.data.args, &mut mem);
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
            // SAFETY: SEND reads one seccomp_notif_resp we own. ENOENT (caller gone) is fine.
            unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &resp) };
        }
    }

    /// Reaps every exited descendant; false once none is left.
    fn reap(&mut self) -> bool {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on any child with WNOHANG, status into our int.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if r == 0 {
                return true;
            }
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return false; // ECHILD: nothing left to observe.
            }
            if r == self.root {
                self.exit = Some(if libc::WIFSIGNALED(status) {
                    ProgramExit::Signal(libc::WTERMSIG(status))
                } else {
                    ProgramExit::Code(libc::WEXITSTATUS(status))
                });
            }
        }
    }

    fn maybe_stop(&mut self) {
        let now = Instant::now();
        let requested =
            STOP_REQUESTED.load(Ordering::SeqCst) || self.stop_at.is_some_and(|t| now >= t);
        match self.stopping_since {
            None if requested => {
                self.stopped = true;
                self.stopping_since = Some(now);
                signal_tree(self.root, libc::SIGTERM);
            }
            Some(since) if now.duration_since(since) >= STOP_GRACE => {
                signal_tree(self.root, libc::SIGKILL);
                self.stopping_since = Some(now);
            }
            _ => {}
        }
    }
}

/// Signals the program's process group and every direct child of ours (descendants that
/// left the group were reparented to us, the subreaper).
fn signal_tree(root: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill takes no pointers.
    unsafe { libc::kill(-root, sig) };
    let me = std::process::id();
    let children =
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    for pid in children
        .split_whitespace()
        .filter_map(|p| p.parse::<libc::pid_t>().ok())
    {
        // SAFETY: kill takes no pointers.
        unsafe { libc::kill(pid, sig) };
    }
}

/// A close-on-exec AF_UNIX SOCK_SEQPACKET pair: the channel a notify listener fd is passed on.
pub(crate) fn seqpacket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_notifies_everything_but_the_pinned_sendmsg() {
        let arch = FilterArch::native();
        let nr = crate::sandbox::syscall_number(arch, "sendmsg").unwrap_or(46);
        let f = learn_filter(arch, nr, 7, 0x5555_0000_1234);
        let run = |nr: u32, a: u32, args: [u64; 6]| -> u32 {
            // Tiny interpreter of the instructions we emit.
            let mut data = [0u8; 64];
            data[0..4].copy_from_slice(&nr.to_ne_bytes());
            data[4..8].copy_from_slice(&a.to_ne_bytes());
            for (i, v) in args.iter().enumerate() {
                data[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_ne_bytes());
            }
            let mut acc = 0u32;
            let mut pc = 0usize;
            loop {
                let ins = f[pc];
                match ins.code {
                    BPF_LD_W_ABS => {
                        let o = ins.k as usize;
                        acc = u32::from_ne_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
                        pc += 1;
                    }
                    BPF_JEQ_K => {
                        pc += 1 + usize::from(if acc == ins.k { ins.jt } else { ins.jf });
                    }
                    _ => return ins.k,
                }
            }
        };
        let aa = arch.audit_arch();
        assert_eq!(
            run(nr, aa, [7, 0x5555_0000_1234, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(nr, aa, [7, 0x5555_0000_1235, 0, 0, 0, 0]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(nr, aa, [8, 0x5555_0000_1234, 0, 0, 0, 0]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(nr, aa, [7 | (1 << 32), 0x5555_0000_1234, 0, 0, 0, 0]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(nr, 0x4000_0003, [7, 0x5555_0000_1234, 0, 0, 0, 0]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(run(0, aa, [0; 6]), libc::SECCOMP_RET_USER_NOTIF);
    }
}
