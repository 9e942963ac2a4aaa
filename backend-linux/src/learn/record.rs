//! Turns one notification (syscall number, arch, six arguments) into what learn mode keeps:
//! a [`Requirement`] (the promise sets that would allow the call, from the core's table), and
//! for path calls the [`super::paths::Access`]es Landlock would check.
//!
//! Calls are deduplicated by (syscall, alternatives): the thousandth `read` adds nothing. Calls
//! no promise allows are kept per distinct description, so each is listed and explained.

use super::paths::{self, Accesses, Base, Op};
use crate::sandbox::{FilterArch, ENOSYS_SYSCALLS, FIRST_UNKNOWN_NR};
use pledge_core::policy::promises::{self, consts, EvalContext};
use pledge_core::PromiseSet;
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;

/// Reads the observed process's memory (process_vm_readv in the observer, a map in tests).
pub trait MemReader {
    /// Reads up to `buf.len()` bytes at `addr` of `pid`; returns how many were read (0 on any
    /// failure, including a notification that is no longer valid).
    fn read(&mut self, pid: u32, addr: u64, buf: &mut [u8]) -> usize;
}

/// How to answer a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Let the call run (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Fail it with this errno (only the ENOSYS that enforcement also answers).
    Errno(i32),
}

/// One distinct kind of call the program made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// Syscall name.
    pub syscall: String,
    /// The first such call, with the arguments the table checks, e.g.
    /// `socket(AF_INET, SOCK_STREAM, 0)`.
    pub example: String,
    /// Minimal promise sets, each enough on its own; empty = no promise allows it.
    pub alternatives: Vec<PromiseSet>,
    /// How often it was seen.
    pub count: u64,
    /// For calls no promise allows: why.
    pub why_not: Option<String>,
}

/// Everything recorded during one observation.
#[derive(Debug)]
pub struct Recorder {
    arch: FilterArch,
    root: u32,
    verbose: u8,
    launched: bool,
    requirements: BTreeMap<String, Requirement>,
    /// Calls answered with ENOSYS, as enforcement would (name → count).
    pub enosys: BTreeMap<String, u64>,
    /// Path accesses.
    pub accesses: Accesses,
    tgids: BTreeMap<u32, u32>,
    /// Calls that fail whatever the sandbox does (so they need no promise), by description.
    pub fail_anyway: BTreeMap<String, u64>,
    unix_used: bool,
    unix_probed: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder for the native architecture.
    pub fn new() -> Self {
        Self {
            arch: FilterArch::native(),
            root: 0,
            verbose: 0,
            launched: false,
            requirements: BTreeMap::new(),
            enosys: BTreeMap::new(),
            accesses: Accesses::default(),
            tgids: BTreeMap::new(),
            fail_anyway: BTreeMap::new(),
            unix_used: false,
            unix_probed: false,
        }
    }

    /// The program's first process (whose own pid the table's "self" checks compare with, as
    /// the enforcing filter compiled in that process does), and the verbosity.
    pub fn set_root(&mut self, root: u32, verbose: u8) {
        self.root = root;
        self.verbose = verbose;
    }

    /// The distinct requirements, by syscall name.
    ///
    /// A unix socket whose only use was connecting to socket files that do not exist (glibc
    /// probing for nscd, a missing syslog socket) is left out: without `unix` its socket() fails
    /// instead of its connect(), and the program takes the same fallback.
    pub fn requirements(&self) -> impl Iterator<Item = &Requirement> {
        let drop_unix = self.unix_probed && !self.unix_used;
        self.requirements.values().filter(move |r| {
            !(drop_unix && r.syscall == "socket" && r.example.starts_with("socket(AF_UNIX"))
        })
    }

    /// Whether a unix socket was created only to probe missing socket files (see
    /// [`Recorder::requirements`]).
    pub fn unix_only_probed(&self) -> bool {
        self.unix_probed && !self.unix_used
    }

    /// Calls that need no promise because they fail anyway; `false` to record normally.
    fn fails_anyway(
        &mut self,
        tid: u32,
        name: &str,
        a: &[u64; 6],
        mem: &mut dyn MemReader,
    ) -> bool {
        match name {
            "connect" | "bind" => {
                let Some(path) = unix_path(mem, tid, a[1], a[2]) else {
                    return false;
                };
                if name == "bind" {
                    self.unix_used = true;
                    return false;
                }
                let exists = match path {
                    UnixAddr::Abstract => true,
                    UnixAddr::Path(p) => {
                        let base =
                            std::fs::read_link(format!("/proc/{tid}/cwd")).unwrap_or_default();
                        base.join(std::ffi::OsStr::from_bytes(&p)).exists()
                    }
                };
                if exists {
                    self.unix_used = true;
                    return false;
                }
                self.unix_probed = true;
                let what = match unix_path(mem, tid, a[1], a[2]) {
                    Some(UnixAddr::Path(p)) => String::from_utf8_lossy(&p).into_owned(),
                    _ => String::new(),
                };
                *self
                    .fail_anyway
                    .entry(format!("connect(AF_UNIX {what}): no such socket"))
                    .or_insert(0) += 1;
                true
            }
            "ioctl" if promises::IOCTL_TTY.contains(&(a[1] & 0xffff_ffff)) => {
                // A terminal ioctl on something that is not a terminal fails with ENOTTY.
                let fd = a[0] as u32 as i32;
                let link = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).unwrap_or_default();
                let tty = ["/dev/pts/", "/dev/tty", "/dev/console"]
                    .iter()
                    .any(|p| link.to_string_lossy().starts_with(p));
                if tty {
                    return false;
                }
                *self
                    .fail_anyway
                    .entry(format!(
                        "ioctl({:#x}) on a non-terminal: ENOTTY",
                        a[1] as u32
                    ))
                    .or_insert(0) += 1;
                true
            }
            _ => false,
        }
    }

    fn tgid(&mut self, tid: u32) -> u32 {
        if let Some(t) = self.tgids.get(&tid) {
            return *t;
        }
        let t = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Tgid:").map(|v| v.trim().parse().ok()))
                    .flatten()
            })
            .unwrap_or(tid);
        self.tgids.insert(tid, t);
        t
    }

    /// Records one call and says how to answer it.
    pub fn on_call(
        &mut self,
        tid: u32,
        nr: i32,
        arch: u32,
        args: [u64; 6],
        mem: &mut dyn MemReader,
    ) -> Reply {
        let nr = nr as u32;
        if arch != self.arch.audit_arch()
            || (self.arch == FilterArch::X86_64 && nr & 0x4000_0000 != 0)
        {
            let what = if arch != self.arch.audit_arch() {
                format!("syscall {nr} of a foreign ABI (arch {arch:#x}, e.g. i386 int 0x80)")
            } else {
                format!("x32 syscall {:#x}", nr)
            };
            self.unallowed(
                "foreign-abi",
                what,
                "the filter kills the process for any call outside the native 64-bit ABI",
            );
            return Reply::Continue;
        }
        let name = crate::sandbox::syscall_name(self.arch, nr);
        if nr >= FIRST_UNKNOWN_NR || name.is_some_and(|n| ENOSYS_SYSCALLS.contains(&n)) {
            let n = name.map_or_else(|| format!("syscall_{nr}"), str::to_string);
            *self.enosys.entry(n).or_insert(0) += 1;
            return Reply::Errno(libc::ENOSYS);
        }
        let Some(name) = name else {
            self.unallowed(
                &format!("syscall_{nr}"),
                format!("syscall {nr}"),
                "not in the promise table, so no promise allows it",
            );
            return Reply::Continue;
        };
        if name == "execve" && !self.launched && tid == self.root {
            // The launcher's own execve of the program: enforcement allows exactly this one
            // without `exec` (the compiled filter pins it), so it needs no promise.
            self.launched = true;
            return Reply::Continue;
        }
        self.record_paths(tid, name, &args, mem);
        if self.fails_anyway(tid, name, &args, mem) {
            return Reply::Continue;
        }
        let ctx = EvalContext { pid: self.root };
        let alternatives = promises::promises_allowing(name, &args, ctx);
        let example = describe_call(name, &args, self.root);
        let key = if alternatives.is_empty() {
            format!("{name}|!{example}")
        } else {
            let alts: Vec<String> = alternatives.iter().map(|s| s.to_string()).collect();
            format!("{name}|{}", alts.join("/"))
        };
        if let Some(r) = self.requirements.get_mut(&key) {
            r.count += 1;
            return Reply::Continue;
        }
        let why_not = alternatives
            .is_empty()
            .then(|| why_not(name, &args, self.root));
        if self.verbose > 0 {
            let alts: Vec<String> = alternatives.iter().map(|s| format!("{{{s}}}")).collect();
            eprintln!(
                "learn: {example} -> {}",
                if alts.is_empty() {
                    format!("no promise ({})", why_not.as_deref().unwrap_or(""))
                } else {
                    alts.join(" or ")
                }
            );
        }
        self.requirements.insert(
            key,
            Requirement {
                syscall: name.to_string(),
                example,
                alternatives,
                count: 1,
                why_not,
            },
        );
        Reply::Continue
    }

    fn unallowed(&mut self, syscall: &str, example: String, why: &str) {
        let key = format!("{syscall}|!{example}");
        let r = self.requirements.entry(key).or_insert_with(|| Requirement {
            syscall: syscall.to_string(),
            example,
            alternatives: Vec::new(),
            count: 0,
            why_not: Some(why.to_string()),
        });
        r.count += 1;
    }

    fn record_paths(&mut self, tid: u32, name: &str, a: &[u64; 6], mem: &mut dyn MemReader) {
        let fdcwd = Base::Fd(libc::AT_FDCWD);
        let at = |v: u64| Base::Fd(v as u32 as i32);
        // (base, path pointer, operation)
        let mut ops: Vec<(Base, u64, Op)> = Vec::new();
        match name {
            "open" => ops.push((fdcwd, a[0], Op::Open { flags: a[1] })),
            "openat" => ops.push((at(a[0]), a[1], Op::Open { flags: a[2] })),
            "creat" => ops.push((
                fdcwd,
                a[0],
                Op::Open {
                    flags: consts::O_CREAT | consts::O_WRONLY | consts::O_TRUNC,
                },
            )),
            "execve" => ops.push((fdcwd, a[0], Op::Exec)),
            "execveat" => ops.push((at(a[0]), a[1], Op::Exec)),
            "mkdir" | "mknod" => ops.push((fdcwd, a[0], Op::Make)),
            "mkdirat" | "mknodat" => ops.push((at(a[0]), a[1], Op::Make)),
            "rmdir" | "unlink" => ops.push((fdcwd, a[0], Op::Remove)),
            "unlinkat" => ops.push((at(a[0]), a[1], Op::Remove)),
            "rename" | "link" => {
                ops.push((fdcwd, a[0], Op::Remove));
                ops.push((fdcwd, a[1], Op::Make));
            }
            "renameat" | "renameat2" | "linkat" => {
                ops.push((at(a[0]), a[1], Op::Remove));
                ops.push((at(a[2]), a[3], Op::Make));
            }
            "symlink" => ops.push((fdcwd, a[1], Op::Make)),
            "symlinkat" => ops.push((at(a[1]), a[2], Op::Make)),
            "truncate" => ops.push((fdcwd, a[0], Op::Truncate)),
            "bind" => {
                // A pathname unix socket: MAKE_SOCK in its directory.
                let len = (a[2] as usize).min(110);
                let mut buf = [0u8; 110];
                let n = mem.read(tid, a[1], &mut buf[..len]);
                if n > 2
                    && u16::from_ne_bytes([buf[0], buf[1]]) == libc::AF_UNIX as u16
                    && buf[2] != 0
                {
                    let end = buf[2..n].iter().position(|b| *b == 0).map_or(n, |p| p + 2);
                    let p = buf[2..end].to_vec();
                    let tgid = self.tgid(tid);
                    if let Some(acc) = paths::resolve_access(fdcwd, &p, tid, tgid, Op::Make) {
                        self.push_access(acc);
                    }
                }
                return;
            }
            _ => return,
        }
        let tgid = self.tgid(tid);
        for (base, ptr, op) in ops {
            let Some(raw) = read_cstr(mem, tid, ptr) else {
                continue;
            };
            if raw.is_empty() {
                continue; // AT_EMPTY_PATH on an fd: nothing to unveil by name.
            }
            for acc in paths::resolve_access(base, &raw, tid, tgid, op).into_iter() {
                self.push_access(acc);
            }
        }
    }

    fn push_access(&mut self, acc: Vec<paths::Access>) {
        for a in acc {
            if self.verbose > 1 {
                eprintln!("learn: path {} {:?}", a.path.display(), a.perm);
            }
            self.accesses.add(a);
        }
    }
}

enum UnixAddr {
    Path(Vec<u8>),
    Abstract,
}

/// The unix socket address at `addr` (length `len`), if it is one.
fn unix_path(mem: &mut dyn MemReader, tid: u32, addr: u64, len: u64) -> Option<UnixAddr> {
    let len = (len as usize).min(110);
    let mut buf = [0u8; 110];
    let n = mem.read(tid, addr, &mut buf[..len]);
    if n < 2 || u16::from_ne_bytes([buf[0], buf[1]]) != libc::AF_UNIX as u16 {
        return None;
    }
    if n == 2 || buf[2] == 0 {
        return Some(UnixAddr::Abstract);
    }
    let end = buf[2..n].iter().position(|b| *b == 0).map_or(n, |p| p + 2);
    Some(UnixAddr::Path(buf[2..end].to_vec()))
}

/// Reads a NUL-terminated string of at most PATH_MAX bytes, page by page (a string can end
/// just before an unmapped page).
fn read_cstr(mem: &mut dyn MemReader, pid: u32, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let chunk = (PAGE - at % PAGE) as usize;
        let mut buf = vec![0u8; chunk];
        let n = mem.read(pid, at, &mut buf);
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    None
}

fn family(v: u64) -> String {
    match v as u32 as u64 {
        consts::AF_UNIX => "AF_UNIX".into(),
        consts::AF_INET => "AF_INET".into(),
        consts::AF_INET6 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        other => format!("family {other}"),
    }
}

fn sock_type(v: u64) -> String {
    let t = (v as u32 as u64) & !consts::SOCK_FLAGS;
    match t {
        1 => "SOCK_STREAM".into(),
        2 => "SOCK_DGRAM".into(),
        3 => "SOCK_RAW".into(),
        5 => "SOCK_SEQPACKET".into(),
        other => format!("type {other}"),
    }
}

fn open_flags(flags: u64) -> String {
    let f = flags as u32 as u64;
    let mut s = match f & consts::O_ACCMODE {
        consts::O_RDONLY => "O_RDONLY".to_string(),
        consts::O_WRONLY => "O_WRONLY".to_string(),
        consts::O_RDWR => "O_RDWR".to_string(),
        _ => "O_ACCMODE".to_string(),
    };
    for (bit, n) in [
        (consts::O_CREAT, "O_CREAT"),
        (consts::O_TRUNC, "O_TRUNC"),
        (consts::O_TMPFILE_BIT, "O_TMPFILE"),
    ] {
        if f & bit != 0 {
            s.push('|');
            s.push_str(n);
        }
    }
    s
}

fn target(v: u64, root: u32) -> String {
    let p = v as u32;
    if p == root {
        "self".into()
    } else if p == 0 {
        "0 (process group)".into()
    } else if p == u32::MAX {
        "-1 (every process)".into()
    } else {
        "another process".into()
    }
}

/// `name(args the table checks)`, e.g. `socket(AF_INET, SOCK_STREAM, 0)`.
pub fn describe_call(name: &str, a: &[u64; 6], root: u32) -> String {
    let args = match name {
        "socket" => format!("{}, {}, {}", family(a[0]), sock_type(a[1]), a[2] as u32),
        "open" => open_flags(a[1]),
        "openat" => open_flags(a[2]),
        "ioctl" => format!("fd, {:#x}", a[1] as u32),
        "fcntl" => format!("fd, cmd {}", a[1] as u32),
        "prctl" => format!("option {}", a[0] as u32),
        "clone" => format!("flags {:#x}", a[0] as u32),
        "mmap" | "mprotect" => format!(
            "prot {}",
            if a[2] & consts::PROT_EXEC != 0 {
                "with PROT_EXEC"
            } else {
                "without PROT_EXEC"
            }
        ),
        "setsockopt" | "getsockopt" => format!("fd, level {}, name {}", a[1] as u32, a[2] as u32),
        "kill" | "tkill" | "tgkill" => format!("{}, sig", target(a[0], root)),
        "prlimit64" => format!(
            "{}, {}",
            if a[0] == 0 {
                "self".into()
            } else {
                target(a[0], root)
            },
            if a[2] == 0 { "get" } else { "set" }
        ),
        "newfstatat" | "statx" => {
            let flags = if name == "statx" { a[2] } else { a[3] };
            if flags & consts::AT_EMPTY_PATH != 0 {
                "fd, AT_EMPTY_PATH".into()
            } else {
                "path".into()
            }
        }
        "sendto" => (if a[4] == 0 {
            "connected"
        } else {
            "to an address"
        })
        .into(),
        "chmod" | "fchmod" | "fchmodat" => {
            let mode = if name == "fchmodat" { a[2] } else { a[1] };
            format!("mode {:o}", mode as u32)
        }
        _ => String::new(),
    };
    format!("{name}({args})")
}

/// Why no promise allows `name(args)`.
fn why_not(name: &str, a: &[u64; 6], root: u32) -> String {
    let mentioned = promises::all_syscalls().contains(&name);
    if !mentioned {
        return format!(
            "{name} is in no promise: pledge never allows it (it could escape or weaken the sandbox)"
        );
    }
    match name {
        "clone" if a[0] & consts::CLONE_FORBIDDEN != 0 => {
            "creating namespaces or ptrace-style clones is never allowed".into()
        }
        "kill" | "tkill" | "tgkill" => format!(
            "signalling {} is not allowed (only the process itself, or with proc any pid but -1)",
            target(a[0], root)
        ),
        "open" | "openat" | "creat" | "chmod" | "fchmod" | "fchmodat" => {
            "setuid/setgid/sticky mode bits are never allowed".into()
        }
        "socket" => format!(
            "{} sockets of {} are not in any promise (only TCP/UDP/ICMP-ping inet and unix stream/dgram)",
            family(a[0]),
            sock_type(a[1])
        ),
        "ioctl" => format!("ioctl {:#x} is in no promise's list", a[1] as u32),
        "prctl" => format!("prctl option {} is not in stdio's list", a[0] as u32),
        "fcntl" => format!("fcntl cmd {} is in no promise's list", a[1] as u32),
        "setsockopt" | "getsockopt" => format!(
            "socket option (level {}, name {}) is in no promise's list",
            a[1] as u32, a[2] as u32
        ),
        _ => "its arguments fail every promise's check".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pledge_core::Promise;

    struct NoMem;
    impl MemReader for NoMem {
        fn read(&mut self, _: u32, _: u64, _: &mut [u8]) -> usize {
            0
        }
    }

    fn nr(name: &str) -> i32 {
        crate::sandbox::syscall_number(FilterArch::native(), name).map_or(-1, |n| n as i32)
    }

    #[test]
    fn dedupes_and_keeps_alternatives() {
        let mut r = Recorder::new();
        r.set_root(100, 0);
        let aa = FilterArch::native().audit_arch();
        for _ in 0..3 {
            assert_eq!(
                r.on_call(100, nr("read"), aa, [0; 6], &mut NoMem),
                Reply::Continue
            );
        }
        r.on_call(100, nr("socket"), aa, [2, 1, 0, 0, 0, 0], &mut NoMem);
        let reqs: Vec<&Requirement> = r.requirements().collect();
        let read = reqs
            .iter()
            .find(|q| q.syscall == "read")
            .expect("read recorded");
        assert_eq!(read.count, 3);
        let sock = reqs.iter().find(|q| q.syscall == "socket").expect("socket");
        assert_eq!(sock.example, "socket(AF_INET, SOCK_STREAM, 0)");
        assert!(sock
            .alternatives
            .contains(&[Promise::Inet].into_iter().collect()));
    }

    #[test]
    fn launch_execve_is_free_and_enosys_mirrors_enforcement() {
        let mut r = Recorder::new();
        r.set_root(100, 0);
        let aa = FilterArch::native().audit_arch();
        r.on_call(100, nr("execve"), aa, [0; 6], &mut NoMem);
        assert!(r.requirements().next().is_none());
        r.on_call(100, nr("execve"), aa, [0; 6], &mut NoMem);
        assert!(r.requirements().any(|q| q.syscall == "execve"));
        assert_eq!(
            r.on_call(100, nr("clone3"), aa, [0; 6], &mut NoMem),
            Reply::Errno(libc::ENOSYS)
        );
        r.on_call(100, nr("ptrace"), aa, [0; 6], &mut NoMem);
        let p = r
            .requirements()
            .find(|q| q.syscall == "ptrace")
            .expect("ptrace");
        assert!(p.alternatives.is_empty());
        assert!(p.why_not.as_deref().is_some_and(|w| w.contains("never")));
    }
}
