//! The attack and bypass classes of pledge.md d.2, one probe each, on the real kernel.
//! Promises are generous where it makes the test sharper (the attack must fail even so).

mod sandbox_common;
use sandbox_common::*;

fn wide(case: &[&str]) -> End {
    run(
        &["-p", "stdio rpath wpath cpath proc exec unix inet tty"],
        case,
    )
}

#[test]
fn abi_confusion_is_killed() {
    if !require_root() {
        return;
    }
    // d.2 #1 x32 numbers and #2 i386 int 0x80: killed (SIGSYS), never executed.
    assert_eq!(wide(&["x32_getpid"]), End::Signal(SIGSYS));
    let int80 = wide(&["int80_getpid"]);
    assert!(
        int80 == End::Signal(SIGSYS) || int80 == End::Signal(11),
        "int 0x80 must not run: {int80:?}"
    );
}

#[test]
fn unfilterable_and_new_syscalls_are_enosys() {
    if !require_root() {
        return;
    }
    // d.2 #4 clone3, #18 new syscalls, plus openat2 and memfd_create (#19).
    for case in [
        "clone3",
        "openat2",
        "memfd_create",
        "memfd_secret",
        "fchmodat2",
        "syscall1000",
    ] {
        assert_eq!(wide(&[case]), End::Exit(ENOSYS), "{case}");
    }
}

#[test]
fn dangerous_syscalls_are_eperm_in_every_profile() {
    if !require_root() {
        return;
    }
    // d.2 #3 io_uring, #4 user namespaces, #10 shocker, #13 personality, #14 bpf & co,
    // #15 mount family, #19 pkey_mprotect.
    for case in [
        "io_uring_setup",
        "unshare_user",
        "clone_newuser",
        "open_by_handle",
        "name_to_handle",
        "personality",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "mount",
        "chroot",
        "pkey_mprotect_exec",
        "mmap_exec",
        "mprotect_exec",
    ] {
        assert_eq!(wide(&[case]), End::Exit(EPERM), "{case}");
    }
}

#[test]
fn tty_injection_is_refused() {
    if !require_root() {
        return;
    }
    // d.2 #11, including the high-bits variant (CVE-2019-10063).
    assert_eq!(wide(&["ioctl_tiocsti"]), End::Exit(EPERM));
    assert_eq!(wide(&["ioctl_tiocsti_high"]), End::Exit(EPERM));
}

#[test]
fn fd_passing_needs_sendfd() {
    if !require_root() {
        return;
    }
    // d.2 #17.
    assert_eq!(wide(&["sendmsg_fd"]), End::Exit(EPERM));
    assert_eq!(run(&["-p", "stdio dns"], &["sendmsg_fd"]), End::Exit(EPERM));
}

#[test]
fn forks_need_proc_threads_do_not() {
    if !require_root() {
        return;
    }
    // d.2 #20.
    assert_eq!(run(&["-p", "stdio rpath"], &["fork"]), End::Exit(EPERM));
    assert_eq!(run(&["-p", "stdio rpath"], &["thread"]), End::Exit(0));
}

#[test]
fn privileges_are_gone() {
    if !require_root() {
        return;
    }
    // d.2 #16 and the user switch: run as nobody, exec a setuid-root copy of the probe.
    let d = scratch("suid");
    let suid = d.join("suid-probe");
    std::fs::copy(probe(), &suid).expect("copy");
    let st = std::process::Command::new("chmod")
        .arg("4755")
        .arg(&suid)
        .status()
        .expect("chmod");
    assert!(st.success());
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(&d)
        .status();
    let out = sandbox_cmd(&[])
        .args(["-u", "nobody", "-p", "stdio rpath exec", "-v"])
        .arg(format!("rx:{}", d.display()))
        .arg("--")
        .arg(&suid)
        .arg("getuid")
        .output()
        .expect("spawn");
    let ids = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        ids.trim(),
        "65534 65534",
        "setuid gave no privilege: {ids:?}"
    );
    let out = sandbox_cmd(&[])
        .args(["-p", "stdio rpath", "--"])
        .arg(probe())
        .arg("capeff")
        .output()
        .expect("spawn");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("CapBnd:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ambient_net_bind_is_not_granted_by_default() {
    if !require_root() {
        return;
    }
    // Without the opt-in, nobody cannot bind a port below 1024.
    assert_eq!(
        run(&["-u", "nobody", "-p", "stdio inet"], &["bind_tcp", "80"]),
        End::Exit(EACCES)
    );
}

#[test]
fn ambient_net_bind_with_the_opt_in() {
    if !require_root() {
        return;
    }
    let flags = ["-u", "nobody", "--net-bind-service", "-p", "stdio inet"];
    assert_eq!(run(&flags, &["bind_tcp", "81"]), End::Exit(0));
    let out = sandbox_cmd(&[])
        .args([
            "-u",
            "nobody",
            "--net-bind-service",
            "-p",
            "stdio rpath",
            "--",
        ])
        .arg(probe())
        .arg("capeff")
        .output()
        .expect("spawn");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("CapAmb:\t0000000000000400"), "{status}");
    assert!(status.contains("CapEff:\t0000000000000400"), "{status}");
    assert!(status.contains("CapBnd:\t0000000000000400"), "{status}");
}

#[test]
fn rlimits_apply() {
    if !require_root() {
        return;
    }
    let out = sandbox_cmd(&[])
        .args(["-O", "100", "-p", "stdio rpath", "--"])
        .arg(probe())
        .arg("rlimit_nofile")
        .output()
        .expect("spawn");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100");
    // Writing past RLIMIT_FSIZE raises SIGXFSZ (25).
    let d = scratch("fsize");
    std::fs::write(d.join("f"), "").expect("write");
    let v = format!("rw:{}", d.display());
    let f = d.join("f");
    assert_eq!(
        run(
            &["-F", "0", "-p", "stdio rpath wpath", "-v", &v],
            &["write_file", &f.to_string_lossy()]
        ),
        End::Signal(25)
    );
    let _ = std::fs::remove_dir_all(&d);
}
