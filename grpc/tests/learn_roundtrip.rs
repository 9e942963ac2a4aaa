//! Learn mode, round trip: for real programs, `learn` the config, then run the same workload
//! under `sandbox` with exactly the learned promises and unveils — it must succeed — and with
//! each learned promise removed in turn — it must fail.
//!
//! Needs root, seccomp user notification and Landlock; skips with a reason otherwise, and fails
//! instead when CI=true.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

fn missing(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {what}");
    }
    eprintln!("skipping: {what}");
    true
}

/// Root, Landlock and a working learn (seccomp user notification) — or skip/fail.
fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return !missing("not root (learn and sandbox tests need root)");
    }
    let ok = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&["sandbox", "-T", "unveil"]) {
        return !missing("Landlock is not available");
    }
    if !ok(&["learn", "--", "/bin/true"]) {
        return !missing(
            "seccomp user notification does not work here (learn -- /bin/true failed)",
        );
    }
    true
}

#[derive(Debug)]
struct Learned {
    promises: Vec<String>,
    unveil: Vec<String>,
    hcl: String,
}

fn learn(cmd: &[String], cwd: &Path) -> Learned {
    let json = cwd.join("..").join(format!(
        "learned-{}.json",
        cwd.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let out = Command::new(BIN)
        .arg("learn")
        .arg("--json")
        .arg(&json)
        .arg("--")
        .args(cmd)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run learn");
    let hcl = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "learn {cmd:?} failed: {:?}\n{hcl}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("learn wrote its JSON");
    let v: serde_json::Value = serde_json::from_str(&text).expect("learn JSON parses");
    let promises = v["promises"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let unveil = v["unveil"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Learned {
        promises,
        unveil,
        hcl,
    }
}

fn sandbox_cmd(promises: &[String], unveil: &[String], cmd: &[String], cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sandbox").arg("-p").arg(promises.join(" "));
    for u in unveil {
        c.arg("-v").arg(u);
    }
    c.arg("--").args(cmd).current_dir(cwd).stdin(Stdio::null());
    c
}

/// Builds the workload's command line for its directory.
type CommandFn = Box<dyn Fn(&Path) -> Vec<String>>;
/// Runs the command (already set up as a `Command`) and judges the result.
type RunFn = Box<dyn Fn(Command, &Path) -> Result<(), String>>;

/// A workload: how to lay out its directory, what to run, and whether a run succeeded.
struct Workload {
    name: &'static str,
    setup: Box<dyn Fn(&Path)>,
    command: CommandFn,
    /// Runs the command (already set up as a `Command`) and judges the result.
    run: RunFn,
}

fn simple_run(check: impl Fn(&Output, &Path) -> Result<(), String> + 'static) -> RunFn {
    Box::new(move |mut c: Command, dir: &Path| {
        let out = c.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "exit {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        check(&out, dir)
    })
}

fn fresh(dir: &Path, setup: &dyn Fn(&Path)) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("mkdir workload dir");
    setup(dir);
}

fn round_trip(w: &Workload) {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join(w.name);
    fresh(&dir, &*w.setup);
    let cmd = (w.command)(&dir);
    let learned = learn(&cmd, &dir);
    eprintln!("[{}] learned:\n{}", w.name, learned.hcl);
    assert!(
        learned.hcl.contains("config {") && learned.hcl.contains("promises = "),
        "{}",
        learned.hcl
    );

    // In a fresh copy of the directory (files the program created are gone again), the workload
    // learned without enforcement also succeeds with it.
    fresh(&dir, &*w.setup);
    let full = sandbox_cmd(&learned.promises, &learned.unveil, &cmd, &dir);
    if let Err(e) = (w.run)(full, &dir) {
        panic!(
            "[{}] fails under its learned config {:?} {:?}: {e}",
            w.name, learned.promises, learned.unveil
        );
    }
    // Every learned promise is needed.
    for p in &learned.promises {
        fresh(&dir, &*w.setup);
        let fewer: Vec<String> = learned
            .promises
            .iter()
            .filter(|q| *q != p)
            .cloned()
            .collect();
        let c = sandbox_cmd(&fewer, &learned.unveil, &cmd, &dir);
        assert!(
            (w.run)(c, &dir).is_err(),
            "[{}] still succeeds without the learned promise {p:?} (promises {:?})",
            w.name,
            learned.promises
        );
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn src_tree(d: &Path) {
    std::fs::create_dir_all(d.join("src/sub")).expect("mkdir src");
    std::fs::write(d.join("src/a.txt"), b"alpha\n").expect("write");
    std::fs::write(d.join("src/sub/b.txt"), b"beta\n").expect("write");
}

#[test]
fn sh_pipeline() {
    if !prerequisites() {
        return;
    }
    round_trip(&Workload {
        name: "sh",
        setup: Box::new(|_| {}),
        command: Box::new(|d| {
            let d = d.display();
            s(&[
                "/bin/sh",
                "-c",
                &format!("echo hello | tr a-z A-Z > {d}/out.txt && cat {d}/out.txt"),
            ])
        }),
        run: simple_run(|out, d| {
            let so = String::from_utf8_lossy(&out.stdout);
            let file = std::fs::read_to_string(d.join("out.txt")).unwrap_or_default();
            (so == "HELLO\n" && file == "HELLO\n")
                .then_some(())
                .ok_or(format!("stdout {so:?}, out.txt {file:?}"))
        }),
    });
}

#[test]
fn tar_of_a_directory() {
    if !prerequisites() {
        return;
    }
    round_trip(&Workload {
        name: "tar",
        setup: Box::new(src_tree),
        command: Box::new(|d| {
            let out = d.join("out.tar");
            s(&[
                "/usr/bin/tar",
                "-cf",
                &out.to_string_lossy(),
                "-C",
                &d.to_string_lossy(),
                "src",
            ])
        }),
        run: simple_run(|_, d| {
            let list = Command::new("tar")
                .arg("-tf")
                .arg(d.join("out.tar"))
                .output()
                .map_err(|e| e.to_string())?;
            let l = String::from_utf8_lossy(&list.stdout);
            (list.status.success() && l.contains("src/a.txt") && l.contains("src/sub/b.txt"))
                .then_some(())
                .ok_or(format!("archive lists {l:?}"))
        }),
    });
}

const PROBE_C: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror("fopen"); return 3; }
    char buf[64] = {0};
    if (!fgets(buf, sizeof buf, f)) return 4;
    printf("read: %s", buf);
    return 0;
}
"#;

/// Compiles the probe (`static` adds -static); `None` when the toolchain cannot.
fn compile_probe(dir: &Path, static_: bool) -> Option<PathBuf> {
    let src = dir.join("probe.c");
    std::fs::write(&src, PROBE_C).ok()?;
    let out = dir.join(if static_ {
        "probe-static"
    } else {
        "probe-dynamic"
    });
    let mut c = Command::new("gcc");
    c.arg("-O1").arg("-o").arg(&out).arg(&src);
    if static_ {
        c.arg("-static");
    }
    c.status().ok()?.success().then_some(out)
}

fn binary_round_trip(static_: bool) {
    if !prerequisites() {
        return;
    }
    let bins = tempfile::tempdir().expect("tempdir");
    let Some(probe) = compile_probe(bins.path(), static_) else {
        if missing(if static_ {
            "gcc -static failed (libc.a missing?)"
        } else {
            "gcc failed"
        }) {
            return;
        }
        unreachable!();
    };
    round_trip(&Workload {
        name: if static_ { "static" } else { "dynamic" },
        setup: Box::new(src_tree),
        command: Box::new(move |d| {
            vec![
                probe.display().to_string(),
                d.join("src/a.txt").display().to_string(),
            ]
        }),
        run: simple_run(|out, _| {
            let so = String::from_utf8_lossy(&out.stdout);
            (so == "read: alpha\n")
                .then_some(())
                .ok_or(format!("stdout {so:?}"))
        }),
    });
}

#[test]
fn dynamic_binary() {
    binary_round_trip(false);
}

#[test]
fn static_binary() {
    binary_round_trip(true);
}

/// A tiny HTTP server in the test, answering `n` requests.
fn http_server(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut c, _)) = l.accept() else { return };
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nlocal\n",
            );
        }
    });
    (port, h)
}

#[test]
fn curl_against_a_local_server() {
    if !prerequisites() {
        return;
    }
    if !Path::new("/usr/bin/curl").exists() && missing("/usr/bin/curl is not installed") {
        return;
    }
    // learn + full run + one run per promise; a few spare accepts for probing clients.
    let (port, _srv) = http_server(64);
    round_trip(&Workload {
        name: "curl",
        setup: Box::new(|_| {}),
        command: Box::new(move |d| {
            s(&[
                "/usr/bin/curl",
                "-sS",
                "--max-time",
                "20",
                "-o",
                &d.join("page").to_string_lossy(),
                &format!("http://127.0.0.1:{port}/"),
            ])
        }),
        run: simple_run(|_, d| {
            let page = std::fs::read_to_string(d.join("page")).unwrap_or_default();
            (page == "local\n")
                .then_some(())
                .ok_or(format!("page {page:?}"))
        }),
    });
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits for `child` (killing it after a generous bound so a wedged run cannot hang the test).
fn wait_bounded(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..600 {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// GET `path` from the server, retrying while it starts; gives up when it has exited.
fn get_while_alive(port: u16, path: &str, child: &mut Child) -> Option<String> {
    for _ in 0..400 {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
            let _ = write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut resp = String::new();
            let _ = c.read_to_string(&mut resp);
            return Some(resp);
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

#[test]
fn python_http_server_serves_one_request() {
    if !prerequisites() {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() && missing("/usr/bin/python3 is not installed") {
        return;
    }
    let port = free_port();
    let script = format!(
        "import http.server as h; s = h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler); s.handle_request()"
    );
    let cmd = s(&["/usr/bin/python3", "-c", &script]);
    let run = move |mut c: Command, _: &Path| -> Result<(), String> {
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let resp = get_while_alive(port, "/src/a.txt", &mut child);
        let st = wait_bounded(&mut child);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        match (resp, st) {
            (Some(r), Some(st))
                if st.success() && r.starts_with("HTTP/1.0 200") && r.ends_with("alpha\n") =>
            {
                Ok(())
            }
            (r, st) => Err(format!(
                "response {r:?}, exit {st:?}, stderr {}",
                err.trim()
            )),
        }
    };
    // Learn while the test plays the client.
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("py");
    fresh(&dir, &src_tree);
    let json = base.path().join("py.json");
    let learn_cmd = {
        let mut c = Command::new(BIN);
        c.arg("learn")
            .arg("--json")
            .arg(&json)
            .arg("--")
            .args(&cmd)
            .current_dir(&dir)
            .stdin(Stdio::null());
        c
    };
    run(learn_cmd, &dir).expect("the server works while learned");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    let promises: Vec<String> = v["promises"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let unveil: Vec<String> = v["unveil"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    eprintln!("[python] learned promises {promises:?} unveil {unveil:?}");
    assert!(promises.iter().any(|p| p == "inet"), "{promises:?}");

    run(sandbox_cmd(&promises, &unveil, &cmd, &dir), &dir)
        .unwrap_or_else(|e| panic!("fails under its learned config {promises:?} {unveil:?}: {e}"));
    for p in &promises {
        let fewer: Vec<String> = promises.iter().filter(|q| *q != p).cloned().collect();
        assert!(
            run(sandbox_cmd(&fewer, &unveil, &cmd, &dir), &dir).is_err(),
            "still serves without the learned promise {p:?} (promises {promises:?})"
        );
    }
}
