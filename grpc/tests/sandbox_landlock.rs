//! Landlock unveil on the real kernel: read/write/exec/create/remove/rename/link/truncate
//! inside and outside unveiled paths, escapes, scopes, TCP ports, and real programs.
//! Promises grant the syscalls, so every denial here is Landlock's (EACCES/EXDEV).

mod sandbox_common;
use sandbox_common::*;
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::path::{Path, PathBuf};

const ALL_FS: &str = "stdio rpath wpath cpath exec";

struct Tree {
    root: PathBuf,
    inside: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Self {
        let root = scratch(name);
        let inside = root.join("inside");
        let outside = root.join("outside");
        for d in [&inside, &outside] {
            std::fs::create_dir_all(d).expect("mkdir");
            std::fs::write(d.join("f"), "data").expect("write");
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
        }
        Self {
            root,
            inside,
            outside,
        }
    }
    fn i(&self, rel: &str) -> String {
        self.inside.join(rel).to_string_lossy().into_owned()
    }
    fn o(&self, rel: &str) -> String {
        self.outside.join(rel).to_string_lossy().into_owned()
    }
    fn unveil(&self, perm: &str) -> String {
        format!("{perm}:{}", self.inside.display())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn under(t: &Tree, perm: &str, case: &[&str]) -> End {
    let v = t.unveil(perm);
    run(&["-p", ALL_FS, "-v", &v], case)
}

#[test]
fn read_write_truncate() {
    if !require_root() {
        return;
    }
    let t = Tree::new("rw");
    assert_eq!(under(&t, "r", &["read_file", &t.i("f")]), End::Exit(0));
    assert_eq!(under(&t, "r", &["read_file", &t.o("f")]), End::Exit(EACCES));
    assert_eq!(
        under(&t, "r", &["write_file", &t.i("f")]),
        End::Exit(EACCES)
    );
    assert_eq!(under(&t, "rw", &["write_file", &t.i("f")]), End::Exit(0));
    assert_eq!(
        under(&t, "rw", &["write_file", &t.o("f")]),
        End::Exit(EACCES)
    );
    assert_eq!(under(&t, "w", &["read_file", &t.i("f")]), End::Exit(EACCES));
    if !has_abi(3, "TRUNCATE") {
        return;
    }
    assert_eq!(under(&t, "r", &["truncate", &t.i("f")]), End::Exit(EACCES));
    assert_eq!(under(&t, "rw", &["truncate", &t.i("f")]), End::Exit(0));
    assert_eq!(
        under(&t, "rw", &["open_trunc", &t.o("f")]),
        End::Exit(EACCES)
    );
}

#[test]
fn exec_only_with_x() {
    if !require_root() {
        return;
    }
    let t = Tree::new("x");
    for d in [&t.inside, &t.outside] {
        std::fs::copy(probe(), d.join("p")).expect("copy probe");
    }
    let v = t.unveil("rx");
    let flags = ["-p", ALL_FS, "-v", v.as_str()];
    assert_eq!(run(&flags, &["exec", &t.i("p")]), End::Exit(0));
    assert_eq!(run(&flags, &["exec", &t.o("p")]), End::Exit(EACCES));
    assert_eq!(under(&t, "r", &["exec", &t.i("p")]), End::Exit(EACCES));
}

#[test]
fn create_and_remove_only_with_c() {
    if !require_root() {
        return;
    }
    let t = Tree::new("c");
    assert_eq!(under(&t, "rw", &["creat", &t.i("new")]), End::Exit(EACCES));
    assert_eq!(under(&t, "rwc", &["creat", &t.i("new")]), End::Exit(0));
    assert_eq!(under(&t, "rwc", &["creat", &t.o("new")]), End::Exit(EACCES));
    assert_eq!(under(&t, "rwc", &["mkdir", &t.i("d2")]), End::Exit(0));
    assert_eq!(under(&t, "rwc", &["mkdir", &t.o("d2")]), End::Exit(EACCES));
    assert_eq!(
        under(&t, "rwc", &["symlink", "/etc/passwd", &t.o("l")]),
        End::Exit(EACCES)
    );
    // Hole: unlink/rmdir outside unveiled paths (REMOVE_FILE/REMOVE_DIR are handled).
    assert_eq!(under(&t, "rwc", &["unlink", &t.o("f")]), End::Exit(EACCES));
    assert_eq!(under(&t, "rwc", &["rmdir", &t.o("dir")]), End::Exit(EACCES));
    assert!(Path::new(&t.o("f")).exists() && Path::new(&t.o("dir")).exists());
    assert_eq!(under(&t, "rw", &["unlink", &t.i("f")]), End::Exit(EACCES));
    assert_eq!(under(&t, "rwc", &["unlink", &t.i("f")]), End::Exit(0));
    assert_eq!(under(&t, "rwc", &["rmdir", &t.i("dir")]), End::Exit(0));
}

fn denied(e: End) -> bool {
    e == End::Exit(EACCES) || e == End::Exit(EXDEV)
}

#[test]
fn rename_and_link_stay_inside() {
    if !require_root() {
        return;
    }
    let t = Tree::new("mv");
    if !has_abi(2, "REFER (moving files between directories)") {
        return;
    }
    std::fs::write(t.inside.join("g"), "g").expect("write");
    assert_eq!(
        under(&t, "rwc", &["rename", &t.i("g"), &t.i("dir/g")]),
        End::Exit(0)
    );
    assert!(denied(under(
        &t,
        "rwc",
        &["rename", &t.i("dir/g"), &t.o("g")]
    )));
    assert!(denied(under(
        &t,
        "rwc",
        &["rename", &t.o("f"), &t.i("stolen")]
    )));
    assert!(denied(under(&t, "rwc", &["link", &t.o("f"), &t.i("hard")])));
    assert_eq!(
        under(&t, "rwc", &["link", &t.i("f"), &t.i("dir/hard")]),
        End::Exit(0)
    );
    // Reparenting from an r-only tree into an rwc tree gains rights: refused.
    let v1 = t.unveil("rwc");
    let v2 = format!("r:{}", t.outside.display());
    let flags = ["-p", ALL_FS, "-v", v1.as_str(), "-v", v2.as_str()];
    assert!(denied(run(&flags, &["rename", &t.o("f"), &t.i("moved")])));
    assert!(Path::new(&t.o("f")).exists());
}

#[test]
fn symlink_escape_and_dotdot() {
    if !require_root() {
        return;
    }
    let t = Tree::new("sym");
    std::os::unix::fs::symlink(t.outside.join("f"), t.inside.join("l")).expect("symlink");
    assert_eq!(
        under(&t, "rwc", &["read_file", &t.i("l")]),
        End::Exit(EACCES)
    );
    let dotdot = format!("{}/../outside/f", t.inside.display());
    assert_eq!(under(&t, "rwc", &["read_file", &dotdot]), End::Exit(EACCES));
}

#[test]
fn inherited_fds_are_closed() {
    if !require_root() {
        return;
    }
    // bash opens fd 7 without O_CLOEXEC and execs the launcher: only the launcher's own
    // close-on-exec sweep keeps it from the program (Landlock does not restrict open fds).
    let t = Tree::new("fd");
    let script = format!(
        "exec 7<{}; exec {} sandbox {} -p 'stdio rpath' -- {} fd_open 7",
        t.o("f"),
        bin(),
        if abi() < 6 { "-B" } else { "" },
        probe().display()
    );
    let st = std::process::Command::new("bash")
        .args(["-c", &script])
        .status()
        .expect("bash");
    assert_eq!(st.code(), Some(EBADF));
    let script = format!("exec 7<{}; exec {} fd_open 7", t.o("f"), probe().display());
    let st = std::process::Command::new("bash")
        .args(["-c", &script])
        .status()
        .expect("bash");
    assert_eq!(
        st.code(),
        Some(0),
        "without the sandbox the fd is inherited"
    );
}

#[test]
fn shadow_is_unreadable_without_unveil() {
    if !require_root() {
        return;
    }
    assert_ne!(
        run_cmd(&["-p", "stdio rpath"], "/bin/cat", &["/etc/shadow"]),
        End::Exit(0)
    );
    assert_eq!(
        run_cmd(&["-p", "stdio rpath"], "/bin/cat", &["/etc/hostname"]),
        End::Exit(1)
    );
    assert_eq!(
        run_cmd(
            &["-p", "stdio rpath", "-v", "r:/etc/hostname"],
            "/bin/cat",
            &["/etc/hostname"]
        ),
        End::Exit(0)
    );
}

#[test]
fn signal_scope_keeps_signals_inside() {
    if !require_root() {
        return;
    }
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("victim");
    let pid = victim.id().to_string();
    // proc's kill is otherwise unrestricted (pid != -1): Landlock's signal scope stops it.
    if has_abi(6, "the signal scope") {
        assert_eq!(
            run(&["-p", "stdio proc"], &["kill", &pid, "0"]),
            End::Exit(EPERM)
        );
        assert_eq!(
            run(&["-p", "stdio proc"], &["tgkill", &pid, "0"]),
            End::Exit(EPERM)
        );
    }
    // And under stdio, seccomp pins kill/tkill/tgkill to the process itself.
    for case in ["kill", "tkill", "tgkill"] {
        assert_eq!(
            run(&["-V", "-p", "stdio"], &[case, &pid, "15"]),
            End::Exit(EPERM),
            "{case}"
        );
    }
    assert_eq!(
        run(&["-V", "-p", "stdio"], &["sigqueue", &pid]),
        End::Exit(EPERM)
    );
    assert_eq!(
        run(&["-V", "-p", "stdio proc"], &["pidfd_send_signal"]),
        End::Exit(EPERM)
    );
    assert_eq!(
        run(&["-V", "-p", "stdio proc"], &["ptrace", &pid]),
        End::Exit(EPERM)
    );
    assert!(
        victim.try_wait().expect("wait").is_none(),
        "the victim survived"
    );
    let _ = victim.kill();
    let _ = victim.wait();
}

#[test]
fn abstract_unix_scope() {
    if !require_root() {
        return;
    }
    if !has_abi(6, "the abstract unix socket scope") {
        return;
    }
    let name = format!("pledge-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    let _l = std::os::unix::net::UnixListener::bind_addr(&addr).expect("bind abstract");
    assert_eq!(
        run(&["-p", "stdio unix"], &["abstract_connect", &name]),
        End::Exit(EPERM)
    );
    assert_eq!(
        run(&["-V", "-p", "stdio unix"], &["abstract_connect", &name]),
        End::Exit(0)
    );
}

#[test]
fn tcp_ports() {
    if !require_root() {
        return;
    }
    if !has_abi(4, "TCP port rules") {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = l.local_addr().expect("addr").port().to_string();
    let allowed = format!("--connect-port={port}");
    let other = "--connect-port=1";
    assert_eq!(
        run(&["-p", "stdio inet", &allowed], &["connect_tcp", &port]),
        End::Exit(0)
    );
    assert_eq!(
        run(&["-p", "stdio inet", other], &["connect_tcp", &port]),
        End::Exit(EACCES)
    );
    assert_eq!(
        run(&["-p", "stdio inet"], &["connect_tcp", &port]),
        End::Exit(0),
        "unrestricted"
    );
    assert_eq!(
        run(&["-p", "stdio inet", "--bind-port=1"], &["bind_tcp", "0"]),
        End::Exit(EACCES)
    );
}

#[test]
fn python_http_server_serves_its_directory() {
    if !require_root() {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "python3 missing under CI"
        );
        eprintln!("skipping: /usr/bin/python3 not installed");
        return;
    }
    let d = scratch("www");
    std::fs::write(d.join("index.html"), "hello from the sandbox\n").expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let unveil = format!("r:{}", d.display());
    let mut child = sandbox_cmd(&[])
        .args(["-p", "stdio rpath inet", "-v", &unveil, "--"])
        .args([
            "/usr/bin/python3",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
        ])
        .arg(port.to_string())
        .current_dir(&d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python");
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n");
            let _ = s.read_to_string(&mut body);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let _ = std::fs::remove_dir_all(&d);
    assert!(
        body.contains("200") && body.contains("hello from the sandbox"),
        "response: {body:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
