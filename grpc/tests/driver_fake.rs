//! The Driver service end to end over a real unix socket and tonic, with the core's state
//! machine and the deterministic fake backend behind the shell: every task RPC, as Nomad's
//! client calls them, including duplicate ids, retryable failures and recovery.

mod common;

use common::{
    connect, encode, exec_stream, object, open_stats, plugin_keys, stdin_frame, stop_and_wait,
    task_keys, Cty,
};
use pledge_backend_fake::{FakeBackend, FaultPlan, FaultyOp};
use pledge_core::{ExecPlan, FailureClass, TaskId};
use pledge_grpc::pb::base::{
    base_plugin_client::BasePluginClient, base_plugin_server::BasePluginServer, SetConfigRequest,
};
use pledge_grpc::pb::drivers::{
    self as pb, driver_client::DriverClient, driver_server::DriverServer,
};
use pledge_grpc::service::base::BaseService;
use pledge_grpc::service::driver::DriverService;
use pledge_grpc::service::exec::{ExecExit, ExecIo, ExecRunner, ExecSession};
use pledge_grpc::shell::Shell;
use pledge_grpc::status::recoverable_detail;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::Code;

/// Runs exec plans directly on the host (no sandbox: the fake has no task processes to join),
/// so the stdio pumps are exercised with real pipes. Records each plan.
#[derive(Default)]
struct HostExec(Mutex<Vec<ExecPlan>>);

struct HostSession {
    child: Mutex<std::process::Child>,
    io: Mutex<Option<ExecIo>>,
}

impl ExecSession for HostSession {
    fn take_io(&self) -> ExecIo {
        self.io
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_default()
    }
    fn resize(&self, _rows: u16, _cols: u16) -> Result<(), String> {
        Err("no tty".into())
    }
    fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
        }
    }
    fn wait(&self) -> ExecExit {
        use std::os::unix::process::ExitStatusExt;
        match self.child.lock().map(|mut c| c.wait()) {
            Ok(Ok(st)) => ExecExit {
                exit_code: st.code().unwrap_or(0),
                signal: st.signal().unwrap_or(0),
            },
            _ => ExecExit {
                exit_code: -1,
                signal: 0,
            },
        }
    }
}

impl ExecRunner for HostExec {
    fn start(&self, plan: &ExecPlan) -> Result<Arc<dyn ExecSession>, String> {
        use std::process::Stdio;
        if let Ok(mut v) = self.0.lock() {
            v.push(plan.clone());
        }
        let mut child = std::process::Command::new(&plan.plan.command)
            .args(&plan.plan.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", plan.plan.command))?;
        let io = ExecIo {
            stdin: child
                .stdin
                .take()
                .map(|s| std::fs::File::from(std::os::fd::OwnedFd::from(s))),
            stdout: child
                .stdout
                .take()
                .map(|s| std::fs::File::from(std::os::fd::OwnedFd::from(s))),
            stderr: child
                .stderr
                .take()
                .map(|s| std::fs::File::from(std::os::fd::OwnedFd::from(s))),
            pty: None,
        };
        Ok(Arc::new(HostSession {
            child: Mutex::new(child),
            io: Mutex::new(Some(io)),
        }))
    }
}

struct Harness {
    shell: Shell<FakeBackend>,
    ch: Channel,
    exec: Arc<HostExec>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    harness_with(|d| d).await
}

async fn harness_with(
    tune: impl FnOnce(DriverService<FakeBackend>) -> DriverService<FakeBackend>,
) -> Harness {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let sock = dir.path().join("p.sock");
    let shell = match Shell::spawn(|_waker| FakeBackend::new(FaultPlan::default())) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let exec = Arc::new(HostExec::default());
    let listener = match tokio::net::UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let runner: Arc<dyn ExecRunner> = exec.clone();
    let server = tonic::transport::Server::builder()
        .add_service(BasePluginServer::new(BaseService::new(shell.clone())))
        .add_service(DriverServer::new(tune(DriverService::new(
            shell.clone(),
            true,
            Some(runner),
        ))))
        .serve_with_incoming(UnixListenerStream::new(listener));
    tokio::spawn(server);
    let ch = connect(sock).await;
    let mut base = BasePluginClient::new(ch.clone());
    let r = base
        .set_config(SetConfigRequest {
            msgpack_config: encode(&object(&plugin_keys(), &[])),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
    Harness {
        shell,
        ch,
        exec,
        _dir: dir,
    }
}

fn task(id: &str) -> pb::TaskConfig {
    let cfg = object(
        &task_keys(),
        &[
            ("command", Cty::str("/bin/sleep")),
            ("args", Cty::strs(&["1000"])),
            ("promises", Cty::str("stdio rpath")),
            ("pids_limit", Cty::Int(64)),
        ],
    );
    pb::TaskConfig {
        id: id.into(),
        name: "web".into(),
        alloc_id: "alloc1".into(),
        job_name: "job".into(),
        task_group_name: "group".into(),
        alloc_dir: "/tmp/nomad-alloc/alloc1".into(),
        stdout_path: "/dev/null".into(),
        stderr_path: "/dev/null".into(),
        msgpack_driver_config: encode(&cfg),
        env: [(
            "NOMAD_TASK_DIR".to_owned(),
            "/tmp/nomad-alloc/alloc1/web/local".to_owned(),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

async fn start(d: &mut DriverClient<Channel>, id: &str) -> Result<pb::TaskHandle, tonic::Status> {
    d.start_task(pb::StartTaskRequest {
        task: Some(task(id)),
    })
    .await
    .map(|r| r.into_inner().handle.unwrap_or_default())
}

fn tid(s: &str) -> TaskId {
    TaskId::parse(s).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn start_wait_inspect_stats_events_destroy() {
    let h = harness().await;
    let mut d = DriverClient::new(h.ch.clone());
    let mut events = match d.task_events(pb::TaskEventsRequest {}).await {
        Ok(s) => s.into_inner(),
        Err(e) => panic!("{e}"),
    };

    let id = "alloc1/web/00000001";
    let handle = match start(&mut d, id).await {
        Ok(hd) => hd,
        Err(e) => panic!("StartTask: {e}"),
    };
    assert!(handle.version >= 1);
    assert_eq!(handle.state, pb::TaskState::Running as i32);
    assert_eq!(handle.config.as_ref().map(|c| c.id.as_str()), Some(id));
    assert_eq!(
        handle
            .config
            .as_ref()
            .map(|c| c.msgpack_driver_config.clone()),
        Some(task(id).msgpack_driver_config)
    );
    let state: serde_json::Value = serde_json::from_slice(&handle.driver_state).unwrap_or_default();
    assert_eq!(
        state["version"], 1,
        "driver_state is the versioned DriverState"
    );
    assert_eq!(
        state["plan"]["command"], "/bin/sleep",
        "self-sufficient: carries the plan"
    );

    // The sandbox report arrives as a task event routed by alloc id + task name.
    let ev = events.message().await.ok().flatten().unwrap_or_default();
    assert_eq!(
        (
            ev.alloc_id.as_str(),
            ev.task_name.as_str(),
            ev.task_id.as_str()
        ),
        ("alloc1", "web", id)
    );
    assert!(ev.message.starts_with("sandbox:"), "{}", ev.message);
    assert!(ev.timestamp.is_some());

    // Duplicate id: rejected, the first task is untouched.
    let dup = start(&mut d, id).await.err();
    assert_eq!(
        dup.as_ref().map(|s| s.code()),
        Some(Code::AlreadyExists),
        "{dup:?}"
    );

    let inspect = d
        .inspect_task(pb::InspectTaskRequest { task_id: id.into() })
        .await
        .map(|r| r.into_inner());
    let status = inspect.ok().and_then(|i| i.task).unwrap_or_default();
    assert_eq!(status.state, pb::TaskState::Running as i32);
    assert!(
        status.started_at.is_some() && status.completed_at.is_some() && status.result.is_some()
    );

    let mut stats = open_stats(&mut d, id, 100).await;
    for _ in 0..2 {
        let s = stats
            .message()
            .await
            .ok()
            .flatten()
            .and_then(|r| r.stats)
            .unwrap_or_default();
        assert!(s.timestamp.is_some());
        assert!(s
            .agg_resource_usage
            .as_ref()
            .is_some_and(|a| a.cpu.is_some() && a.memory.is_some()));
    }

    // Two concurrent waiters, then the process exits with 3: both see it.
    let waiter = |mut c: DriverClient<Channel>| async move {
        c.wait_task(pb::WaitTaskRequest { task_id: id.into() })
            .await
            .map(|r| r.into_inner())
    };
    let w1 = tokio::spawn(waiter(d.clone()));
    let w2 = tokio::spawn(waiter(d.clone()));
    // Give both calls a chance to reach the core first (ordering only; either order must work).
    tokio::task::yield_now().await;
    let exited = h.shell.with_backend(move |b| b.exit(&tid(id), 3)).await;
    assert_eq!(exited, Ok(true));
    for w in [w1, w2] {
        let r = match w.await {
            Ok(Ok(r)) => r,
            other => panic!("WaitTask: {other:?}"),
        };
        assert_eq!(r.result.map(|e| e.exit_code), Some(3));
    }
    // The stats stream ends once the task has exited.
    let mut ended = false;
    for _ in 0..50 {
        match stats.message().await {
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(_)) => {}
            Err(e) => panic!("stats stream error: {e}"),
        }
    }
    assert!(ended, "TaskStats ends after exit");

    // After exit: WaitTask at once, StopTask OK, Inspect says EXITED with result.
    let again = d
        .wait_task(pb::WaitTaskRequest { task_id: id.into() })
        .await
        .map(|r| r.into_inner().result.map(|e| e.exit_code));
    assert_eq!(again.ok().flatten(), Some(3));
    let stop = d
        .stop_task(pb::StopTaskRequest {
            task_id: id.into(),
            timeout: None,
            signal: String::new(),
        })
        .await;
    assert!(stop.is_ok(), "{stop:?}");
    let status = d
        .inspect_task(pb::InspectTaskRequest { task_id: id.into() })
        .await
        .ok()
        .and_then(|r| r.into_inner().task)
        .unwrap_or_default();
    assert_eq!(status.state, pb::TaskState::Exited as i32);
    assert_eq!(status.result.map(|r| r.exit_code), Some(3));

    let destroy = d
        .destroy_task(pb::DestroyTaskRequest {
            task_id: id.into(),
            force: true,
        })
        .await;
    assert!(destroy.is_ok(), "{destroy:?}");
    let gone = d
        .wait_task(pb::WaitTaskRequest { task_id: id.into() })
        .await
        .err();
    assert_eq!(
        gone.map(|s| s.message().to_owned()).as_deref(),
        Some("task not found for given id")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_signal_and_exec() {
    let h = harness().await;
    let mut d = DriverClient::new(h.ch.clone());
    let id = "alloc1/web/00000002";
    assert!(start(&mut d, id).await.is_ok());

    let bad = d
        .signal_task(pb::SignalTaskRequest {
            task_id: id.into(),
            signal: "SIGNOPE".into(),
        })
        .await
        .err();
    assert_eq!(
        bad.as_ref().map(|s| s.code()),
        Some(Code::InvalidArgument),
        "{bad:?}"
    );
    // SIGWINCH is ignored by default, so the task keeps running for the exec below.
    let ok = d
        .signal_task(pb::SignalTaskRequest {
            task_id: id.into(),
            signal: "SIGWINCH".into(),
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");

    // ExecTask: the core's plan reaches the runner; output and result come back.
    let r = d
        .exec_task(pb::ExecTaskRequest {
            task_id: id.into(),
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 7".into(),
            ],
            timeout: None,
        })
        .await
        .map(|r| r.into_inner());
    let r = match r {
        Ok(r) => r,
        Err(e) => panic!("ExecTask: {e}"),
    };
    assert_eq!(r.stdout, b"out\n");
    assert_eq!(r.stderr, b"err\n");
    assert_eq!(r.result.map(|e| e.exit_code), Some(7));
    let plans = h.exec.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(plans.len(), 1);
    assert_eq!(
        plans[0].plan.task.as_str(),
        id,
        "exec runs in the task's sandbox"
    );
    // A timeout kills the command; the result is still set.
    let r = d
        .exec_task(pb::ExecTaskRequest {
            task_id: id.into(),
            command: vec!["/bin/sleep".into(), "1000".into()],
            timeout: Some(prost_types::Duration {
                seconds: 0,
                nanos: 50_000_000,
            }),
        })
        .await
        .map(|r| r.into_inner().result.map(|e| e.signal));
    assert_eq!(r.ok().flatten(), Some(9));
    let empty = d
        .exec_task(pb::ExecTaskRequest {
            task_id: id.into(),
            command: vec![],
            timeout: None,
        })
        .await
        .err();
    assert_eq!(empty.map(|s| s.code()), Some(Code::InvalidArgument));

    // ExecTaskStreaming: setup first, a heartbeat (empty message), then a line of stdin and
    // EOF; output, then exited + result.
    let (out, last) = exec_stream(
        &mut d,
        id,
        &["/bin/sh", "-c", "read line; echo got $line; exit 4"],
        false,
        vec![
            pb::ExecTaskStreamingRequest::default(),
            stdin_frame(b"hello\n", false),
            stdin_frame(b"", true),
        ],
    )
    .await;
    assert!(last.exited, "final frame has exited");
    assert_eq!(last.result.map(|r| r.exit_code), Some(4));
    assert_eq!(out, b"got hello\n");
    // A stream whose first message has no setup is rejected.
    let (tx2, rx2) = tokio::sync::mpsc::channel(1);
    let _ = tx2.send(pb::ExecTaskStreamingRequest::default()).await;
    let e = d
        .exec_task_streaming(tokio_stream::wrappers::ReceiverStream::new(rx2))
        .await
        .err();
    assert_eq!(e.map(|s| s.code()), Some(Code::InvalidArgument));

    // StopTask: the fake's process exits on SIGTERM; StopTask returns after it exited.
    assert_eq!(stop_and_wait(&mut d, id).await, Some(15));
}

#[tokio::test(flavor = "multi_thread")]
async fn retryable_launch_failure_carries_recoverable_error() {
    let h = harness().await;
    let mut d = DriverClient::new(h.ch.clone());
    let _ = h
        .shell
        .with_backend(|b| b.fail_next(FaultyOp::Launch, FailureClass::Retryable))
        .await;
    let e = start(&mut d, "alloc1/web/00000003").await.err();
    let e = match e {
        Some(e) => e,
        None => panic!("launch should fail"),
    };
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(recoverable_detail(&e), Some(true));
    let _ = h
        .shell
        .with_backend(|b| b.fail_next(FaultyOp::Launch, FailureClass::Fatal))
        .await;
    let e = start(&mut d, "alloc1/web/00000004").await.err();
    assert_eq!(e.as_ref().and_then(recoverable_detail), Some(false));
    // The plugin is still up and can start the same id afterwards.
    assert!(start(&mut d, "alloc1/web/00000003").await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_tracked_and_from_driver_state() {
    let h = harness().await;
    let mut d = DriverClient::new(h.ch.clone());
    let id = "alloc1/web/00000005";
    let handle = match start(&mut d, id).await {
        Ok(hd) => hd,
        Err(e) => panic!("{e}"),
    };
    // Already tracked: OK, nothing changes.
    let mut stored = handle.clone();
    if let Some(c) = stored.config.as_mut() {
        // After an agent restart Nomad no longer has the driver config.
        c.msgpack_driver_config.clear();
    }
    let r = d
        .recover_task(pb::RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(stored.clone()),
        })
        .await;
    assert!(r.is_ok(), "{r:?}");

    // A fresh plugin instance (new shell, same "host"): the task is found from driver_state.
    let h2 = harness().await;
    let state: pledge_core::DriverState = match serde_json::from_slice(&handle.driver_state) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let plan = state.plan.clone();
    let _ = h2
        .shell
        .with_backend(move |b| pledge_core::Backend::launch(b, &plan).map(|_| ()))
        .await;
    let mut d2 = DriverClient::new(h2.ch.clone());
    let r = d2
        .recover_task(pb::RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(stored),
        })
        .await;
    assert!(r.is_ok(), "RecoverTask: {r:?}");
    let status = d2
        .inspect_task(pb::InspectTaskRequest { task_id: id.into() })
        .await
        .ok()
        .and_then(|r| r.into_inner().task)
        .unwrap_or_default();
    assert_eq!(status.state, pb::TaskState::Running as i32);
    let _ = h2.shell.with_backend(move |b| b.exit(&tid(id), 0)).await;
    let w = d2
        .wait_task(pb::WaitTaskRequest { task_id: id.into() })
        .await
        .map(|r| r.into_inner().result.map(|e| e.exit_code));
    assert_eq!(w.ok().flatten(), Some(0));

    // A handle this plugin never wrote.
    let bogus = pb::TaskHandle {
        version: 1,
        config: Some(pb::TaskConfig {
            id: "alloc1/web/00000009".into(),
            ..Default::default()
        }),
        state: 1,
        driver_state: b"{}".to_vec(),
    };
    let e = d2
        .recover_task(pb::RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(bogus),
        })
        .await
        .err();
    let msg = e
        .as_ref()
        .map(|s| s.message().to_owned())
        .unwrap_or_default();
    assert_eq!(e.map(|s| s.code()), Some(Code::InvalidArgument));
    assert!(msg.contains("handle.driver_state"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn task_requests_before_set_config_fail_clearly() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let sock = dir.path().join("p.sock");
    let shell = match Shell::spawn(|_w| FakeBackend::new(FaultPlan::default())) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let listener = match tokio::net::UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DriverServer::new(DriverService::new(
                shell.clone(),
                true,
                None,
            )))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let mut d = DriverClient::new(connect(sock).await);
    let e = start(&mut d, "alloc1/web/0000000a").await.err();
    assert_eq!(e.map(|s| s.code()), Some(Code::FailedPrecondition));
}

#[tokio::test(flavor = "multi_thread")]
async fn fingerprint_is_resent_when_the_plugin_config_changes() {
    // The periodic resend is pushed out of reach, so only the config change can produce the
    // second message.
    let h = harness_with(|d| d.with_fingerprint_period(Duration::from_secs(24 * 3600))).await;
    let mut d = DriverClient::new(h.ch.clone());
    let mut fp = match d.fingerprint(pb::FingerprintRequest {}).await {
        Ok(s) => s.into_inner(),
        Err(e) => panic!("{e}"),
    };
    let net_bind = |m: &pb::FingerprintResponse| {
        m.attributes
            .get("driver.pledge.cap.net_bind")
            .and_then(|a| a.value.clone())
    };
    use pledge_grpc::pb::structs::attribute::Value;
    let first = fp.message().await.ok().flatten().unwrap_or_default();
    assert_eq!(
        first.health,
        pb::fingerprint_response::HealthState::Healthy as i32
    );
    assert_eq!(net_bind(&first), Some(Value::BoolVal(false)));
    let mut base = BasePluginClient::new(h.ch.clone());
    let r = base
        .set_config(SetConfigRequest {
            msgpack_config: encode(&object(
                &plugin_keys(),
                &[("allow_net_bind_service", Cty::Bool(true))],
            )),
            nomad_config: None,
            plugin_api_version: "v0.1.0".into(),
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
    // Liveness bound only (the period is a day): without on-change resends this fails.
    let next = tokio::time::timeout(Duration::from_secs(60), fp.message()).await;
    let next = match next {
        Ok(m) => m.ok().flatten().unwrap_or_default(),
        Err(_) => panic!("no fingerprint after the config change"),
    };
    assert_eq!(net_bind(&next), Some(Value::BoolVal(true)));
}
