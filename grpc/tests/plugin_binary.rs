//! The built binary, driven the way Nomad's client drives it: launched with the go-plugin
//! environment, handshake read from stdout, tonic over the unix socket, configs encoded as
//! go-cty encodes them. This build's default wiring may lack the Linux task runtime; task RPCs
//! that need it are checked for an honest Unimplemented (or, once wired, real behaviour).

mod common;

use common::{
    connect, encode, exec_stream, object, open_stats, plugin_keys, recover, stdin_frame,
    stop_and_wait, task_keys, Cty, Driver,
};
use pledge_grpc::pb::base::base_plugin_client::BasePluginClient;
use pledge_grpc::pb::base::{PluginInfoRequest, PluginType, SetConfigRequest};
use pledge_grpc::pb::drivers::{self as pb, driver_client::DriverClient};
use pledge_grpc::pb::goplugin::{
    grpc_broker_client::GrpcBrokerClient, grpc_controller_client::GrpcControllerClient,
    grpc_stdio_client::GrpcStdioClient, Empty,
};
use pledge_grpc::pb::health::{health_client::HealthClient, HealthCheckRequest};
use pledge_grpc::plugin::handshake::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_nomad-pledge-driver");

struct Plugin {
    child: Child,
    socket: PathBuf,
    handshake: String,
    stdout_rest: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

fn base_command(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "2")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_UNIX_SOCKET_DIR", dir)
        .env("NOMAD_PLEDGE_LOG_LEVEL", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::Builder::new().prefix("pg").tempdir_in("/tmp") {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

impl Plugin {
    fn start() -> Self {
        let dir = tempdir();
        let mut child = match base_command(dir.path()).spawn() {
            Ok(c) => c,
            Err(e) => panic!("spawn {BIN}: {e}"),
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let stderr_buf = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        if let Some(mut e) = stderr {
            let buf = stderr_buf.clone();
            threads.push(std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = e.read_to_end(&mut v);
                if let Ok(mut b) = buf.lock() {
                    b.extend(v);
                }
            }));
        }
        let mut reader = match stdout {
            Some(s) => BufReader::new(s),
            None => panic!("no stdout"),
        };
        let mut handshake = String::new();
        let _ = reader.read_line(&mut handshake);
        let rest = Arc::new(Mutex::new(Vec::new()));
        let rest2 = rest.clone();
        threads.push(std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = reader.read_to_end(&mut v);
            if let Ok(mut b) = rest2.lock() {
                b.extend(v);
            }
        }));
        let parts: Vec<&str> = handshake.trim_end().split('|').collect();
        assert_eq!(parts.len(), 6, "handshake {handshake:?}");
        let socket = PathBuf::from(parts[3]);
        Self {
            child,
            socket,
            handshake,
            stdout_rest: rest,
            stderr: stderr_buf,
            threads,
            _dir: dir,
        }
    }

    async fn channel(&self) -> tonic::transport::Channel {
        connect(self.socket.clone()).await
    }

    /// Shuts the plugin down through GRPCController and returns (exit status, stderr text).
    async fn shutdown(mut self) -> (std::process::ExitStatus, String, Vec<u8>) {
        let mut ctl = GrpcControllerClient::new(self.channel().await);
        // The reply may or may not arrive before the process exits (as with Go plugins).
        let _ = ctl.shutdown(Empty {}).await;
        let status = match self.child.wait() {
            Ok(s) => s,
            Err(e) => panic!("wait: {e}"),
        };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let err = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        let out = self
            .stdout_rest
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&err).into_owned(), out)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn run_to_exit(cmd: &mut Command) -> (i32, String, String) {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("run: {e}"),
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_or_wrong_cookie_exits_1_with_go_plugins_message() {
    let dir = tempdir();
    for cookie in [None, Some("wrong"), Some("")] {
        let mut c = base_command(dir.path());
        match cookie {
            None => {
                c.env_remove(MAGIC_COOKIE_KEY);
            }
            Some(v) => {
                c.env(MAGIC_COOKIE_KEY, v);
            }
        }
        let (code, out, err) = run_to_exit(&mut c);
        assert_eq!(code, 1, "cookie {cookie:?}");
        assert_eq!(out, "", "nothing on stdout");
        assert!(
            err.starts_with(
                "This binary is a plugin. These are not meant to be executed directly."
            ),
            "{err}"
        );
    }
}

#[test]
fn unsupported_protocol_versions_exit_1_naming_the_variable() {
    let dir = tempdir();
    let mut c = base_command(dir.path());
    c.env("PLUGIN_PROTOCOL_VERSIONS", "1,3");
    let (code, out, err) = run_to_exit(&mut c);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.contains("PLUGIN_PROTOCOL_VERSIONS"), "{err}");
    assert!(err.contains("\"1,3\""), "{err}");
    // Nothing left behind in the socket dir.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert_eq!(left, vec![0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_socket_and_stdio_hygiene() {
    let p = Plugin::start();
    assert!(p.handshake.starts_with("1|2|unix|/"), "{:?}", p.handshake);
    assert!(p.handshake.ends_with("|grpc|\n"), "{:?}", p.handshake);
    assert!(
        p.socket.starts_with(p._dir.path()),
        "socket in PLUGIN_UNIX_SOCKET_DIR"
    );
    let sock_dir = p.socket.parent().map(PathBuf::from).unwrap_or_default();
    let mode = std::fs::metadata(&sock_dir).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o700));
    // fds 0-2 of the plugin point at /dev/null after the handshake.
    let pid = p.child.id();
    let mut health = HealthClient::new(p.channel().await);
    let h = health
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .map(|r| r.into_inner().status);
    assert_eq!(h.ok(), Some(1), "plugin SERVING");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
        assert_eq!(target, PathBuf::from("/dev/null"), "fd {fd}");
    }
    // SIGINT is ignored.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let mut base = BasePluginClient::new(p.channel().await);
    assert!(
        base.plugin_info(PluginInfoRequest {}).await.is_ok(),
        "alive after SIGINT"
    );

    let (status, stderr, stdout_rest) = p.shutdown().await;
    assert_eq!(status.code(), Some(0));
    assert!(stdout_rest.is_empty(), "only the handshake line on stdout");
    assert!(!sock_dir.exists(), "socket dir removed on Shutdown");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value = match serde_json::from_str(l) {
            Ok(v) => v,
            Err(e) => panic!("stderr line is not JSON ({e}): {l}"),
        };
        for k in ["@level", "@message", "@timestamp", "@module"] {
            assert!(v.get(k).is_some(), "{k} missing in {l}");
        }
        let ts = v["@timestamp"].as_str().unwrap_or("");
        assert_eq!(ts.len(), "2024-05-01T12:00:00.000000Z".len(), "{ts}");
    }
    assert!(stderr.contains("ignoring SIGINT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn go_plugin_streams_open_like_the_host_opens_them() {
    let p = Plugin::start();
    let ch = p.channel().await;
    let mut stdio = GrpcStdioClient::new(ch.clone());
    assert!(stdio.stream_stdio(()).await.is_ok());
    let mut broker = GrpcBrokerClient::new(ch.clone());
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let resp = broker
        .start_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    assert!(resp.is_ok());
    drop(tx);
    let (status, _, _) = p.shutdown().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn base_plugin_info_schema_and_set_config() {
    let p = Plugin::start();
    let ch = p.channel().await;
    let mut base = BasePluginClient::new(ch.clone());
    let info = base
        .plugin_info(PluginInfoRequest {})
        .await
        .map(|r| r.into_inner());
    let info = match info {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(info.r#type, PluginType::Driver as i32);
    assert_eq!(info.plugin_api_versions, vec!["v0.1.0".to_owned()]);
    assert_eq!(info.name, "pledge");
    assert_eq!(info.plugin_version, env!("CARGO_PKG_VERSION"));
    let schema = base
        .config_schema(pledge_grpc::pb::base::ConfigSchemaRequest {})
        .await
        .map(|r| r.into_inner().spec.is_some());
    assert_eq!(schema.ok(), Some(true));

    let keys = plugin_keys();
    let good = encode(&object(
        &keys,
        &[
            ("pids_limit", Cty::Int(512)),
            ("cpu_hard_limit", Cty::Bool(true)),
        ],
    ));
    let req = |b: Vec<u8>| SetConfigRequest {
        msgpack_config: b,
        nomad_config: None,
        plugin_api_version: "v0.1.0".into(),
    };
    // Launch B calls it twice.
    for _ in 0..2 {
        let r = base.set_config(req(good.clone())).await;
        assert!(r.is_ok(), "{r:?}");
    }
    // Malformed msgpack.
    let e = base.set_config(req(vec![0xc1, 0xff, 0x00])).await.err();
    assert_eq!(
        e.as_ref().map(tonic::Status::code),
        Some(Code::InvalidArgument)
    );
    // Wrong type: a string where a bool belongs; the error names the field.
    let bad = encode(&object(&keys, &[("cpu_hard_limit", Cty::str("yes"))]));
    let e = base.set_config(req(bad)).await.err();
    let msg = e
        .as_ref()
        .map(|s| s.message().to_owned())
        .unwrap_or_default();
    assert_eq!(e.map(|s| s.code()), Some(Code::InvalidArgument));
    assert!(msg.contains("cpu_hard_limit"), "{msg}");
    // Still up, and the good config still applies.
    assert!(base.set_config(req(good)).await.is_ok());
    let (status, _, _) = p.shutdown().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_rpcs_without_tasks() {
    let p = Plugin::start();
    let ch = p.channel().await;
    let mut base = BasePluginClient::new(ch.clone());
    let cfg = encode(&object(&plugin_keys(), &[]));
    let r = base
        .set_config(SetConfigRequest {
            msgpack_config: cfg,
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
    let mut d = DriverClient::new(ch.clone());

    let spec = d
        .task_config_schema(pb::TaskConfigSchemaRequest {})
        .await
        .map(|r| r.into_inner().spec.is_some());
    assert_eq!(spec.ok(), Some(true));
    let caps = d
        .capabilities(pb::CapabilitiesRequest {})
        .await
        .ok()
        .and_then(|r| r.into_inner().capabilities);
    let caps = caps.unwrap_or_default();
    assert!(caps.send_signals && caps.exec && !caps.must_create_network);
    assert_eq!(caps.network_isolation_modes, vec![0, 1], "host + group");

    // Fingerprint: the first message arrives at once, with our attributes.
    let mut fp = match d.fingerprint(pb::FingerprintRequest {}).await {
        Ok(s) => s.into_inner(),
        Err(e) => panic!("{e}"),
    };
    let first = fp.message().await.ok().flatten().unwrap_or_default();
    assert!(first.attributes.contains_key("driver.pledge.version"));
    assert!(!first.health_description.is_empty());
    fingerprint_says_what_the_host_can_do(&first);

    // Unknown ids: Nomad's message, the plugin stays up.
    let unknown = "alloc/none/deadbeef".to_owned();
    let checks: Vec<Result<(), tonic::Status>> = vec![
        d.wait_task(pb::WaitTaskRequest {
            task_id: unknown.clone(),
        })
        .await
        .map(|_| ()),
        d.stop_task(pb::StopTaskRequest {
            task_id: unknown.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        d.destroy_task(pb::DestroyTaskRequest {
            task_id: unknown.clone(),
            force: true,
        })
        .await
        .map(|_| ()),
        d.inspect_task(pb::InspectTaskRequest {
            task_id: unknown.clone(),
        })
        .await
        .map(|_| ()),
        d.signal_task(pb::SignalTaskRequest {
            task_id: unknown.clone(),
            signal: "SIGHUP".into(),
        })
        .await
        .map(|_| ()),
        d.task_stats(pb::TaskStatsRequest {
            task_id: unknown.clone(),
            collection_interval: None,
        })
        .await
        .map(|_| ()),
        d.exec_task(pb::ExecTaskRequest {
            task_id: unknown.clone(),
            command: vec!["/bin/true".into()],
            timeout: None,
        })
        .await
        .map(|_| ()),
        d.wait_task(pb::WaitTaskRequest {
            task_id: String::new(),
        })
        .await
        .map(|_| ()),
    ];
    for (i, c) in checks.into_iter().enumerate() {
        let e = c.err();
        assert_eq!(
            e.as_ref().map(|s| s.code()),
            Some(Code::NotFound),
            "check {i}: {e:?}"
        );
        assert_eq!(
            e.map(|s| s.message().to_owned()).as_deref(),
            Some("task not found for given id")
        );
    }

    // StartTask: bad configs are rejected with the field named, before any launch.
    let start = |msgpack: Vec<u8>, id: &str| pb::StartTaskRequest {
        task: Some(pb::TaskConfig {
            id: id.into(),
            name: "web".into(),
            alloc_id: "alloc".into(),
            alloc_dir: "/tmp/alloc".into(),
            msgpack_driver_config: msgpack,
            ..Default::default()
        }),
    };
    let e = d
        .start_task(start(vec![0x93, 0x01], "alloc/web/1"))
        .await
        .err();
    assert_eq!(e.map(|s| s.code()), Some(Code::InvalidArgument));
    let wrong = encode(&object(
        &task_keys(),
        &[
            ("command", Cty::str("/bin/sleep")),
            ("args", Cty::str("10")),
        ],
    ));
    let e = d.start_task(start(wrong, "alloc/web/1")).await.err();
    let msg = e
        .as_ref()
        .map(|s| s.message().to_owned())
        .unwrap_or_default();
    assert_eq!(e.map(|s| s.code()), Some(Code::InvalidArgument));
    assert!(msg.contains("args"), "{msg}");
    let e = d
        .start_task(pb::StartTaskRequest { task: None })
        .await
        .err();
    assert_eq!(e.map(|s| s.code()), Some(Code::InvalidArgument));

    // RecoverTask of an unknown task with garbage driver_state.
    let e = d
        .recover_task(pb::RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(pb::TaskHandle {
                version: 1,
                config: Some(pb::TaskConfig {
                    id: "alloc/web/2".into(),
                    ..Default::default()
                }),
                state: 1,
                driver_state: b"garbage".to_vec(),
            }),
        })
        .await
        .err();
    let code = e.as_ref().map(|s| s.code());
    assert!(
        matches!(code, Some(Code::InvalidArgument | Code::Unimplemented)),
        "{e:?}"
    );

    // Networks are Nomad's job.
    let e = d
        .create_network(pb::CreateNetworkRequest::default())
        .await
        .err();
    assert_eq!(e.map(|s| s.code()), Some(Code::Unimplemented));
    // Nomad 2.0.4 Init/Shutdown succeed.
    assert!(d.init(pb::InitRequest {}).await.is_ok());
    assert!(d.shutdown(pb::ShutdownRequest {}).await.is_ok());

    let (status, _, _) = p.shutdown().await;
    assert_eq!(status.code(), Some(0));
}

/// The fingerprint names the host's abilities: Landlock ABI and cgroup mode as attributes, and
/// a health description that says when unveil is only partly enforced. The kernel matrix sets
/// the expectations (PLEDGE_EXPECT_LANDLOCK_ABI, PLEDGE_EXPECT_CGROUP); natively the ABI is
/// compared with what a sandboxed launch reports.
fn fingerprint_says_what_the_host_can_do(fp: &pb::FingerprintResponse) {
    use pledge_grpc::pb::structs::attribute::Value;
    let attr = |k: &str| {
        fp.attributes
            .get(&format!("driver.pledge.{k}"))
            .and_then(|a| a.value.clone())
    };
    // What a launch reports is measured by the kernel at launch time, not by the fingerprint.
    let out = Command::new(BIN)
        .args(["sandbox", "-B", "-p", "stdio rpath", "--", "/bin/true"])
        .env("PLEDGE_SANDBOX_REPORT", "1")
        .output();
    let kernel_abi = out
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| l.starts_with('{'))
                .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        })
        .and_then(|v| v["landlock_abi"].as_i64())
        .unwrap_or(-1);
    if let Ok(want) = std::env::var("PLEDGE_EXPECT_LANDLOCK_ABI") {
        assert_eq!(kernel_abi.to_string(), want, "the kernel's Landlock ABI");
    }
    assert_eq!(
        attr("landlock_abi"),
        Some(Value::IntVal(kernel_abi)),
        "{fp:?}"
    );
    let desc = &fp.health_description;
    match kernel_abi {
        0 => assert!(desc.contains("Landlock unavailable"), "{desc}"),
        1..=3 => assert!(
            desc.contains("partially enforced") && desc.contains("need ABI 4"),
            "{desc}"
        ),
        4 | 5 => assert!(desc.contains("partially enforced"), "{desc}"),
        _ => assert!(!desc.contains("partially"), "{desc}"),
    }
    match std::env::var("PLEDGE_EXPECT_CGROUP").as_deref() {
        Ok(want) => assert_eq!(
            attr("cgroup"),
            Some(Value::StringVal(want.into())),
            "{fp:?}"
        ),
        Err(_) => assert!(attr("cgroup").is_some(), "{fp:?}"),
    }
    assert_eq!(attr("seccomp"), Some(Value::BoolVal(true)), "{fp:?}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Skips (prints why) unless the plugin fingerprints HEALTHY here; under CI=true as root a
/// non-healthy driver is a failure.
async fn healthy_or_skip(d: &mut DriverClient<tonic::transport::Channel>, test: &str) -> bool {
    let first = match d.fingerprint(pb::FingerprintRequest {}).await {
        Ok(s) => s
            .into_inner()
            .message()
            .await
            .ok()
            .flatten()
            .unwrap_or_default(),
        Err(e) => panic!("{e}"),
    };
    if first.health == pb::fingerprint_response::HealthState::Healthy as i32 {
        return true;
    }
    let ci = std::env::var("CI").as_deref() == Ok("true");
    assert!(
        !(ci && is_root()),
        "CI=true as root but the driver is not healthy: {}",
        first.health_description
    );
    eprintln!("SKIP {test}: {}", first.health_description);
    false
}

struct AllocDir(tempfile::TempDir);

impl AllocDir {
    fn new() -> Self {
        let d = tempdir();
        for sub in [
            "alloc/logs",
            "web/local",
            "web/secrets",
            "web/tmp",
            "web/private",
        ] {
            let _ = std::fs::create_dir_all(d.path().join(sub));
        }
        Self(d)
    }

    fn task(&self, id: &str, command: &str, args: &[&str], promises: &str) -> pb::TaskConfig {
        self.task_with(id, command, args, promises, &[])
    }

    fn task_with(
        &self,
        id: &str,
        command: &str,
        args: &[&str],
        promises: &str,
        extra: &[(&str, Cty)],
    ) -> pb::TaskConfig {
        let mut set = vec![
            ("command", Cty::str(command)),
            ("args", Cty::strs(args)),
            ("promises", Cty::str(promises)),
        ];
        set.extend(extra.iter().cloned());
        let dir = self.0.path().display().to_string();
        pb::TaskConfig {
            id: id.into(),
            name: "web".into(),
            alloc_id: "binalloc".into(),
            job_name: "job".into(),
            task_group_name: "group".into(),
            alloc_dir: dir.clone(),
            stdout_path: "/dev/null".into(),
            stderr_path: "/dev/null".into(),
            msgpack_driver_config: encode(&object(&task_keys(), &set)),
            env: [
                ("NOMAD_TASK_DIR", format!("{dir}/web/local")),
                ("NOMAD_ALLOC_DIR", format!("{dir}/alloc")),
                ("NOMAD_SECRETS_DIR", format!("{dir}/web/secrets")),
                ("PATH", "/usr/bin:/bin".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            resources: Some(pb::Resources {
                allocated_resources: Some(pb::AllocatedTaskResources {
                    cpu: Some(pb::AllocatedCpuResources { cpu_shares: 100 }),
                    memory: Some(pb::AllocatedMemoryResources {
                        memory_mb: 64,
                        memory_max_mb: 0,
                    }),
                    networks: vec![],
                }),
                linux_resources: Some(pb::LinuxResources {
                    cpu_shares: 100,
                    memory_limit_bytes: 64 << 20,
                    ..Default::default()
                }),
                ports: vec![],
            }),
            ..Default::default()
        }
    }
}

async fn configure(ch: &tonic::transport::Channel) {
    let mut base = BasePluginClient::new(ch.clone());
    let r = base
        .set_config(SetConfigRequest {
            msgpack_config: encode(&object(&plugin_keys(), &[])),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
}

/// A started, configured plugin whose driver fingerprints healthy, with its channel and a
/// Driver client; `None` (after saying why) where the test cannot run (see healthy_or_skip).
async fn healthy_plugin(test: &str) -> Option<(Plugin, tonic::transport::Channel, Driver)> {
    let p = Plugin::start();
    let ch = p.channel().await;
    configure(&ch).await;
    let mut d = DriverClient::new(ch.clone());
    healthy_or_skip(&mut d, test).await.then_some((p, ch, d))
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// What the waiting shells of the tests below exec; the default unveils cover only the task's
/// own program, its loader and its libraries.
const SLEEP_UNVEIL: &str = "rx:/usr/bin/sleep";

/// Tests that run real tasks take turns: their plugins share the state root, and a plugin
/// restarting (recovery) must not meet another test's live tasks there.
static REAL_TASKS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn real_tasks_survive_plugin_shutdown_and_are_recovered() {
    let _turn = REAL_TASKS.lock().await;
    let Some((p, _ch, mut d)) =
        healthy_plugin("real_tasks_survive_plugin_shutdown_and_are_recovered").await
    else {
        return;
    };
    let alloc = AllocDir::new();

    // A short task: its exit code reaches WaitTask.
    let short = alloc.task(
        "binalloc/web/00000001",
        "/bin/sh",
        &["-c", "exit 5"],
        "stdio rpath proc exec",
    );
    let r = d
        .start_task(pb::StartTaskRequest { task: Some(short) })
        .await;
    assert!(r.is_ok(), "StartTask: {r:?}");
    let w = d
        .wait_task(pb::WaitTaskRequest {
            task_id: "binalloc/web/00000001".into(),
        })
        .await
        .map(|r| r.into_inner().result.map(|e| e.exit_code));
    assert_eq!(w.ok().flatten(), Some(5));
    assert!(d
        .destroy_task(pb::DestroyTaskRequest {
            task_id: "binalloc/web/00000001".into(),
            force: true
        })
        .await
        .is_ok());

    // A long task: stats, exec, then the plugin goes away and comes back.
    let id = "binalloc/web/00000002";
    let handle = match d
        .start_task(pb::StartTaskRequest {
            // The default (private) pid mode: the driver's init is pid 1 of the namespace and
            // forwards StopTask's SIGTERM to sleep, which has no handler (the kernel would drop
            // it for a program that were pid 1 itself), so the stop below is graceful.
            task: Some(alloc.task(id, "/bin/sleep", &["1000"], "stdio rpath")),
        })
        .await
    {
        Ok(r) => r.into_inner().handle.unwrap_or_default(),
        Err(e) => panic!("StartTask: {e}"),
    };
    let state: pledge_core::DriverState = match serde_json::from_slice(&handle.driver_state) {
        Ok(s) => s,
        Err(e) => panic!("driver_state: {e}"),
    };
    let pid = state.process.pid;
    assert!(pid_alive(pid), "task pid {pid} runs");

    let mut stats = open_stats(&mut d, id, 200).await;
    let s = stats
        .message()
        .await
        .ok()
        .flatten()
        .and_then(|r| r.stats)
        .unwrap_or_default();
    assert!(s.timestamp.is_some() && s.agg_resource_usage.is_some());

    let e = d
        .exec_task(pb::ExecTaskRequest {
            task_id: id.into(),
            command: vec!["/bin/sh".into(), "-c".into(), "echo in-task; exit 2".into()],
            timeout: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        })
        .await
        .map(|r| r.into_inner());
    match e {
        Ok(r) => {
            assert_eq!(
                r.result.map(|x| x.exit_code),
                Some(2),
                "stderr: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert_eq!(r.stdout, b"in-task\n");
        }
        Err(e) => panic!("ExecTask: {e}"),
    }

    // ExecTaskStreaming inside the task: stdin in, output out, then exited + result.
    let (out, last) = exec_stream(
        &mut d,
        id,
        &["/bin/sh", "-c", "read l; echo got $l; exit 6"],
        false,
        vec![stdin_frame(b"x\n", true)],
    )
    .await;
    assert!(last.exited);
    assert_eq!(last.result.map(|r| r.exit_code), Some(6));
    assert_eq!(out, b"got x\n");

    // With a tty (what `nomad alloc exec` asks for by default): resize, output via the pty.
    // Builtins only: the task's promises (stdio rpath) apply to exec too, so the shell may not
    // fork (and, without `tty`, not even ask isatty).
    let resize = pb::ExecTaskStreamingRequest {
        tty_size: Some(pb::exec_task_streaming_request::TerminalSize {
            height: 40,
            width: 100,
        }),
        ..Default::default()
    };
    let (out, last) = exec_stream(
        &mut d,
        id,
        &["/bin/sh", "-c", "echo via-pty; exit 0"],
        true,
        vec![resize],
    )
    .await;
    assert!(last.exited);
    assert_eq!(last.result.map(|r| r.exit_code), Some(0));
    // The pty's line discipline turned "\n" into "\r\n": the output came through the tty.
    assert_eq!(String::from_utf8_lossy(&out), "via-pty\r\n");

    let (status, _, _) = p.shutdown().await;
    assert_eq!(status.code(), Some(0));
    assert!(pid_alive(pid), "the task outlives the plugin");

    // A fresh plugin (as after an agent restart): SetConfig, then RecoverTask with the stored
    // handle, whose config no longer carries the driver config.
    let p2 = Plugin::start();
    let ch2 = p2.channel().await;
    configure(&ch2).await;
    let mut d2 = DriverClient::new(ch2.clone());
    recover(&mut d2, &handle).await;
    assert_eq!(stop_and_wait(&mut d2, id).await, Some(15));
    assert!(!pid_alive(pid));
    assert!(d2
        .destroy_task(pb::DestroyTaskRequest {
            task_id: id.into(),
            force: true
        })
        .await
        .is_ok());
    let (status, _, _) = p2.shutdown().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_and_removes_the_socket() {
    let mut p = Plugin::start();
    let mut base = BasePluginClient::new(p.channel().await);
    assert!(base.plugin_info(PluginInfoRequest {}).await.is_ok());
    let dir = p.socket.parent().map(PathBuf::from).unwrap_or_default();
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let status = p.child.wait().map(|s| s.code());
    assert_eq!(status.ok().flatten(), Some(0));
    assert!(!dir.exists(), "socket dir removed");
}

/// Regression (scale bench): 50 StartTask calls arrive at once over gRPC; every launch must
/// report, every task must run, and every WaitTask must get that task's own exit code. The
/// plugin serializes launches, so this also proves no launch leaves a pipe end behind that
/// keeps a later launch's report from reaching EOF.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_starts_all_run_and_report_their_exit_codes() {
    const TASKS: usize = 50;
    let test = "fifty_concurrent_starts_all_run_and_report_their_exit_codes";
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {test} needs root"
        );
        eprintln!("SKIP {test}: needs root (cgroups, namespaces)");
        return;
    }
    let _turn = REAL_TASKS.lock().await;
    let Some((p, ch, _d)) = healthy_plugin(test).await else {
        return;
    };
    let alloc = AllocDir::new();
    let go = alloc.0.path().join("alloc/go");
    let starts: Vec<_> = (0..TASKS)
        .map(|i| {
            let id = format!("binalloc/web/c{i:07}");
            // Distinct codes (1..=50): a status delivered to the wrong task would show.
            let code = i + 1;
            let script = format!(
                "until [ -e \"$NOMAD_ALLOC_DIR/go\" ]; do sleep 1 || exit 99; done; exit {code}"
            );
            // Runs until the test says go, so every StartTask must return while its task
            // (and every other task) still runs: a launch report held open by a sibling's
            // process would only reach EOF when that sibling exits.
            // `sleep` must be unveiled for exec: were it denied, each shell would spin forking
            // (`|| exit 99` makes that a wrong exit code instead of a busy loop).
            let mut cfg = alloc.task_with(
                &id,
                "/bin/sh",
                &["-c", &script],
                "stdio rpath proc exec",
                &[("unveil", Cty::strs(&[SLEEP_UNVEIL]))],
            );
            // One allocation per task, as Nomad gives them: tasks sharing <alloc>.<task>
            // would share (and evict each other from) one cgroup.
            cfg.alloc_id = format!("calloc{i:03}");
            let mut d = DriverClient::new(ch.clone());
            tokio::spawn(async move {
                let r = d.start_task(pb::StartTaskRequest { task: Some(cfg) }).await;
                (
                    id,
                    code,
                    r.map(|_| ()).map_err(|e| format!("StartTask: {e}")),
                )
            })
        })
        .collect();
    // A hang guard only (a wedged launch must fail the test, not hang it): the plugin gives
    // up on a launch after 30 s, so 50 wedged launches exceed it; a healthy run is seconds.
    let started = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        futures_join_all(starts),
    )
    .await;
    let _ = std::fs::write(&go, b"");
    let started = match started {
        Ok(s) => s,
        Err(_) => panic!("the {TASKS} concurrent StartTask calls did not all return"),
    };
    let mut failures = Vec::new();
    let mut waits = Vec::new();
    for (id, code, r) in started {
        if let Err(e) = r {
            failures.push(format!("{id}: {e}"));
            continue;
        }
        let mut d = DriverClient::new(ch.clone());
        waits.push(tokio::spawn(async move {
            let waited = d
                .wait_task(pb::WaitTaskRequest {
                    task_id: id.clone(),
                })
                .await
                .map(|r| r.into_inner());
            let _ = d
                .destroy_task(pb::DestroyTaskRequest {
                    task_id: id.clone(),
                    force: true,
                })
                .await;
            (id, code, waited.map_err(|e| format!("WaitTask: {e}")))
        }));
    }
    for (id, code, got) in futures_join_all(waits).await {
        match got {
            Ok(got)
                if got.result.as_ref().map(|e| (e.exit_code, e.signal))
                    == i32::try_from(code).ok().map(|c| (c, 0))
                    && got.err.is_empty() => {}
            got => failures.push(format!("{id}: want exit {code}, got {got:?}")),
        }
    }
    let (status, stderr, _) = p.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} of {TASKS} concurrent tasks failed: {failures:#?}\nplugin stderr tail: {}",
        failures.len(),
        stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(status.code(), Some(0));
}

/// Awaits every spawned task in order (a join error becomes a panic: the test body panicked).
async fn futures_join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => panic!("join: {e}"),
        }
    }
    out
}

/// The task's cgroup as /proc/<pid>/cgroup names it, relative to the controller's mount: the
/// unified (`0::`) line on a v2 host, the memory controller's line on a v1 or hybrid host.
fn task_cgroup(pid: u32) -> Option<(bool, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .map(|c| c.split_whitespace().any(|x| x == "memory"))
        .unwrap_or(false);
    let line = text.lines().find(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl) = (f.next(), f.next());
        if v2 {
            ctrl == Some("")
        } else {
            ctrl.is_some_and(|c| c.split(',').any(|x| x == "memory"))
        }
    })?;
    Some((v2, line.splitn(3, ':').nth(2)?.to_owned()))
}

/// Issue 11's lifecycle, through the binary: a task placed in Nomad's cgroup path, stats, the
/// plugin SIGKILLed (no shutdown of any kind), a task exiting while no plugin runs, a fresh
/// plugin recovering both from their handles, the exit status kept, stop, destroy, and the
/// cgroup gone. Runs natively (hybrid v1 here) and in the VM matrix on pure cgroup v2.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_plugin_loses_no_task_and_cgroups_follow_nomads_paths() {
    let test = "a_sigkilled_plugin_loses_no_task_and_cgroups_follow_nomads_paths";
    let _turn = REAL_TASKS.lock().await;
    let Some((mut p, _ch, mut d)) = healthy_plugin(test).await else {
        return;
    };
    let alloc = AllocDir::new();
    let gate = alloc.0.path().join("alloc/exit-now");

    let start = |d: &mut DriverClient<tonic::transport::Channel>, cfg: pb::TaskConfig| {
        let mut d = d.clone();
        async move {
            match d.start_task(pb::StartTaskRequest { task: Some(cfg) }).await {
                Ok(r) => r.into_inner().handle.unwrap_or_default(),
                Err(e) => panic!("StartTask: {e}"),
            }
        }
    };
    let pid_of = |h: &pb::TaskHandle| -> u32 {
        match serde_json::from_slice::<pledge_core::DriverState>(&h.driver_state) {
            Ok(s) => s.process.pid,
            Err(e) => panic!("driver_state: {e}"),
        }
    };

    let long_id = "sigkill/web/00000001";
    let mut long_cfg = alloc.task(long_id, "/bin/sleep", &["1000"], "stdio rpath");
    long_cfg.alloc_id = "sigkill1".into();
    let long = start(&mut d, long_cfg).await;
    // Exits with 9 once the gate file appears, which happens while no plugin runs.
    let short_id = "sigkill/web/00000002";
    let script =
        "until [ -e \"$NOMAD_ALLOC_DIR/exit-now\" ]; do sleep 0.2 || exit 99; done; exit 9";
    let mut short_cfg = alloc.task_with(
        short_id,
        "/bin/sh",
        &["-c", script],
        "stdio rpath proc exec",
        &[("unveil", Cty::strs(&[SLEEP_UNVEIL]))],
    );
    short_cfg.alloc_id = "sigkill2".into();
    let short = start(&mut d, short_cfg).await;
    let (long_pid, short_pid) = (pid_of(&long), pid_of(&short));

    // Placement: Nomad's own cgroup path for <alloc>.<task>.
    let (v2, long_cg) = match task_cgroup(long_pid) {
        Some(c) => c,
        None => panic!("no cgroup line for task pid {long_pid}"),
    };
    if std::env::var("PLEDGE_EXPECT_CGROUP").as_deref() == Ok("v2") {
        assert!(
            v2,
            "PLEDGE_EXPECT_CGROUP=v2 but the host has no v2 memory controller"
        );
    }
    let want = if v2 {
        "/nomad.slice/share.slice/sigkill1.web.scope"
    } else {
        // Upstream's v1 layout: only cpuset has the share/reserve level.
        "/nomad/sigkill1.web"
    };
    assert!(
        long_cg == want || long_cg.starts_with(&format!("{want}/")),
        "task cgroup {long_cg:?}, want Nomad's {want:?}"
    );
    let cg_dir = if v2 {
        format!("/sys/fs/cgroup{want}")
    } else {
        format!("/sys/fs/cgroup/memory{want}")
    };
    assert!(std::path::Path::new(&cg_dir).is_dir(), "{cg_dir} exists");

    let stats_of = |d: &mut Driver, id: &str| {
        let mut d = d.clone();
        let id = id.to_owned();
        async move {
            open_stats(&mut d, &id, 200)
                .await
                .message()
                .await
                .ok()
                .flatten()
                .and_then(|r| r.stats)
                .and_then(|s| s.agg_resource_usage)
                .unwrap_or_default()
        }
    };
    let usage = stats_of(&mut d, long_id).await;
    let mem = usage.memory.unwrap_or_default();
    assert!(
        mem.rss > 0 || mem.usage > 0,
        "memory stats come from the cgroup: {mem:?}"
    );
    assert!(!mem.measured_fields.is_empty(), "{mem:?}");

    // SIGKILL: no GRPCController.Shutdown, no signal handler, no cleanup.
    let _ = p.child.kill();
    let _ = p.child.wait();
    assert!(pid_alive(long_pid), "the task outlives a SIGKILLed plugin");
    if let Err(e) = std::fs::write(&gate, b"") {
        panic!("gate: {e}");
    }
    let gone = (0..150).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !pid_alive(short_pid)
    });
    assert!(gone, "the short task exits while no plugin runs");

    let p2 = Plugin::start();
    let ch2 = p2.channel().await;
    configure(&ch2).await;
    let mut d2 = DriverClient::new(ch2.clone());
    for h in [&long, &short] {
        recover(&mut d2, h).await;
    }
    // The status of the task that exited while no plugin ran is not lost.
    let w = d2
        .wait_task(pb::WaitTaskRequest {
            task_id: short_id.into(),
        })
        .await
        .map(|r| r.into_inner().result.map(|e| (e.exit_code, e.signal)));
    assert_eq!(w.ok().flatten(), Some((9, 0)));
    // The recovered long task still reports stats from its cgroup.
    let mem = stats_of(&mut d2, long_id).await.memory.unwrap_or_default();
    assert!(
        mem.rss > 0 || mem.usage > 0,
        "stats after recovery: {mem:?}"
    );

    assert_eq!(stop_and_wait(&mut d2, long_id).await, Some(15));
    for id in [long_id, short_id] {
        let r = d2
            .destroy_task(pb::DestroyTaskRequest {
                task_id: id.into(),
                force: true,
            })
            .await;
        assert!(r.is_ok(), "DestroyTask {id}: {r:?}");
    }
    assert!(!pid_alive(long_pid) && !pid_alive(short_pid));
    assert!(
        !std::path::Path::new(&cg_dir).exists(),
        "{cg_dir} removed after destroy"
    );
    let (status, _, _) = p2.shutdown().await;
    assert_eq!(status.code(), Some(0));
}

/// A launch that cannot finish yet (its stdout FIFO has no reader, as when Nomad's logmon is
/// slow) must not stall the plugin: InspectTask, TaskStats and a second task's StartTask are
/// answered while it waits, and it completes once the FIFO is read.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_launch_does_not_stall_other_tasks() {
    let test = "a_stalled_launch_does_not_stall_other_tasks";
    let _turn = REAL_TASKS.lock().await;
    let Some((p, _ch, mut d)) = healthy_plugin(test).await else {
        return;
    };
    let alloc = AllocDir::new();
    let fifo = alloc.0.path().join("alloc/logs/stalled.stdout.0");
    if let Err(e) = nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        panic!("mkfifo: {e}");
    }
    let stalled_id = "stall/web/00000001";
    let mut stalled = alloc.task(stalled_id, "/bin/sleep", &["1000"], "stdio rpath");
    stalled.alloc_id = "stall1".into();
    stalled.stdout_path = fifo.display().to_string();
    let mut d_stalled = d.clone();
    let start_stalled = tokio::spawn(async move {
        d_stalled
            .start_task(pb::StartTaskRequest {
                task: Some(stalled),
            })
            .await
            .map(|_| ())
    });
    // Its supervisor exists and waits on the FIFO: the launch is in its wait.
    let state_dir = std::path::Path::new(pledge_core::PluginConfig::DEFAULT_STATE_DIR)
        .join(stalled_id.replace('/', "_"));
    let waiting = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !pledge_backend_linux::runtime::procfs::supervisors_of(&state_dir).is_empty()
    });
    assert!(waiting, "the stalled task's supervisor never appeared");

    // Meanwhile: another task starts, is inspected and sampled.
    let other_id = "stall/web/00000002";
    let mut other = alloc.task(other_id, "/bin/sleep", &["1000"], "stdio rpath");
    other.alloc_id = "stall2".into();
    let r = d
        .start_task(pb::StartTaskRequest { task: Some(other) })
        .await;
    assert!(r.is_ok(), "StartTask while another launch waits: {r:?}");
    let i = d
        .inspect_task(pb::InspectTaskRequest {
            task_id: other_id.into(),
        })
        .await;
    assert!(i.is_ok(), "InspectTask: {i:?}");
    let first = open_stats(&mut d, other_id, 200).await.message().await;
    assert!(matches!(first, Ok(Some(_))), "TaskStats: {first:?}");
    if start_stalled.is_finished() {
        let r = start_stalled.await;
        let (_, err, _) = p.shutdown().await;
        let log: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("launch") || l.contains("task"))
            .collect();
        panic!("the stalled StartTask ended before the FIFO was read ({r:?}): the test proved nothing\n{}", log.join("\n"));
    }

    // Logmon arrives: the stalled launch completes.
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&fifo) {
            let _ = std::io::Read::read_to_end(&mut f, &mut sink);
        }
    });
    match start_stalled.await {
        Ok(Ok(())) => {}
        other => panic!("the stalled StartTask: {other:?}"),
    }
    for id in [stalled_id, other_id] {
        assert_eq!(stop_and_wait(&mut d, id).await, Some(15), "{id}");
        let r = d
            .destroy_task(pb::DestroyTaskRequest {
                task_id: id.into(),
                force: true,
            })
            .await;
        assert!(r.is_ok(), "DestroyTask {id}: {r:?}");
    }
    let _ = reader.join();
    let (status, _, _) = p.shutdown().await;
    assert_eq!(status.code(), Some(0));
}
