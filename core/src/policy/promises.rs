//! The promise → syscall table, with pledge's argument checks, as data.
//!
//! One [`Rule`] says "this promise allows this syscall when its arguments pass this check".
//! Syscalls are named, never numbered: the backend maps names to numbers per architecture and
//! skips names an architecture lacks (aarch64 has no `open`, `stat`, `fork`, ...).
//! A syscall allowed by several promises is allowed when any of their checks passes, except for
//! the open family ([`ArgCheck::Open`]): an open is allowed only when *every* access it asks for
//! (read, write, create) is granted by some promise of the set, as on OpenBSD.
//!
//! Derived from cosmopolitan's `kPledge*` tables (pledge.md a.3), with the holes of a.6 closed:
//! - cpath and wpath do not grant reads (open access modes are checked per access);
//! - stdio's `tkill` is pinned to the process itself like `kill`/`tgkill`;
//! - proc's `clone` may not create any namespace; proc's `kill` may not target `-1` (and the
//!   backend adds Landlock's signal scope, so no signal leaves the sandbox);
//! - dns does not grant `recvmsg`/`recvmmsg`/`sendmsg`, so no descriptor can be received
//!   through it (it keeps `sendmmsg`, which glibc's resolver cannot do without);
//! - socket options are allowed as (level, name) pairs, not as two independent lists;
//! - pid-taking calls (`prlimit64`, `setpriority`, ...) are limited to the caller itself.
//!
//! [`promises_allowing`] answers the reverse question for learn mode: which promise sets would
//! allow one observed call. It evaluates the same data, so the seccomp compiler, learn mode and
//! the README can never disagree.

use crate::sandbox::{Promise, PromiseSet};

/// Linux constants the checks use. Identical on x86_64 and aarch64 (asm-generic values).
pub mod consts {
    /// `O_ACCMODE`.
    pub const O_ACCMODE: u64 = 0o3;
    /// `O_RDONLY`.
    pub const O_RDONLY: u64 = 0;
    /// `O_WRONLY`.
    pub const O_WRONLY: u64 = 0o1;
    /// `O_RDWR`.
    pub const O_RDWR: u64 = 0o2;
    /// `O_CREAT`.
    pub const O_CREAT: u64 = 0o100;
    /// `O_TRUNC`.
    pub const O_TRUNC: u64 = 0o1000;
    /// `__O_TMPFILE` (O_TMPFILE without O_DIRECTORY).
    pub const O_TMPFILE_BIT: u64 = 0o20000000;
    /// setuid, setgid and sticky mode bits.
    pub const MODE_SPECIAL: u64 = 0o7000;
    /// `PROT_EXEC`.
    pub const PROT_EXEC: u64 = 0x4;
    /// `AT_EMPTY_PATH`.
    pub const AT_EMPTY_PATH: u64 = 0x1000;
    /// `SOCK_NONBLOCK | SOCK_CLOEXEC`, masked off a socket type.
    pub const SOCK_FLAGS: u64 = 0o4000 | 0o2000000;
    /// The flags a thread-creating `clone` must carry: VM, FS, FILES, SIGHAND, THREAD.
    pub const CLONE_THREAD_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000;
    /// CLONE_PTRACE | CLONE_UNTRACED | every CLONE_NEW* flag legacy clone accepts
    /// (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET).
    pub const CLONE_FORBIDDEN: u64 = 0x2000 | 0x0080_0000 | 0x7E02_0000;
    /// `AF_UNIX`.
    pub const AF_UNIX: u64 = 1;
    /// `AF_INET`.
    pub const AF_INET: u64 = 2;
    /// `AF_INET6`.
    pub const AF_INET6: u64 = 10;
    /// `SOCK_STREAM`.
    pub const SOCK_STREAM: u64 = 1;
    /// `SOCK_DGRAM`.
    pub const SOCK_DGRAM: u64 = 2;
    /// `SOL_SOCKET`.
    pub const SOL_SOCKET: u64 = 1;
    /// `IPPROTO_IP`.
    pub const SOL_IP: u64 = 0;
    /// `IPPROTO_TCP`.
    pub const SOL_TCP: u64 = 6;
    /// `IPPROTO_IPV6`.
    pub const SOL_IPV6: u64 = 41;
}

use consts::*;

/// Which access of an open a promise grants ([`ArgCheck::Open`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpenGrant {
    /// Open for reading (O_RDONLY, the read half of O_RDWR).
    Read,
    /// Open for writing (O_WRONLY, the write half of O_RDWR, O_TRUNC).
    Write,
    /// Create (O_CREAT, O_TMPFILE), only without setuid/setgid/sticky bits in the mode.
    Create,
}

/// Where an open-family call keeps its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenFlags {
    /// In this argument.
    Arg(u8),
    /// Fixed by the syscall (`creat` is `O_CREAT|O_WRONLY|O_TRUNC`).
    Fixed(u64),
}

/// One condition on one argument. Values are compared on the low 32 bits (the kernel reads
/// `int`/`unsigned int` arguments that way), except [`Cond::Null`], which checks all 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `arg == value`.
    Eq { arg: u8, value: u64 },
    /// `arg != value`.
    Ne { arg: u8, value: u64 },
    /// `arg & mask == value`.
    Masked { arg: u8, mask: u64, value: u64 },
    /// The pointer argument is NULL (both halves).
    Null { arg: u8 },
    /// The argument is the sandboxed process's own pid (known when the filter is built, in
    /// the process that then execs).
    SelfPid { arg: u8 },
}

/// The argument check of a [`Rule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgCheck {
    /// Any arguments.
    Any,
    /// Every condition holds.
    All(&'static [Cond]),
    /// The 32-bit argument is one of `values`.
    OneOf { arg: u8, values: &'static [u64] },
    /// The argument is 0 (meaning "the caller") or the caller's own pid.
    SelfOrZero { arg: u8 },
    /// Open family: the promise grants this access; flags and mode are where the syscall keeps
    /// them. Combined across the set (see the module doc).
    Open {
        grant: OpenGrant,
        flags: OpenFlags,
        mode_arg: u8,
    },
    /// `socket(family, type, protocol)`: family in `families`, type (without NONBLOCK/CLOEXEC)
    /// and protocol one of the `types` pairs.
    Socket {
        families: &'static [u64],
        types: &'static [(u64, &'static [u64])],
    },
    /// `setsockopt`/`getsockopt(fd, level, name, ...)`: `(level, name)` is one of `pairs`.
    SockOpt { pairs: &'static [(u64, u64)] },
}

/// "This promise allows `syscall` when `args` passes."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Syscall name as in `<asm/unistd.h>` without `__NR_`.
    pub syscall: &'static str,
    /// The argument check.
    pub args: ArgCheck,
}

const fn any(syscall: &'static str) -> Rule {
    Rule {
        syscall,
        args: ArgCheck::Any,
    }
}

const fn all(syscall: &'static str, conds: &'static [Cond]) -> Rule {
    Rule {
        syscall,
        args: ArgCheck::All(conds),
    }
}

const fn one_of(syscall: &'static str, arg: u8, values: &'static [u64]) -> Rule {
    Rule {
        syscall,
        args: ArgCheck::OneOf { arg, values },
    }
}

const fn self_or_zero(syscall: &'static str, arg: u8) -> Rule {
    Rule {
        syscall,
        args: ArgCheck::SelfOrZero { arg },
    }
}

/// `open`, `openat` and (x86_64) `creat` granting `grant`.
macro_rules! open_rules {
    ($grant:expr) => {
        [
            Rule {
                syscall: "open",
                args: ArgCheck::Open {
                    grant: $grant,
                    flags: OpenFlags::Arg(1),
                    mode_arg: 2,
                },
            },
            Rule {
                syscall: "openat",
                args: ArgCheck::Open {
                    grant: $grant,
                    flags: OpenFlags::Arg(2),
                    mode_arg: 3,
                },
            },
            Rule {
                syscall: "creat",
                args: ArgCheck::Open {
                    grant: $grant,
                    flags: OpenFlags::Fixed(O_CREAT | O_WRONLY | O_TRUNC),
                    mode_arg: 1,
                },
            },
        ]
    };
}

/// chmod family without setuid/setgid/sticky bits (wpath, fattr).
const CHMOD_RULES: [Rule; 3] = [
    all(
        "chmod",
        &[Cond::Masked {
            arg: 1,
            mask: MODE_SPECIAL,
            value: 0,
        }],
    ),
    all(
        "fchmod",
        &[Cond::Masked {
            arg: 1,
            mask: MODE_SPECIAL,
            value: 0,
        }],
    ),
    all(
        "fchmodat",
        &[Cond::Masked {
            arg: 2,
            mask: MODE_SPECIAL,
            value: 0,
        }],
    ),
];

/// fcntl commands stdio allows: F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC.
pub const FCNTL_STDIO: &[u64] = &[0, 1, 2, 3, 4, 1030];
/// fcntl commands flock allows: F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK/SETLK/SETLKW.
pub const FCNTL_LOCK: &[u64] = &[5, 6, 7, 36, 37, 38];
/// ioctls stdio allows: FIONREAD, FIONBIO, FIOCLEX, FIONCLEX.
pub const IOCTL_STDIO: &[u64] = &[0x541b, 0x5421, 0x5451, 0x5450];
/// ioctls tty allows: TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSPGRP, TIOCGPGRP,
/// TIOCSWINSZ, TCFLSH, TCXONC, TCSBRK, TIOCSBRK. Never TIOCSTI (0x5412) or TIOCLINUX.
pub const IOCTL_TTY: &[u64] = &[
    0x5401, 0x5402, 0x5403, 0x5404, 0x5413, 0x5410, 0x540f, 0x5414, 0x540b, 0x540a, 0x5409, 0x5427,
];
/// ioctls the socket promises allow: SIOCATMARK.
pub const IOCTL_SOCKET: &[u64] = &[0x8905];
/// prctl options stdio allows: PR_SET_NAME, PR_GET_NAME, PR_GET_SECCOMP, PR_SET_SECCOMP,
/// PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_VMA.
pub const PRCTL_STDIO: &[u64] = &[15, 16, 21, 22, 23, 24, 38, 39, 0x5356_4d41];

/// `setsockopt` (level, name) pairs the socket promises allow.
pub const SETSOCKOPT_PAIRS: &[(u64, u64)] = &[
    (SOL_SOCKET, 2),  // SO_REUSEADDR
    (SOL_SOCKET, 5),  // SO_DONTROUTE
    (SOL_SOCKET, 6),  // SO_BROADCAST
    (SOL_SOCKET, 7),  // SO_SNDBUF
    (SOL_SOCKET, 8),  // SO_RCVBUF
    (SOL_SOCKET, 9),  // SO_KEEPALIVE
    (SOL_SOCKET, 13), // SO_LINGER
    (SOL_SOCKET, 15), // SO_REUSEPORT
    (SOL_SOCKET, 16), // SO_PASSCRED
    (SOL_SOCKET, 20), // SO_RCVTIMEO_OLD
    (SOL_SOCKET, 21), // SO_SNDTIMEO_OLD
    (SOL_SOCKET, 66), // SO_RCVTIMEO_NEW
    (SOL_SOCKET, 67), // SO_SNDTIMEO_NEW
    (SOL_TCP, 1),     // TCP_NODELAY
    (SOL_TCP, 3),     // TCP_CORK
    (SOL_TCP, 4),     // TCP_KEEPIDLE
    (SOL_TCP, 5),     // TCP_KEEPINTVL
    (SOL_TCP, 6),     // TCP_KEEPCNT
    (SOL_TCP, 12),    // TCP_QUICKACK
    (SOL_TCP, 18),    // TCP_USER_TIMEOUT
    (SOL_TCP, 23),    // TCP_FASTOPEN
    (SOL_TCP, 30),    // TCP_FASTOPEN_CONNECT
    (SOL_IP, 1),      // IP_TOS
    (SOL_IP, 2),      // IP_TTL
    (SOL_IP, 10),     // IP_MTU_DISCOVER
    (SOL_IP, 11),     // IP_RECVERR
    (SOL_IPV6, 16),   // IPV6_UNICAST_HOPS
    (SOL_IPV6, 25),   // IPV6_RECVERR
    (SOL_IPV6, 26),   // IPV6_V6ONLY
    (SOL_IPV6, 67),   // IPV6_TCLASS
];

/// `getsockopt` (level, name) pairs the socket promises allow.
pub const GETSOCKOPT_PAIRS: &[(u64, u64)] = &[
    (SOL_SOCKET, 2),  // SO_REUSEADDR
    (SOL_SOCKET, 3),  // SO_TYPE
    (SOL_SOCKET, 4),  // SO_ERROR
    (SOL_SOCKET, 7),  // SO_SNDBUF
    (SOL_SOCKET, 8),  // SO_RCVBUF
    (SOL_SOCKET, 9),  // SO_KEEPALIVE
    (SOL_SOCKET, 15), // SO_REUSEPORT
    (SOL_SOCKET, 17), // SO_PEERCRED
    (SOL_SOCKET, 20), // SO_RCVTIMEO_OLD
    (SOL_SOCKET, 21), // SO_SNDTIMEO_OLD
    (SOL_SOCKET, 30), // SO_ACCEPTCONN
    (SOL_SOCKET, 38), // SO_PROTOCOL
    (SOL_SOCKET, 39), // SO_DOMAIN
    (SOL_TCP, 1),     // TCP_NODELAY
    (SOL_TCP, 2),     // TCP_MAXSEG
    (SOL_TCP, 11),    // TCP_INFO
    (SOL_IP, 1),      // IP_TOS
    (SOL_IPV6, 26),   // IPV6_V6ONLY
];

const INET_FAMILIES: &[u64] = &[AF_INET, AF_INET6];
/// TCP (0 or IPPROTO_TCP) and UDP (0, IPPROTO_UDP, or IPPROTO_ICMP for ping sockets).
const INET_TYPES: &[(u64, &[u64])] = &[(SOCK_STREAM, &[0, 6]), (SOCK_DGRAM, &[0, 17, 1])];
const ANET_TYPES: &[(u64, &[u64])] = &[(SOCK_STREAM, &[0, 6])];
const UNIX_TYPES: &[(u64, &[u64])] = &[(SOCK_STREAM, &[0]), (SOCK_DGRAM, &[0])];

/// Clone creating a thread: the thread flags, and no namespace, ptrace or untraced flag.
const CLONE_THREAD: Rule = all(
    "clone",
    &[
        Cond::Masked {
            arg: 0,
            mask: CLONE_THREAD_FLAGS,
            value: CLONE_THREAD_FLAGS,
        },
        Cond::Masked {
            arg: 0,
            mask: CLONE_FORBIDDEN,
            value: 0,
        },
    ],
);

/// Always allowed, whatever the promises: exiting, and (x86_64) TLS setup musl needs.
pub const ALWAYS: &[Rule] = &[any("exit"), any("exit_group"), any("arch_prctl")];

const STDIO: &[Rule] = &[
    any("rt_sigreturn"),
    any("restart_syscall"),
    any("sched_yield"),
    any("sched_getaffinity"),
    any("sched_setaffinity"),
    any("clock_getres"),
    any("clock_gettime"),
    any("clock_nanosleep"),
    any("close_range"),
    any("close"),
    any("write"),
    any("writev"),
    any("pwrite64"),
    any("pwritev"),
    any("pwritev2"),
    any("read"),
    any("readv"),
    any("pread64"),
    any("preadv"),
    any("preadv2"),
    any("dup"),
    any("dup2"),
    any("dup3"),
    any("fchdir"),
    any("fstat"),
    // fstat as modern libcs spell it: newfstatat/statx on an fd with AT_EMPTY_PATH.
    all(
        "newfstatat",
        &[Cond::Masked {
            arg: 3,
            mask: AT_EMPTY_PATH,
            value: AT_EMPTY_PATH,
        }],
    ),
    all(
        "statx",
        &[Cond::Masked {
            arg: 2,
            mask: AT_EMPTY_PATH,
            value: AT_EMPTY_PATH,
        }],
    ),
    any("fsync"),
    any("fdatasync"),
    any("ftruncate"),
    any("sysinfo"),
    any("getrandom"),
    any("getgroups"),
    any("getpgid"),
    any("getpgrp"),
    any("getpid"),
    any("gettid"),
    any("getuid"),
    any("getgid"),
    any("getsid"),
    any("getppid"),
    any("geteuid"),
    any("getegid"),
    any("getrlimit"),
    any("getresuid"),
    any("getresgid"),
    any("getitimer"),
    any("setitimer"),
    any("timerfd_create"),
    any("timerfd_settime"),
    any("timerfd_gettime"),
    any("copy_file_range"),
    any("gettimeofday"),
    any("sendfile"),
    any("vmsplice"),
    any("splice"),
    any("tee"),
    any("lseek"),
    any("brk"),
    any("msync"),
    any("mlock"),
    any("mlock2"),
    any("munlock"),
    any("mremap"),
    any("munmap"),
    any("mincore"),
    any("madvise"),
    any("fadvise64"),
    self_or_zero("migrate_pages", 0),
    any("sync_file_range"),
    any("set_tid_address"),
    any("membarrier"),
    any("nanosleep"),
    any("pipe"),
    any("pipe2"),
    any("poll"),
    any("ppoll"),
    any("select"),
    any("pselect6"),
    any("epoll_create"),
    any("epoll_create1"),
    any("epoll_ctl"),
    any("epoll_wait"),
    any("epoll_pwait"),
    any("epoll_pwait2"),
    any("recvfrom"),
    any("alarm"),
    any("pause"),
    any("shutdown"),
    any("eventfd"),
    any("eventfd2"),
    any("signalfd"),
    any("signalfd4"),
    any("rt_sigaction"),
    any("sigaltstack"),
    any("rt_sigprocmask"),
    any("rt_sigsuspend"),
    any("rt_sigpending"),
    any("rt_sigtimedwait"),
    any("socketpair"),
    any("getrusage"),
    any("times"),
    any("umask"),
    any("wait4"),
    any("uname"),
    any("futex"),
    any("set_robust_list"),
    any("get_robust_list"),
    any("getcpu"),
    any("rseq"),
    one_of("fcntl", 1, FCNTL_STDIO),
    one_of("ioctl", 1, IOCTL_STDIO),
    all(
        "mmap",
        &[Cond::Masked {
            arg: 2,
            mask: PROT_EXEC,
            value: 0,
        }],
    ),
    all(
        "mprotect",
        &[Cond::Masked {
            arg: 2,
            mask: PROT_EXEC,
            value: 0,
        }],
    ),
    all("sendto", &[Cond::Null { arg: 4 }]),
    all("kill", &[Cond::SelfPid { arg: 0 }]),
    all("tkill", &[Cond::SelfPid { arg: 0 }]),
    all("tgkill", &[Cond::SelfPid { arg: 0 }]),
    one_of("prctl", 0, PRCTL_STDIO),
    CLONE_THREAD,
    all(
        "prlimit64",
        &[Cond::Null { arg: 2 }, Cond::Eq { arg: 0, value: 0 }],
    ),
    all(
        "prlimit64",
        &[Cond::Null { arg: 2 }, Cond::SelfPid { arg: 0 }],
    ),
];

const RPATH: &[Rule] = &{
    let o = open_rules!(OpenGrant::Read);
    [
        o[0],
        o[1],
        any("chdir"),
        any("getcwd"),
        any("stat"),
        any("lstat"),
        any("fstat"),
        any("newfstatat"),
        any("statx"),
        any("access"),
        any("faccessat"),
        any("faccessat2"),
        any("readlink"),
        any("readlinkat"),
        any("statfs"),
        any("fstatfs"),
        any("getdents"),
        any("getdents64"),
    ]
};

const WPATH: &[Rule] = &{
    let o = open_rules!(OpenGrant::Write);
    [
        o[0],
        o[1],
        o[2],
        any("getcwd"),
        any("stat"),
        any("fstat"),
        any("lstat"),
        any("newfstatat"),
        any("statx"),
        any("access"),
        any("truncate"),
        any("faccessat"),
        any("faccessat2"),
        any("readlinkat"),
        CHMOD_RULES[0],
        CHMOD_RULES[1],
        CHMOD_RULES[2],
    ]
};

const CPATH: &[Rule] = &{
    let o = open_rules!(OpenGrant::Create);
    [
        o[0],
        o[1],
        o[2],
        any("rename"),
        any("renameat"),
        any("renameat2"),
        any("link"),
        any("linkat"),
        any("symlink"),
        any("symlinkat"),
        any("rmdir"),
        any("unlink"),
        any("unlinkat"),
        any("mkdir"),
        any("mkdirat"),
    ]
};

const DPATH: &[Rule] = &[any("mknod"), any("mknodat")];

const FLOCK: &[Rule] = &[any("flock"), one_of("fcntl", 1, FCNTL_LOCK)];

const FATTR: &[Rule] = &[
    any("utime"),
    any("utimes"),
    any("futimesat"),
    any("utimensat"),
    CHMOD_RULES[0],
    CHMOD_RULES[1],
    CHMOD_RULES[2],
];

const CHOWN: &[Rule] = &[any("chown"), any("fchown"), any("lchown"), any("fchownat")];

const SOCKOPTS: [Rule; 2] = [
    Rule {
        syscall: "setsockopt",
        args: ArgCheck::SockOpt {
            pairs: SETSOCKOPT_PAIRS,
        },
    },
    Rule {
        syscall: "getsockopt",
        args: ArgCheck::SockOpt {
            pairs: GETSOCKOPT_PAIRS,
        },
    },
];

const INET: &[Rule] = &[
    Rule {
        syscall: "socket",
        args: ArgCheck::Socket {
            families: INET_FAMILIES,
            types: INET_TYPES,
        },
    },
    any("listen"),
    any("bind"),
    any("sendto"),
    any("connect"),
    any("accept"),
    any("accept4"),
    any("getpeername"),
    any("getsockname"),
    one_of("ioctl", 1, IOCTL_SOCKET),
    SOCKOPTS[0],
    SOCKOPTS[1],
];

const ANET: &[Rule] = &[
    Rule {
        syscall: "socket",
        args: ArgCheck::Socket {
            families: INET_FAMILIES,
            types: ANET_TYPES,
        },
    },
    any("listen"),
    any("bind"),
    any("sendto"),
    any("accept"),
    any("accept4"),
    any("getpeername"),
    any("getsockname"),
    one_of("ioctl", 1, IOCTL_SOCKET),
    SOCKOPTS[0],
    SOCKOPTS[1],
];

const UNIX: &[Rule] = &[
    Rule {
        syscall: "socket",
        args: ArgCheck::Socket {
            families: &[AF_UNIX],
            types: UNIX_TYPES,
        },
    },
    any("listen"),
    any("bind"),
    any("connect"),
    any("sendto"),
    any("accept"),
    any("accept4"),
    any("getpeername"),
    any("getsockname"),
    SOCKOPTS[0],
    SOCKOPTS[1],
];

const DNS: &[Rule] = &{
    let o = open_rules!(OpenGrant::Read);
    [
        Rule {
            syscall: "socket",
            args: ArgCheck::Socket {
                families: INET_FAMILIES,
                types: INET_TYPES,
            },
        },
        any("bind"),
        any("connect"),
        any("sendto"),
        // glibc's resolver sends the A and AAAA queries with one sendmmsg and does not fall
        // back when it fails (measured). Receiving stays recvfrom: no recvmsg/recvmmsg, so no
        // descriptor can ever come in through dns.
        any("sendmmsg"),
        any("recvfrom"),
        any("getsockname"),
        any("newfstatat"),
        any("read"),
        any("close"),
        o[1],
        SOCKOPTS[0],
    ]
};

const TTY: &[Rule] = &[one_of("ioctl", 1, IOCTL_TTY)];

const RECVFD: &[Rule] = &[any("recvmsg"), any("recvmmsg")];

const SENDFD: &[Rule] = &[any("sendmsg"), any("sendmmsg")];

const PROC: &[Rule] = &[
    any("fork"),
    any("vfork"),
    all(
        "clone",
        &[Cond::Masked {
            arg: 0,
            mask: CLONE_FORBIDDEN,
            value: 0,
        }],
    ),
    // Never "every process I may signal"; Landlock's signal scope bounds the rest.
    all(
        "kill",
        &[Cond::Ne {
            arg: 0,
            value: 0xffff_ffff,
        }],
    ),
    any("tgkill"),
    any("waitid"),
    any("setsid"),
    any("setpgid"),
    self_or_zero("prlimit64", 0),
    any("setrlimit"),
    any("getpriority"),
    all("setpriority", &[Cond::Eq { arg: 1, value: 0 }]),
    any("ioprio_get"),
    all("ioprio_set", &[Cond::Eq { arg: 1, value: 0 }]),
    any("sched_getscheduler"),
    all("sched_setscheduler", &[Cond::Eq { arg: 0, value: 0 }]),
    any("sched_get_priority_min"),
    any("sched_get_priority_max"),
    any("sched_getparam"),
    all("sched_setparam", &[Cond::Eq { arg: 0, value: 0 }]),
];

const EXEC: &[Rule] = &[any("execve"), any("execveat")];

const ID: &[Rule] = &[
    any("setuid"),
    any("setreuid"),
    any("setresuid"),
    any("setgid"),
    any("setregid"),
    any("setresgid"),
    any("setgroups"),
    any("setfsuid"),
    any("setfsgid"),
    self_or_zero("prlimit64", 0),
    any("setrlimit"),
    any("getpriority"),
    all("setpriority", &[Cond::Eq { arg: 1, value: 0 }]),
];

const THREAD: &[Rule] = &[
    CLONE_THREAD,
    any("futex"),
    any("set_robust_list"),
    any("get_robust_list"),
    any("set_tid_address"),
    any("sched_yield"),
    any("membarrier"),
    any("rseq"),
    all(
        "mmap",
        &[Cond::Masked {
            arg: 2,
            mask: PROT_EXEC,
            value: 0,
        }],
    ),
    all(
        "mprotect",
        &[Cond::Masked {
            arg: 2,
            mask: PROT_EXEC,
            value: 0,
        }],
    ),
    any("munmap"),
    all("tgkill", &[Cond::SelfPid { arg: 0 }]),
];

const PROT_EXEC_RULES: &[Rule] = &[any("mmap"), any("mprotect")];

/// vminfo's effect is its default unveils (/proc files); the syscall is a placeholder.
const VMINFO: &[Rule] = &[any("sched_yield")];

/// tmppath's effect is its default unveil (the task's tmp dir); plus removing files there.
const TMPPATH: &[Rule] = &[any("lstat"), any("unlink"), any("unlinkat")];

const SETTIME: &[Rule] = &[
    any("settimeofday"),
    any("clock_settime"),
    any("clock_adjtime"),
    any("adjtimex"),
];

const UNVEIL: &[Rule] = &[
    any("landlock_create_ruleset"),
    any("landlock_add_rule"),
    any("landlock_restrict_self"),
];

/// The rules of one promise.
pub fn rules(promise: Promise) -> &'static [Rule] {
    match promise {
        Promise::Stdio => STDIO,
        Promise::Rpath => RPATH,
        Promise::Wpath => WPATH,
        Promise::Cpath => CPATH,
        Promise::Dpath => DPATH,
        Promise::Flock => FLOCK,
        Promise::Fattr => FATTR,
        Promise::Chown => CHOWN,
        Promise::Inet => INET,
        Promise::Anet => ANET,
        Promise::Unix => UNIX,
        Promise::Dns => DNS,
        Promise::Tty => TTY,
        Promise::Recvfd => RECVFD,
        Promise::Sendfd => SENDFD,
        Promise::Proc => PROC,
        Promise::Exec => EXEC,
        Promise::Id => ID,
        Promise::Thread => THREAD,
        Promise::ProtExec => PROT_EXEC_RULES,
        Promise::Vminfo => VMINFO,
        Promise::Tmppath => TMPPATH,
        Promise::Settime => SETTIME,
        Promise::Unveil => UNVEIL,
    }
}

/// One line of the README's promise table: the promise, its plain syscalls, and its
/// argument-checked syscalls with a short description of the check.
pub fn describe(promise: Promise) -> (Vec<&'static str>, Vec<String>) {
    let mut plain = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    for r in rules(promise) {
        match r.args {
            ArgCheck::Any => {
                if !plain.contains(&r.syscall) {
                    plain.push(r.syscall);
                }
            }
            other => {
                let d = format!("{} ({})", r.syscall, describe_check(&other));
                if !checked.contains(&d) {
                    checked.push(d);
                }
            }
        }
    }
    (plain, checked)
}

fn describe_check(c: &ArgCheck) -> String {
    match c {
        ArgCheck::Any => "any".into(),
        ArgCheck::All(conds) => conds
            .iter()
            .map(describe_cond)
            .collect::<Vec<_>>()
            .join(" and "),
        ArgCheck::OneOf { arg, values } => format!(
            "arg{arg} in {{{}}}",
            values
                .iter()
                .map(|v| format!("{v:#x}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        ArgCheck::SelfOrZero { arg } => format!("arg{arg} is 0 or self"),
        ArgCheck::Open { grant, .. } => match grant {
            OpenGrant::Read => "read access".into(),
            OpenGrant::Write => "write access, O_TRUNC".into(),
            OpenGrant::Create => "O_CREAT/O_TMPFILE without mode 07000".into(),
        },
        ArgCheck::Socket { families, types } => format!(
            "family {families:?}, (type, protocol) in {}",
            types
                .iter()
                .map(|(t, p)| format!("({t}, {p:?})"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        ArgCheck::SockOpt { pairs } => format!("{} (level, name) pairs", pairs.len()),
    }
}

fn describe_cond(c: &Cond) -> String {
    match c {
        Cond::Eq { arg, value } => format!("arg{arg} == {value:#x}"),
        Cond::Ne { arg, value } => format!("arg{arg} != {value:#x}"),
        Cond::Masked { arg, mask, value } => format!("arg{arg} & {mask:#x} == {value:#x}"),
        Cond::Null { arg } => format!("arg{arg} == NULL"),
        Cond::SelfPid { arg } => format!("arg{arg} == own pid"),
    }
}

/// Context for evaluating checks: the sandboxed process's pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalContext {
    /// Own pid (in the task's pid namespace).
    pub pid: u32,
}

fn low32(v: u64) -> u64 {
    v & 0xffff_ffff
}

impl Cond {
    /// Whether the condition holds for `args`.
    pub fn holds(&self, args: &[u64; 6], ctx: EvalContext) -> bool {
        let a = |i: u8| args.get(usize::from(i)).copied().unwrap_or(0);
        match *self {
            Cond::Eq { arg, value } => low32(a(arg)) == low32(value),
            Cond::Ne { arg, value } => low32(a(arg)) != low32(value),
            Cond::Masked { arg, mask, value } => low32(a(arg)) & low32(mask) == low32(value),
            Cond::Null { arg } => a(arg) == 0,
            Cond::SelfPid { arg } => low32(a(arg)) == u64::from(ctx.pid),
        }
    }
}

/// The accesses an open with these flags and mode asks for, or `None` when no promise can
/// allow it (create with setuid/setgid/sticky bits).
pub fn open_needs(flags: u64, mode: u64) -> Option<Vec<OpenGrant>> {
    let flags = low32(flags);
    let mut needs = Vec::new();
    let acc = flags & O_ACCMODE;
    if acc == O_RDONLY || acc == O_RDWR || acc == O_ACCMODE {
        needs.push(OpenGrant::Read);
    }
    if acc != O_RDONLY || flags & O_TRUNC != 0 {
        needs.push(OpenGrant::Write);
    }
    if flags & (O_CREAT | O_TMPFILE_BIT) != 0 {
        if low32(mode) & MODE_SPECIAL != 0 {
            return None;
        }
        needs.push(OpenGrant::Create);
    }
    Some(needs)
}

impl ArgCheck {
    /// Whether a non-open check passes. [`ArgCheck::Open`] answers `false` here: it is only
    /// meaningful across a whole set (see [`open_needs`]).
    pub fn passes(&self, args: &[u64; 6], ctx: EvalContext) -> bool {
        let a = |i: u8| args.get(usize::from(i)).copied().unwrap_or(0);
        match self {
            ArgCheck::Any => true,
            ArgCheck::All(conds) => conds.iter().all(|c| c.holds(args, ctx)),
            ArgCheck::OneOf { arg, values } => values.contains(&low32(a(*arg))),
            ArgCheck::SelfOrZero { arg } => {
                let v = low32(a(*arg));
                v == 0 || v == u64::from(ctx.pid)
            }
            ArgCheck::Open { .. } => false,
            ArgCheck::Socket { families, types } => {
                let ty = low32(a(1)) & !SOCK_FLAGS;
                families.contains(&low32(a(0)))
                    && types
                        .iter()
                        .any(|(t, p)| *t == ty && p.contains(&low32(a(2))))
            }
            ArgCheck::SockOpt { pairs } => pairs.contains(&(low32(a(1)), low32(a(2)))),
        }
    }
}

/// Open checks of `syscall` granted by `promise`, as (grant, flags, mode arg).
fn open_grants(
    promise: Promise,
    syscall: &str,
) -> impl Iterator<Item = (OpenGrant, OpenFlags, u8)> {
    let syscall = syscall.to_owned();
    rules(promise).iter().filter_map(move |r| match r.args {
        ArgCheck::Open {
            grant,
            flags,
            mode_arg,
        } if r.syscall == syscall => Some((grant, flags, mode_arg)),
        _ => None,
    })
}

/// Every syscall name the table mentions (any promise, plus [`ALWAYS`]), sorted, unique.
pub fn all_syscalls() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ALWAYS
        .iter()
        .chain(Promise::ALL.iter().flat_map(|p| rules(*p).iter()))
        .map(|r| r.syscall)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Learn mode: the minimal promise sets that would allow `syscall(args)`, each one enough on
/// its own (an empty `Vec` means no promise allows it; a single empty set means it is always
/// allowed). A set cover over many observed calls picks one alternative per call.
pub fn promises_allowing(syscall: &str, args: &[u64; 6], ctx: EvalContext) -> Vec<PromiseSet> {
    if ALWAYS.iter().any(|r| r.syscall == syscall) {
        return vec![PromiseSet::new()];
    }
    let mut out: Vec<PromiseSet> = Vec::new();
    let mut push = |s: PromiseSet| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for p in Promise::ALL {
        if rules(p)
            .iter()
            .any(|r| r.syscall == syscall && r.args.passes(args, ctx))
        {
            push(std::iter::once(p).collect());
        }
    }
    // Open family: for each access needed, some promise granting it.
    let is_open = Promise::ALL
        .iter()
        .any(|p| open_grants(*p, syscall).next().is_some());
    if is_open {
        // Flags and mode positions are a property of the syscall, identical in every rule.
        let pos = Promise::ALL
            .iter()
            .find_map(|p| open_grants(*p, syscall).next());
        if let Some((_, flags_at, mode_arg)) = pos {
            let flags = match flags_at {
                OpenFlags::Arg(i) => args.get(usize::from(i)).copied().unwrap_or(0),
                OpenFlags::Fixed(f) => f,
            };
            let mode = args.get(usize::from(mode_arg)).copied().unwrap_or(0);
            if let Some(needs) = open_needs(flags, mode) {
                let mut combos: Vec<PromiseSet> = vec![PromiseSet::new()];
                for need in needs {
                    let givers: Vec<Promise> = Promise::ALL
                        .iter()
                        .copied()
                        .filter(|p| open_grants(*p, syscall).any(|(g, _, _)| g == need))
                        .collect();
                    let mut next = Vec::new();
                    for c in &combos {
                        for g in &givers {
                            let mut s = c.clone();
                            s.insert(*g);
                            if !next.contains(&s) {
                                next.push(s);
                            }
                        }
                    }
                    combos = next;
                }
                for c in combos {
                    push(c);
                }
            }
        }
    }
    // Keep only minimal alternatives.
    let all = out.clone();
    out.retain(|s| {
        !all.iter()
            .any(|o| o != s && o.iter().all(|p| s.contains(p)))
    });
    out
}

/// Whether `set` allows `syscall(args)`: the same question the compiled filter answers.
pub fn allows(set: &PromiseSet, syscall: &str, args: &[u64; 6], ctx: EvalContext) -> bool {
    promises_allowing(syscall, args, ctx)
        .iter()
        .any(|alt| alt.iter().all(|p| set.contains(p)))
}

/// The README's promise table (a test in backend-linux checks the README holds exactly this).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| promise | syscalls (any arguments) | syscalls with argument checks |\n|---|---|---|\n",
    );
    let always: Vec<&str> = ALWAYS.iter().map(|r| r.syscall).collect();
    s.push_str(&format!("| *(always)* | {} | — |\n", always.join(" ")));
    for p in Promise::ALL {
        let (plain, checked) = describe(p);
        let plain = if plain.is_empty() {
            "—".to_string()
        } else {
            plain.join(" ")
        };
        let checked = if checked.is_empty() {
            "—".to_string()
        } else {
            checked.join("; ")
        };
        s.push_str(&format!(
            "| **{p}** | {plain} | {} |\n",
            checked.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: EvalContext = EvalContext { pid: 4242 };

    fn set(s: &[Promise]) -> PromiseSet {
        s.iter().copied().collect()
    }

    fn args(v: &[u64]) -> [u64; 6] {
        let mut a = [0u64; 6];
        a[..v.len()].copy_from_slice(v);
        a
    }

    #[test]
    fn cpath_and_wpath_do_not_grant_reads() {
        let ro = args(&[0, 0, O_RDONLY]);
        let rw = args(&[0, 0, O_RDWR]);
        let wo = args(&[0, 0, O_WRONLY | O_TRUNC]);
        assert!(!allows(&set(&[Promise::Cpath]), "openat", &ro, CTX));
        assert!(!allows(&set(&[Promise::Wpath]), "openat", &ro, CTX));
        assert!(!allows(&set(&[Promise::Wpath]), "openat", &rw, CTX));
        assert!(allows(&set(&[Promise::Wpath]), "openat", &wo, CTX));
        assert!(allows(
            &set(&[Promise::Rpath, Promise::Wpath]),
            "openat",
            &rw,
            CTX
        ));
        assert!(!allows(&set(&[Promise::Rpath]), "openat", &wo, CTX));
    }

    #[test]
    fn create_needs_cpath_and_clean_mode() {
        let creat = args(&[0, 0, O_WRONLY | O_CREAT, 0o644]);
        let suid = args(&[0, 0, O_WRONLY | O_CREAT, 0o4755]);
        assert!(!allows(&set(&[Promise::Wpath]), "openat", &creat, CTX));
        assert!(allows(
            &set(&[Promise::Wpath, Promise::Cpath]),
            "openat",
            &creat,
            CTX
        ));
        assert!(!allows(
            &set(&[Promise::Wpath, Promise::Cpath]),
            "openat",
            &suid,
            CTX
        ));
        assert_eq!(
            promises_allowing("openat", &creat, CTX),
            vec![set(&[Promise::Wpath, Promise::Cpath])]
        );
    }

    #[test]
    fn dns_reads_through_openat_only() {
        let ro = args(&[0, 0, O_RDONLY]);
        assert_eq!(
            promises_allowing("openat", &ro, CTX),
            vec![set(&[Promise::Rpath]), set(&[Promise::Dns])]
        );
        assert_eq!(
            promises_allowing("open", &args(&[0, O_RDONLY]), CTX),
            vec![set(&[Promise::Rpath])]
        );
    }

    #[test]
    fn signals_stay_home() {
        let own = args(&[4242, 15]);
        let other = args(&[1, 15]);
        for sc in ["kill", "tkill", "tgkill"] {
            assert!(allows(&set(&[Promise::Stdio]), sc, &own, CTX), "{sc}");
            assert!(!allows(&set(&[Promise::Stdio]), sc, &other, CTX), "{sc}");
        }
        assert!(!allows(
            &set(&[Promise::Proc]),
            "kill",
            &args(&[0xffff_ffff, 9]),
            CTX
        ));
        assert!(allows(&set(&[Promise::Proc]), "kill", &other, CTX));
    }

    #[test]
    fn proc_clone_cannot_create_namespaces() {
        let fork_like = args(&[0x0120_0011]); // CHILD_SETTID|CHILD_CLEARTID|SIGCHLD
        assert!(allows(&set(&[Promise::Proc]), "clone", &fork_like, CTX));
        for ns in [
            0x1000_0000u64,
            0x4000_0000,
            0x2000_0000,
            0x0002_0000,
            0x0800_0000,
        ] {
            let a = args(&[ns | 17]);
            assert!(!allows(&set(&[Promise::Proc]), "clone", &a, CTX), "{ns:#x}");
        }
        // stdio only clones threads.
        assert!(!allows(&set(&[Promise::Stdio]), "clone", &fork_like, CTX));
        assert!(allows(
            &set(&[Promise::Stdio]),
            "clone",
            &args(&[0x3d0f00]),
            CTX
        ));
    }

    #[test]
    fn dns_cannot_pass_fds() {
        let s = set(&[Promise::Stdio, Promise::Dns]);
        assert!(!allows(&s, "sendmsg", &args(&[]), CTX));
        assert!(!allows(&s, "recvmsg", &args(&[]), CTX));
        assert!(!allows(&s, "recvmmsg", &args(&[]), CTX));
        assert!(
            allows(&s, "sendmmsg", &args(&[]), CTX),
            "glibc's resolver needs it"
        );
        assert!(allows(&set(&[Promise::Sendfd]), "sendmsg", &args(&[]), CTX));
    }

    #[test]
    fn sockopts_are_pairs() {
        let s = set(&[Promise::Inet]);
        assert!(allows(&s, "setsockopt", &args(&[3, SOL_SOCKET, 2]), CTX));
        // IP_OPTIONS (SOL_IP, 4): 4 is a listed name at another level only.
        assert!(allows(&s, "setsockopt", &args(&[3, SOL_TCP, 4]), CTX));
        assert!(!allows(&s, "setsockopt", &args(&[3, SOL_IP, 4]), CTX));
    }

    #[test]
    fn sockets_per_promise() {
        let tcp = args(&[AF_INET, SOCK_STREAM | 0o2000000, 0]);
        let udp = args(&[AF_INET6, SOCK_DGRAM, 17]);
        let raw = args(&[AF_INET, 3, 255]);
        let unix = args(&[AF_UNIX, SOCK_STREAM, 0]);
        assert!(allows(&set(&[Promise::Inet]), "socket", &tcp, CTX));
        assert!(allows(&set(&[Promise::Inet]), "socket", &udp, CTX));
        assert!(!allows(&set(&[Promise::Inet]), "socket", &raw, CTX));
        assert!(!allows(&set(&[Promise::Inet]), "socket", &unix, CTX));
        assert!(allows(&set(&[Promise::Anet]), "socket", &tcp, CTX));
        assert!(!allows(&set(&[Promise::Anet]), "socket", &udp, CTX));
        assert!(!allows(&set(&[Promise::Anet]), "connect", &args(&[]), CTX));
        assert!(allows(&set(&[Promise::Unix]), "socket", &unix, CTX));
        assert!(!allows(&set(&[Promise::Unix]), "socket", &tcp, CTX));
    }

    #[test]
    fn no_exec_memory_without_prot_exec() {
        let rx = args(&[0, 4096, 5, 0x22]);
        let rw = args(&[0, 4096, 3, 0x22]);
        assert!(!allows(&set(&[Promise::Stdio]), "mmap", &rx, CTX));
        assert!(allows(&set(&[Promise::Stdio]), "mmap", &rw, CTX));
        assert!(allows(
            &set(&[Promise::Stdio, Promise::ProtExec]),
            "mmap",
            &rx,
            CTX
        ));
        assert!(!allows(&set(&[Promise::Stdio]), "mprotect", &rx, CTX));
    }

    #[test]
    fn ioctl_lists_ignore_high_bits_like_the_kernel_but_never_tiocsti() {
        let tty = set(&[Promise::Stdio, Promise::Tty]);
        assert!(allows(&tty, "ioctl", &args(&[0, 0x5401]), CTX));
        assert!(!allows(&tty, "ioctl", &args(&[0, 0x5412]), CTX));
        assert!(!allows(
            &tty,
            "ioctl",
            &args(&[0, (0x123 << 32) | 0x5412]),
            CTX
        ));
        assert!(!allows(
            &set(&[Promise::Stdio]),
            "ioctl",
            &args(&[0, 0x5401]),
            CTX
        ));
    }

    #[test]
    fn dangerous_calls_have_no_promise() {
        for sc in [
            "ptrace",
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "personality",
            "open_by_handle_at",
            "name_to_handle_at",
            "process_vm_readv",
            "process_vm_writev",
            "kexec_load",
            "init_module",
            "pidfd_send_signal",
            "rt_sigqueueinfo",
            "pkey_mprotect",
            "remap_file_pages",
            "shmat",
            "seccomp",
            "memfd_create",
        ] {
            assert!(promises_allowing(sc, &args(&[]), CTX).is_empty(), "{sc}");
        }
    }

    #[test]
    fn always_allowed() {
        assert_eq!(
            promises_allowing("exit_group", &args(&[]), CTX),
            vec![PromiseSet::new()]
        );
    }

    #[test]
    fn every_promise_has_rules_and_names_are_sane() {
        for p in Promise::ALL {
            assert!(!rules(p).is_empty(), "{p}");
            for r in rules(p) {
                assert!(
                    r.syscall
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{}",
                    r.syscall
                );
            }
        }
        assert!(all_syscalls().len() > 150);
    }
}
