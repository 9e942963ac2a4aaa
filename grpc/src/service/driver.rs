//! `hashicorp.nomad.plugins.drivers.proto.Driver`: every RPC converts its request, submits it to
//! the shell, and maps the core's reply. Streams (Fingerprint, TaskStats, TaskEvents) are tokio
//! tasks feeding a channel; they stop when Nomad cancels the call.

use super::exec::ExecRunner;
use super::fingerprint::{fingerprint, PERIOD};
use super::BoxStream;
use crate::convert;
use crate::pb::drivers::{self as pb, driver_server::Driver};
use crate::schema;
use crate::shell::{Shell, ShellError};
use crate::status::RpcError;
use pledge_core::config::decode_task_config;
use pledge_core::{cpu_percent, DriverError, PhaseName, Reply, Request, TaskId, Usage};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request as TonicRequest, Response, Status, Streaming};

/// TaskStats interval when Nomad sends none (its default `collection_interval`).
const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest TaskStats interval honoured, so a zero interval cannot spin.
const MIN_STATS_INTERVAL: Duration = Duration::from_millis(100);

/// The Driver service.
pub struct DriverService<B> {
    shell: Shell<B>,
    /// Whether a real task runtime backs the shell (false: StartTask/RecoverTask are Unimplemented).
    runtime: bool,
    exec: Option<Arc<dyn ExecRunner>>,
    fingerprint_period: Duration,
}

impl<B> std::fmt::Debug for DriverService<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverService")
            .field("runtime", &self.runtime)
            .field("exec", &self.exec.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> DriverService<B> {
    /// Serves the Driver API through `shell`. `runtime` tells whether the backend can run
    /// tasks; `exec` runs exec plans.
    pub fn new(shell: Shell<B>, runtime: bool, exec: Option<Arc<dyn ExecRunner>>) -> Self {
        Self {
            shell,
            runtime,
            exec,
            fingerprint_period: PERIOD,
        }
    }

    /// Re-sends the fingerprint every `period` instead of [`PERIOD`] (tests).
    #[must_use]
    pub fn with_fingerprint_period(mut self, period: Duration) -> Self {
        self.fingerprint_period = period;
        self
    }
}

/// Network modes the driver can run tasks in: the host's network, or the group's netns that
/// Nomad creates (we join it; we never create one).
pub fn capabilities() -> pb::DriverCapabilities {
    use pb::network_isolation_spec::NetworkIsolationMode as Mode;
    pb::DriverCapabilities {
        send_signals: true,
        exec: true,
        // NONE: tasks see the host filesystem (narrowed by Landlock, not re-rooted). UNVEIL
        // (1.8+) would make the client bind-mount task dirs under client.mounts_dir for an
        // exec2-style driver; we do not rely on that, and NONE also works on Nomad 1.7.
        fs_isolation: pb::driver_capabilities::FsIsolation::None as i32,
        network_isolation_modes: vec![Mode::Host as i32, Mode::Group as i32],
        must_create_network: false,
        mount_configs: pb::driver_capabilities::MountConfigs::NoMounts as i32,
        disable_log_collection: false,
        dynamic_workload_users: false,
    }
}

fn unexpected(rpc: &'static str) -> Status {
    RpcError::UnexpectedReply(rpc).into()
}

fn shell_err(e: ShellError) -> Status {
    RpcError::Shell(e).into()
}

fn id_of(raw: &str) -> Result<TaskId, Status> {
    // An id that cannot be valid cannot be tracked either: answer as for any unknown id.
    TaskId::parse(raw)
        .map_err(|_| Status::not_found(DriverError::UnknownTask(TaskId::default()).to_string()))
}

impl<B: 'static> DriverService<B> {
    async fn call(&self, body: Request) -> Result<Reply, Status> {
        self.shell.call(body).await.map_err(shell_err)
    }

    async fn exec_plan(
        &self,
        task: TaskId,
        argv: Vec<String>,
        tty: bool,
    ) -> Result<pledge_core::ExecPlan, Status> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(RpcError::BadRequest {
                field: "command".into(),
                reason: "must name a program".into(),
            }
            .into());
        }
        match self.call(Request::Exec { task, argv, tty }).await? {
            Reply::Exec(plan) => Ok(*plan),
            _ => Err(unexpected("ExecTask")),
        }
    }
}

#[tonic::async_trait]
impl<B: 'static> Driver for DriverService<B> {
    async fn task_config_schema(
        &self,
        _req: TonicRequest<pb::TaskConfigSchemaRequest>,
    ) -> Result<Response<pb::TaskConfigSchemaResponse>, Status> {
        Ok(Response::new(pb::TaskConfigSchemaResponse {
            spec: Some(schema::task_config_spec()),
        }))
    }

    async fn capabilities(
        &self,
        _req: TonicRequest<pb::CapabilitiesRequest>,
    ) -> Result<Response<pb::CapabilitiesResponse>, Status> {
        Ok(Response::new(pb::CapabilitiesResponse {
            capabilities: Some(capabilities()),
        }))
    }

    type FingerprintStream = BoxStream<pb::FingerprintResponse>;

    async fn fingerprint(
        &self,
        _req: TonicRequest<pb::FingerprintRequest>,
    ) -> Result<Response<Self::FingerprintStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let shell = self.shell.clone();
        let runtime = self.runtime;
        let period = self.fingerprint_period;
        tokio::spawn(async move {
            let mut config = shell.config();
            let mut last: Option<pb::FingerprintResponse> = None;
            loop {
                let host = match shell.probe().await {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = tx.send(Err(shell_err(e))).await;
                        return;
                    }
                };
                let cfg = config.borrow_and_update().clone();
                let fp = fingerprint(&host, cfg.as_ref(), runtime);
                if last.as_ref() != Some(&fp) {
                    tracing::debug!(health = fp.health, description = %fp.health_description, "fingerprint");
                }
                if tx.send(Ok(fp.clone())).await.is_err() {
                    return; // Nomad closed the stream.
                }
                last = Some(fp);
                tokio::select! {
                    () = tokio::time::sleep(period) => {}
                    changed = config.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn recover_task(
        &self,
        req: TonicRequest<pb::RecoverTaskRequest>,
    ) -> Result<Response<pb::RecoverTaskResponse>, Status> {
        let req = req.into_inner();
        let handle = req.handle.ok_or_else(|| {
            Status::from(RpcError::BadRequest {
                field: "handle".into(),
                reason: "missing".into(),
            })
        })?;
        // Nomad never sets task_id; the id is the one in the handle's config.
        let raw_id = handle
            .config
            .as_ref()
            .map(|c| c.id.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or(req.task_id);
        let task = convert::task_id("handle.config.id", &raw_id).map_err(Status::from)?;
        match self.shell.call(Request::Inspect(task.clone())).await {
            Ok(_) => return Ok(Response::new(pb::RecoverTaskResponse {})),
            Err(ShellError::Driver(DriverError::UnknownTask(_))) => {}
            Err(e) => return Err(shell_err(e)),
        }
        if !self.runtime {
            return Err(RpcError::Unimplemented("RecoverTask").into());
        }
        let state = convert::driver_state(&handle).map_err(Status::from)?;
        match self
            .call(Request::Recover {
                task: task.clone(),
                state: Box::new(state),
            })
            .await?
        {
            Reply::Recovered => {
                tracing::info!(task = %task, "task recovered");
                Ok(Response::new(pb::RecoverTaskResponse {}))
            }
            _ => Err(unexpected("RecoverTask")),
        }
    }

    async fn start_task(
        &self,
        req: TonicRequest<pb::StartTaskRequest>,
    ) -> Result<Response<pb::StartTaskResponse>, Status> {
        let task = req.into_inner().task.ok_or_else(|| {
            Status::from(RpcError::BadRequest {
                field: "task".into(),
                reason: "missing".into(),
            })
        })?;
        let spec = convert::task_spec(&task).map_err(Status::from)?;
        let config = decode_task_config(&task.msgpack_driver_config)
            .map_err(|e| Status::from(RpcError::from(DriverError::InvalidConfig(e))))?;
        if !self.runtime {
            // Validate anyway, so a bad config is reported as such, not as Unimplemented.
            let plugin = self.shell.config().borrow().clone();
            let plugin =
                plugin.ok_or_else(|| Status::from(RpcError::from(DriverError::NotConfigured)))?;
            let host = self.shell.probe().await.map_err(shell_err)?;
            config
                .validate(&plugin, &host)
                .map_err(|e| Status::from(RpcError::from(DriverError::InvalidConfig(e))))?;
            return Err(RpcError::Unimplemented("StartTask").into());
        }
        let id = spec.id.clone();
        let reply = self
            .call(Request::Start {
                spec: Box::new(spec),
                config: Box::new(config),
            })
            .await
            .inspect_err(
                |s| tracing::warn!(task = %id, error = %s.message(), "StartTask failed"),
            )?;
        match reply {
            Reply::Started(state) => {
                tracing::info!(task = %id, pid = state.process.pid, "task started");
                let handle = convert::task_handle(task, &state).map_err(Status::from)?;
                Ok(Response::new(pb::StartTaskResponse {
                    handle: Some(handle),
                    ..Default::default()
                }))
            }
            _ => Err(unexpected("StartTask")),
        }
    }

    async fn wait_task(
        &self,
        req: TonicRequest<pb::WaitTaskRequest>,
    ) -> Result<Response<pb::WaitTaskResponse>, Status> {
        let task = id_of(&req.into_inner().task_id)?;
        match self.call(Request::Wait(task)).await? {
            Reply::Exited(r) => Ok(Response::new(pb::WaitTaskResponse {
                result: Some(convert::exit_result(&r)),
                err: r.err.unwrap_or_default(),
            })),
            _ => Err(unexpected("WaitTask")),
        }
    }

    async fn stop_task(
        &self,
        req: TonicRequest<pb::StopTaskRequest>,
    ) -> Result<Response<pb::StopTaskResponse>, Status> {
        let req = req.into_inner();
        let task = id_of(&req.task_id)?;
        match self
            .call(Request::Stop {
                task,
                timeout: convert::duration(req.timeout.as_ref()),
                signal: req.signal,
            })
            .await?
        {
            Reply::Stopped => Ok(Response::new(pb::StopTaskResponse {})),
            _ => Err(unexpected("StopTask")),
        }
    }

    async fn destroy_task(
        &self,
        req: TonicRequest<pb::DestroyTaskRequest>,
    ) -> Result<Response<pb::DestroyTaskResponse>, Status> {
        let req = req.into_inner();
        let task = id_of(&req.task_id)?;
        match self
            .call(Request::Destroy {
                task,
                force: req.force,
            })
            .await?
        {
            Reply::Destroyed => Ok(Response::new(pb::DestroyTaskResponse {})),
            _ => Err(unexpected("DestroyTask")),
        }
    }

    async fn inspect_task(
        &self,
        req: TonicRequest<pb::InspectTaskRequest>,
    ) -> Result<Response<pb::InspectTaskResponse>, Status> {
        let task = id_of(&req.into_inner().task_id)?;
        match self.call(Request::Inspect(task)).await? {
            Reply::Inspected(view) => Ok(Response::new(pb::InspectTaskResponse {
                task: Some(convert::task_status(&view)),
                driver: Some(pb::TaskDriverStatus {
                    attributes: view.attributes.clone().into_iter().collect(),
                }),
                network_override: None,
            })),
            _ => Err(unexpected("InspectTask")),
        }
    }

    type TaskStatsStream = BoxStream<pb::TaskStatsResponse>;

    async fn task_stats(
        &self,
        req: TonicRequest<pb::TaskStatsRequest>,
    ) -> Result<Response<Self::TaskStatsStream>, Status> {
        let req = req.into_inner();
        let task = id_of(&req.task_id)?;
        let interval = match convert::duration(req.collection_interval.as_ref()) {
            Duration::ZERO => DEFAULT_STATS_INTERVAL,
            d => d.max(MIN_STATS_INTERVAL),
        };
        // The first sample is taken now, so an unknown id fails the call itself.
        let first = stats_sample(&self.shell, &task).await.map_err(shell_err)?;
        // CPU counters start at zero when the task starts, so the first sample's percentage
        // is measured against that (the core's baseline), not left at 0.
        let baseline = match self.shell.call(Request::Inspect(task.clone())).await {
            Ok(Reply::Inspected(v)) => v.started_at.map(Usage::baseline),
            _ => None,
        };
        let mhz_per_core = self
            .shell
            .probe()
            .await
            .map(|h| h.cpu_mhz_per_core)
            .unwrap_or(0);
        let (tx, rx) = mpsc::channel(2);
        let shell = self.shell.clone();
        tokio::spawn(async move {
            let mut prev: Option<Usage> = baseline;
            let mut next = Some(first);
            loop {
                let usage = match next.take() {
                    Some(u) => Some(u),
                    None => match stats_sample(&shell, &task).await {
                        Ok(u) => Some(u),
                        // The task exited or was destroyed: the stream ends normally.
                        Err(ShellError::Driver(
                            DriverError::UnknownTask(_) | DriverError::WrongState { .. },
                        )) => return,
                        Err(ShellError::Stopped) => return,
                        // A failed sample is skipped; Nomad would only reopen the stream.
                        Err(e) => {
                            tracing::warn!(task = %task, error = %e, "stats sample failed");
                            None
                        }
                    },
                };
                if let Some(usage) = usage {
                    let cpu = prev
                        .as_ref()
                        .map(|p| cpu_percent(p, &usage))
                        .unwrap_or_default();
                    let stats =
                        convert::task_stats(&task, &usage, cpu, mhz_per_core, SystemTime::now());
                    prev = Some(usage);
                    if tx
                        .send(Ok(pb::TaskStatsResponse { stats: Some(stats) }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = tx.closed() => return,
                }
                if task_exited(&shell, &task).await {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type TaskEventsStream = BoxStream<pb::DriverTaskEvent>;

    async fn task_events(
        &self,
        _req: TonicRequest<pb::TaskEventsRequest>,
    ) -> Result<Response<Self::TaskEventsStream>, Status> {
        let mut events = self.shell.subscribe_events();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = events.recv() => match ev {
                        Ok(ev) => {
                            if tx.send(Ok(convert::task_event(&ev, SystemTime::now()))).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(dropped = n, "TaskEvents reader too slow; events dropped");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn signal_task(
        &self,
        req: TonicRequest<pb::SignalTaskRequest>,
    ) -> Result<Response<pb::SignalTaskResponse>, Status> {
        let req = req.into_inner();
        let task = id_of(&req.task_id)?;
        match self
            .call(Request::Signal {
                task,
                signal: req.signal,
            })
            .await?
        {
            Reply::Signalled => Ok(Response::new(pb::SignalTaskResponse {})),
            _ => Err(unexpected("SignalTask")),
        }
    }

    async fn exec_task(
        &self,
        req: TonicRequest<pb::ExecTaskRequest>,
    ) -> Result<Response<pb::ExecTaskResponse>, Status> {
        let req = req.into_inner();
        let task = id_of(&req.task_id)?;
        let timeout = convert::duration(req.timeout.as_ref());
        let plan = self.exec_plan(task, req.command, false).await?;
        let runner = self
            .exec
            .clone()
            .ok_or_else(|| Status::from(RpcError::Unimplemented("ExecTask")))?;
        let out = tokio::task::spawn_blocking(move || {
            runner
                .start(&plan)
                .map(|session| super::exec::collect(&session, timeout))
        })
        .await
        .map_err(|e| Status::from(RpcError::Internal(format!("exec worker: {e}"))))?
        .map_err(|e| Status::from(RpcError::Internal(e)))?;
        Ok(Response::new(pb::ExecTaskResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            result: Some(pb::ExitResult {
                exit_code: out.exit.exit_code,
                signal: out.exit.signal,
                oom_killed: false,
            }),
        }))
    }

    type ExecTaskStreamingStream = BoxStream<pb::ExecTaskStreamingResponse>;

    async fn exec_task_streaming(
        &self,
        req: TonicRequest<Streaming<pb::ExecTaskStreamingRequest>>,
    ) -> Result<Response<Self::ExecTaskStreamingStream>, Status> {
        let mut inbound = req.into_inner();
        let first = inbound
            .next()
            .await
            .ok_or_else(|| bad_setup("stream ended before setup"))??;
        let setup = first
            .setup
            .ok_or_else(|| bad_setup("first message must carry setup"))?;
        let task = id_of(&setup.task_id)?;
        let plan = self.exec_plan(task, setup.command, setup.tty).await?;
        let runner = self
            .exec
            .clone()
            .ok_or_else(|| Status::from(RpcError::Unimplemented("ExecTaskStreaming")))?;
        let session = tokio::task::spawn_blocking(move || runner.start(&plan))
            .await
            .map_err(|e| Status::from(RpcError::Internal(format!("exec worker: {e}"))))?
            .map_err(|e| Status::from(RpcError::Internal(e)))?;
        let (tx, rx) = mpsc::channel(16);
        super::exec::stream(session, inbound, tx);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn create_network(
        &self,
        _req: TonicRequest<pb::CreateNetworkRequest>,
    ) -> Result<Response<pb::CreateNetworkResponse>, Status> {
        Err(Status::unimplemented(
            "CreateNetwork: this driver joins the network namespace Nomad creates (must_create_network = false)",
        ))
    }

    async fn destroy_network(
        &self,
        _req: TonicRequest<pb::DestroyNetworkRequest>,
    ) -> Result<Response<pb::DestroyNetworkResponse>, Status> {
        Err(Status::unimplemented(
            "DestroyNetwork: this driver does not create network namespaces (must_create_network = false)",
        ))
    }

    async fn init(
        &self,
        _req: TonicRequest<pb::InitRequest>,
    ) -> Result<Response<pb::InitResponse>, Status> {
        // Everything is ready once SetConfig (fresh launch) or the reattach happened.
        tracing::debug!("Init");
        Ok(Response::new(pb::InitResponse {}))
    }

    async fn shutdown(
        &self,
        _req: TonicRequest<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        // Tasks must outlive the plugin (Nomad recovers them later); nothing to stop here.
        // The process exits on go-plugin's GRPCController/Shutdown, which follows.
        tracing::info!("Driver/Shutdown: tasks keep running");
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}

fn bad_setup(reason: &str) -> Status {
    RpcError::BadRequest {
        field: "setup".into(),
        reason: reason.into(),
    }
    .into()
}

async fn stats_sample<B: 'static>(shell: &Shell<B>, task: &TaskId) -> Result<Usage, ShellError> {
    match shell.call(Request::Stats(task.clone())).await {
        Ok(Reply::Stats(u)) => Ok(*u),
        Ok(_) => Err(ShellError::Stopped),
        Err(e) => Err(e),
    }
}

async fn task_exited<B: 'static>(shell: &Shell<B>, task: &TaskId) -> bool {
    match shell.call(Request::Inspect(task.clone())).await {
        Ok(Reply::Inspected(v)) => matches!(v.phase, PhaseName::Exited | PhaseName::Destroying),
        _ => true,
    }
}
