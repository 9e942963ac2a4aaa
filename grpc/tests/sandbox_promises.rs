//! For every promise: an allowed call succeeds (or reaches the kernel, which answers with a
//! non-EPERM errno for a deliberately bad fd/pointer) and a neighbouring disallowed one gets
//! EPERM, or SIGSYS with `-k`. Runs the real binary on the real kernel; needs root and gcc.

mod sandbox_common;
use sandbox_common::*;

const NOV: &str = "-V"; // seccomp-only runs, so the errno is the filter's, not Landlock's

fn seccomp(promises: &str, case: &[&str]) -> End {
    run(&["-V", "-p", promises], case)
}

#[test]
fn stdio() {
    if !require_root() {
        return;
    }
    assert_eq!(seccomp("stdio", &["getpid"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["write"]), End::Exit(0));
    assert_eq!(
        seccomp("stdio", &["thread"]),
        End::Exit(0),
        "threads under stdio"
    );
    assert_eq!(
        seccomp("stdio", &["fork"]),
        End::Exit(EPERM),
        "fork needs proc"
    );
    assert_eq!(
        seccomp("stdio", &["open_ro", "/etc/hostname"]),
        End::Exit(EPERM)
    );
    assert_eq!(seccomp("stdio", &["fcntl_getfl"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["fcntl_setown"]), End::Exit(EPERM));
    assert_eq!(
        seccomp("stdio", &["fcntl_setlk"]),
        End::Exit(EPERM),
        "locks need flock"
    );
    assert_eq!(seccomp("stdio", &["prctl_name"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["prctl_dumpable"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio", &["mmap_rw"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["mmap_exec"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio", &["mprotect_exec"]), End::Exit(EPERM));
    // Allowed: the kernel answers (stdin is /dev/null, so ENOTTY), not the filter.
    assert_eq!(seccomp("stdio", &["ioctl_fionread"]), End::Exit(ENOTTY));
    assert_eq!(
        seccomp("stdio", &["ioctl_tcgets"]),
        End::Exit(EPERM),
        "tty ioctls need tty"
    );
    assert_eq!(seccomp("stdio", &["sendto_addr"]), End::Exit(EPERM));
    assert_eq!(
        seccomp("stdio", &["sendto_null_low_half_zero"]),
        End::Exit(EPERM)
    );
    assert_eq!(seccomp("stdio", &["kill_self"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["prlimit_other", "1"]), End::Exit(EPERM));
}

#[test]
fn kill_mode_kills_with_sigsys() {
    if !require_root() {
        return;
    }
    // glibc's static start-up calls readlink("/proc/self/exe"), an rpath call: with plain
    // stdio it gets EPERM and carries on, but -k would kill it before main.
    let k = [NOV, "-k", "-p", "stdio rpath"];
    assert_eq!(run(&k, &["getpid"]), End::Exit(0));
    assert_eq!(run(&k, &["open_wo", "/etc/hostname"]), End::Signal(SIGSYS));
    assert_eq!(run(&k, &["mmap_exec"]), End::Signal(SIGSYS));
    assert_eq!(run(&k, &["socket_tcp"]), End::Signal(SIGSYS));
    // ENOSYS stays ENOSYS with -k, so libc can fall back.
    assert_eq!(run(&k, &["clone3"]), End::Exit(ENOSYS));
}

#[test]
fn rpath_wpath_cpath() {
    if !require_root() {
        return;
    }
    let d = scratch("paths");
    let f = d.join("f");
    std::fs::write(&f, "x").expect("write");
    let f = f.to_str().expect("utf-8");
    assert_eq!(seccomp("stdio rpath", &["open_ro", f]), End::Exit(0));
    assert_eq!(seccomp("stdio rpath", &["open_wo", f]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio rpath", &["stat", f]), End::Exit(0));
    assert_eq!(seccomp("stdio wpath", &["open_wo", f]), End::Exit(0));
    assert_eq!(seccomp("stdio wpath", &["open_trunc", f]), End::Exit(0));
    assert_eq!(seccomp("stdio rpath", &["open_trunc", f]), End::Exit(EPERM));
    // Holes a.6 #1 and #2: cpath and wpath never grant reads.
    assert_eq!(seccomp("stdio wpath", &["open_ro", f]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio wpath", &["open_rw", f]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio cpath", &["open_ro", f]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio cpath", &["open_rw", f]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio rpath wpath", &["open_rw", f]), End::Exit(0));
    let n = d.join("new");
    let n = n.to_str().expect("utf-8");
    assert_eq!(
        seccomp("stdio wpath", &["creat", n]),
        End::Exit(EPERM),
        "create needs cpath"
    );
    assert_eq!(
        seccomp("stdio wpath cpath", &["creat_suid", n]),
        End::Exit(EPERM)
    );
    assert_eq!(seccomp("stdio wpath cpath", &["creat", n]), End::Exit(0));
    let sub = d.join("sub");
    let sub = sub.to_str().expect("utf-8");
    assert_eq!(seccomp("stdio rpath", &["mkdir", sub]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio cpath", &["mkdir", sub]), End::Exit(0));
    assert_eq!(
        seccomp("stdio rpath wpath", &["unlink", n]),
        End::Exit(EPERM)
    );
    assert_eq!(seccomp("stdio cpath", &["unlink", n]), End::Exit(0));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dpath_flock_fattr_chown() {
    if !require_root() {
        return;
    }
    let d = scratch("attrs");
    let fifo = d.join("fifo");
    let fifo = fifo.to_str().expect("utf-8");
    assert_eq!(seccomp("stdio cpath", &["mkfifo", fifo]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio dpath", &["mkfifo", fifo]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["flock"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio flock", &["flock"]), End::Exit(EBADF));
    assert_eq!(seccomp("stdio flock", &["fcntl_setlk"]), End::Exit(EBADF));
    let f = d.join("f");
    std::fs::write(&f, "x").expect("write");
    let f = f.to_str().expect("utf-8");
    assert_eq!(seccomp("stdio", &["chmod", f, "600"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio fattr", &["chmod", f, "600"]), End::Exit(0));
    assert_eq!(
        seccomp("stdio fattr", &["chmod", f, "4755"]),
        End::Exit(EPERM)
    );
    assert_eq!(
        seccomp("stdio wpath", &["chmod", f, "2755"]),
        End::Exit(EPERM)
    );
    assert_eq!(seccomp("stdio", &["utimens", f]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio fattr", &["utimens", f]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["fchown"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio chown", &["fchown"]), End::Exit(0));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn inet_anet_unix_dns() {
    if !require_root() {
        return;
    }
    assert_eq!(seccomp("stdio", &["socket_tcp"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio inet", &["socket_tcp"]), End::Exit(0));
    assert_eq!(seccomp("stdio inet", &["socket_udp"]), End::Exit(0));
    assert_eq!(seccomp("stdio inet", &["socket_raw"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio inet", &["socket_unix"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio inet", &["socket_netlink"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio inet", &["connect"]), End::Exit(EBADF));
    assert_eq!(seccomp("stdio anet", &["socket_tcp"]), End::Exit(0));
    assert_eq!(seccomp("stdio anet", &["socket_udp"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio anet", &["connect"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio unix", &["socket_unix"]), End::Exit(0));
    assert_eq!(
        seccomp("stdio unix", &["socket_seqpacket"]),
        End::Exit(EPERM)
    );
    assert_eq!(seccomp("stdio unix", &["socket_tcp"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio dns", &["socket_udp"]), End::Exit(0));
    // Hole a.6 #7: (level, name) pairs. SOL_SOCKET/SO_REUSEADDR yes; SOL_IP/IP_OPTIONS (4) no.
    assert_eq!(
        seccomp("stdio inet", &["setsockopt", "1", "2"]),
        End::Exit(0)
    );
    assert_eq!(
        seccomp("stdio inet", &["setsockopt", "6", "4"]),
        End::Exit(0)
    );
    assert_eq!(
        seccomp("stdio inet", &["setsockopt", "0", "4"]),
        End::Exit(EPERM)
    );
}

#[test]
fn dns_cannot_pass_fds_but_sendfd_can() {
    if !require_root() {
        return;
    }
    // Hole a.6 #6.
    assert_eq!(seccomp("stdio dns", &["sendmsg_fd"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio dns", &["recvmsg"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio", &["sendmsg_fd"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio sendfd", &["sendmsg_fd"]), End::Exit(0));
    assert_eq!(seccomp("stdio recvfd", &["recvmsg"]), End::Exit(EAGAIN));
}

#[test]
fn tty_ioctls() {
    if !require_root() {
        return;
    }
    // With tty the call reaches the kernel (bad fd → EBADF); TIOCSTI never does.
    assert_eq!(seccomp("stdio tty", &["ioctl_tcgets"]), End::Exit(EBADF));
    assert_eq!(seccomp("stdio tty", &["ioctl_tiocsti"]), End::Exit(EPERM));
    assert_eq!(
        seccomp("stdio tty", &["ioctl_tiocsti_high"]),
        End::Exit(EPERM)
    );
}

#[test]
fn proc_exec_id_thread() {
    if !require_root() {
        return;
    }
    assert_eq!(seccomp("stdio proc", &["fork"]), End::Exit(0));
    // Hole a.6 #5: proc's clone creates no namespace.
    assert_eq!(seccomp("stdio proc", &["clone_newuser"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio proc", &["clone_newnet"]), End::Exit(EPERM));
    assert_eq!(
        seccomp("stdio proc", &["kill", "-1", "0"]),
        End::Exit(EPERM)
    );
    assert_eq!(
        seccomp("stdio proc", &["setpriority_other", "1"]),
        End::Exit(EPERM)
    );
    // exec: without it only the launcher's own execve passes.
    assert_eq!(seccomp("stdio", &["exec"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio exec", &["exec"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["setuid_self"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio id", &["setuid_self"]), End::Exit(0));
}

#[test]
fn prot_exec_settime_unveil_tmppath_vminfo() {
    if !require_root() {
        return;
    }
    assert_eq!(seccomp("stdio prot_exec", &["mmap_exec"]), End::Exit(0));
    assert_eq!(seccomp("stdio prot_exec", &["mprotect_exec"]), End::Exit(0));
    assert_eq!(seccomp("stdio", &["settime"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio settime", &["settime"]), End::Exit(EINVAL));
    assert_eq!(seccomp("stdio", &["landlock_abi"]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio unveil", &["landlock_abi"]), End::Exit(0));
    let d = scratch("tmppath");
    let f = d.join("gone");
    std::fs::write(&f, "x").expect("write");
    let fs = f.to_str().expect("utf-8");
    assert_eq!(seccomp("stdio", &["unlink", fs]), End::Exit(EPERM));
    assert_eq!(seccomp("stdio tmppath", &["unlink", fs]), End::Exit(0));
    // vminfo's effect is its unveils: /proc/meminfo is readable only with it.
    assert_eq!(
        run(&["-p", "stdio rpath"], &["read_file", "/proc/meminfo"]),
        End::Exit(EACCES)
    );
    assert_eq!(
        run(
            &["-p", "stdio rpath vminfo"],
            &["read_file", "/proc/meminfo"]
        ),
        End::Exit(0)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn empty_promises_only_exit() {
    if !require_root() {
        return;
    }
    // Not even libc's start-up (brk, TLS) is allowed: the program cannot succeed.
    assert_ne!(run(&["-V", "-p", ""], &["getpid"]), End::Exit(0));
}

/// glibc's resolver under `dns`: what resolves outside the sandbox resolves inside it, and
/// not without `dns`. (/etc/hosts always; a real name when this host has a resolver.)
#[test]
fn dns_resolves_like_outside() {
    if !require_root() {
        return;
    }
    let getent = "/usr/bin/getent";
    assert_eq!(
        run_cmd(&["-p", "stdio dns"], getent, &["hosts", "localhost"]),
        End::Exit(0)
    );
    assert_ne!(
        run_cmd(&["-p", "stdio"], getent, &["hosts", "localhost"]),
        End::Exit(0)
    );
    let resolvable = ["index.crates.io", "deb.debian.org", "pypi.org"]
        .into_iter()
        .find(|n| {
            std::process::Command::new(getent)
                .args(["ahosts", n])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(name) = resolvable else {
        eprintln!("no name resolves on this host without the sandbox; checked /etc/hosts only");
        return;
    };
    assert_eq!(
        run_cmd(&["-p", "stdio dns"], getent, &["ahosts", name]),
        End::Exit(0),
        "{name}"
    );
    assert_ne!(
        run_cmd(&["-p", "stdio"], getent, &["ahosts", name]),
        End::Exit(0),
        "{name}"
    );
}
