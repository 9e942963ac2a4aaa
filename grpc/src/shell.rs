//! The shell: ONE OS thread that owns the core's [`Driver`] and the backend. Handlers send it
//! requests over a channel with a oneshot for the reply; the backend's waker sends a wake-up
//! when observations are pending; deadlines are `recv_timeout(poll_timeout)`. After every input
//! it runs the core's shared drive loop, [`settle`], so production runs exactly what the sim
//! checks. Handlers never touch driver state.

use pledge_core::lifecycle::drive::{settle, Sink};
use pledge_core::{
    finish_launch, Backend, Driver, DriverError, HostFacts, Input, LaunchWait, OpId, PluginConfig,
    Reply, ReqId, Request, SandboxPlan, TaskEvent,
};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, oneshot, watch};

/// Bound on outputs handled per settle; hitting it is a liveness bug worth an error log.
const MAX_STEPS: usize = 100_000;
/// Buffered task events per TaskEvents subscriber before the slowest one lags.
const EVENT_BUFFER: usize = 1024;

/// The waker the backend calls when observations are pending.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A closure run on the shell thread with the backend (tests and world control).
type BackendFn<B> = Box<dyn FnOnce(&mut B) + Send>;

enum ShellMsg<B> {
    Request {
        body: Request,
        reply: oneshot::Sender<Result<Reply, DriverError>>,
    },
    Probe(oneshot::Sender<HostFacts>),
    WithBackend(BackendFn<B>),
    Wake,
    /// A launch's wait, run on its own thread, returned (see [`ShellSink::wait_elsewhere`]).
    Waited {
        op: OpId,
        plan: Box<SandboxPlan>,
        waited: Box<dyn std::any::Any + Send>,
    },
    Stop,
}

/// Why a request got no answer from the core.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// The shell thread has stopped (it panicked or the plugin is shutting down).
    #[error("driver shell is not running")]
    Stopped,
    /// The core rejected the request.
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// A handle on the shell thread; cheap to clone.
pub struct Shell<B> {
    tx: mpsc::Sender<ShellMsg<B>>,
    events: broadcast::Sender<TaskEvent>,
    config: watch::Receiver<Option<PluginConfig>>,
}

impl<B> Clone for Shell<B> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            events: self.events.clone(),
            config: self.config.clone(),
        }
    }
}

impl<B> std::fmt::Debug for Shell<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell").finish_non_exhaustive()
    }
}

struct ShellSink<'a, B> {
    waiting: &'a mut BTreeMap<ReqId, oneshot::Sender<Result<Reply, DriverError>>>,
    events: &'a broadcast::Sender<TaskEvent>,
    config: &'a watch::Sender<Option<PluginConfig>>,
    /// Where launch-wait threads send what they waited for.
    shell: &'a mpsc::Sender<ShellMsg<B>>,
}

impl<B: 'static> Sink for ShellSink<'_, B> {
    /// A launch's wait for its supervisor's report (milliseconds, up to the launch timeout
    /// when a task's log FIFO has no reader) runs on a thread of its own, so this thread keeps
    /// serving every other task and request meanwhile.
    fn wait_elsewhere(
        &mut self,
        op: OpId,
        plan: &SandboxPlan,
        wait: LaunchWait,
    ) -> Option<LaunchWait> {
        let shell = self.shell.clone();
        let plan = Box::new(plan.clone());
        let (tx, rx) = mpsc::channel::<LaunchWait>();
        let spawned = std::thread::Builder::new()
            .name("pledge-launch".into())
            .spawn(move || {
                if let Ok(wait) = rx.recv() {
                    let waited = wait();
                    // The shell may have stopped (plugin shutdown): nothing left to tell.
                    let _ = shell.send(ShellMsg::Waited { op, plan, waited });
                }
            });
        match spawned {
            Ok(_) => match tx.send(wait) {
                Ok(()) => None,
                Err(mpsc::SendError(wait)) => Some(wait),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no thread for a launch; waiting on the shell thread");
                Some(wait)
            }
        }
    }

    fn reply(&mut self, req: ReqId, reply: Result<Reply, DriverError>) {
        if let Ok(Reply::Configured(cfg)) = &reply {
            self.config.send_replace(Some((**cfg).clone()));
        }
        match self.waiting.remove(&req) {
            // The caller may have given up (Nomad cancelled the call); that is fine.
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => tracing::warn!(%req, "reply for an unknown request"),
        }
    }

    fn event(&mut self, event: TaskEvent) {
        tracing::debug!(task = %event.task, message = %event.message, "task event");
        // No subscriber yet (TaskEvents not open) is not an error.
        let _ = self.events.send(event);
    }
}

/// A shell whose channel exists but whose thread has not started: hand out [`Waker`]s (the
/// backend needs one to be constructed), then [`ShellStarter::start`] with the backend.
pub struct ShellStarter<B> {
    tx: mpsc::Sender<ShellMsg<B>>,
    rx: mpsc::Receiver<ShellMsg<B>>,
}

impl<B: Backend + 'static> ShellStarter<B> {
    /// A waker that makes the shell drain the backend's observations.
    pub fn waker(&self) -> Waker {
        let wake_tx = self.tx.clone();
        Arc::new(move || {
            let _ = wake_tx.send(ShellMsg::Wake);
        })
    }

    /// Starts the shell thread with `backend`.
    pub fn start(self, backend: B) -> std::io::Result<Shell<B>>
    where
        B: Send,
    {
        self.start_with(move |_| backend)
    }

    fn start_with<F>(self, make_backend: F) -> std::io::Result<Shell<B>>
    where
        F: FnOnce(Waker) -> B + Send + 'static,
    {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (config_tx, config) = watch::channel(None);
        let waker = self.waker();
        let events_for_thread = events.clone();
        let rx = self.rx;
        let to_self = self.tx.clone();
        std::thread::Builder::new()
            .name("pledge-shell".into())
            .spawn(move || {
                let backend = make_backend(waker);
                run(backend, rx, to_self, events_for_thread, config_tx);
            })?;
        Ok(Shell {
            tx: self.tx,
            events,
            config,
        })
    }
}

impl<B: Backend + 'static> Shell<B> {
    /// A shell channel not yet served by a thread (see [`ShellStarter`]).
    pub fn prepare() -> ShellStarter<B> {
        let (tx, rx) = mpsc::channel::<ShellMsg<B>>();
        ShellStarter { tx, rx }
    }

    /// Starts the shell thread. `make_backend` runs on that thread with the waker the backend
    /// must call when it has observations pending; the backend never leaves the thread.
    pub fn spawn<F>(make_backend: F) -> std::io::Result<Self>
    where
        F: FnOnce(Waker) -> B + Send + 'static,
    {
        Self::prepare().start_with(make_backend)
    }
}

impl<B: 'static> Shell<B> {
    /// Submits `body` and waits for the core's reply.
    pub async fn call(&self, body: Request) -> Result<Reply, ShellError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(ShellMsg::Request { body, reply })
            .map_err(|_| ShellError::Stopped)?;
        match rx.await {
            Ok(r) => r.map_err(ShellError::Driver),
            Err(_) => Err(ShellError::Stopped),
        }
    }

    /// What the host can enforce, probed now by the backend.
    pub async fn probe(&self) -> Result<HostFacts, ShellError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(ShellMsg::Probe(reply))
            .map_err(|_| ShellError::Stopped)?;
        rx.await.map_err(|_| ShellError::Stopped)
    }

    /// Runs `f` on the shell thread with the backend, then settles the driver (a backend
    /// change may have produced observations). For tests and the simulation-style harnesses.
    pub async fn with_backend<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut B) -> R + Send + 'static,
    ) -> Result<R, ShellError> {
        let (reply, rx) = oneshot::channel();
        let job: BackendFn<B> = Box::new(move |b| {
            let _ = reply.send(f(b));
        });
        self.tx
            .send(ShellMsg::WithBackend(job))
            .map_err(|_| ShellError::Stopped)?;
        rx.await.map_err(|_| ShellError::Stopped)
    }

    /// A new subscriber to the task events the core emits.
    pub fn subscribe_events(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    /// The plugin config of the last successful SetConfig (`None` before it).
    pub fn config(&self) -> watch::Receiver<Option<PluginConfig>> {
        self.config.clone()
    }

    /// Asks the thread to stop (tasks are not touched).
    pub fn stop(&self) {
        let _ = self.tx.send(ShellMsg::Stop);
    }
}

fn run<B: Backend + 'static>(
    mut backend: B,
    rx: mpsc::Receiver<ShellMsg<B>>,
    to_self: mpsc::Sender<ShellMsg<B>>,
    events: broadcast::Sender<TaskEvent>,
    config: watch::Sender<Option<PluginConfig>>,
) {
    let mut driver = Driver::new(backend.probe());
    let mut waiting = BTreeMap::new();
    let mut next_req = 0u64;
    let mut now = Instant::now;
    let mut configured_state_dir: Option<std::path::PathBuf> = None;
    loop {
        let msg = match driver.poll_timeout() {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(mpsc::RecvError) => return,
            },
        };
        match msg {
            Some(ShellMsg::Request { body, reply }) => {
                next_req += 1;
                let req = ReqId(next_req);
                waiting.insert(req, reply);
                driver.handle(Instant::now(), Input::Request { req, body });
            }
            Some(ShellMsg::Probe(reply)) => {
                let _ = reply.send(backend.probe());
            }
            Some(ShellMsg::WithBackend(f)) => f(&mut backend),
            // settle() below drains the observations.
            Some(ShellMsg::Wake) => {}
            Some(ShellMsg::Waited { op, plan, waited }) => {
                let outcome = finish_launch(&mut backend, &plan, waited);
                driver.handle(Instant::now(), Input::Completed { op, outcome });
            }
            Some(ShellMsg::Stop) => return,
            None => driver.handle(Instant::now(), Input::Tick),
        }
        let mut sink = ShellSink {
            waiting: &mut waiting,
            events: &events,
            config: &config,
            shell: &to_self,
        };
        if let Err(steps) = settle(&mut driver, &mut backend, &mut now, &mut sink, MAX_STEPS) {
            tracing::error!(steps, "driver did not settle; continuing");
        }
        // A SetConfig took effect: the backend learns where task state lives.
        if config.borrow().as_ref().map(|c| &c.state_dir) != configured_state_dir.as_ref() {
            if let Some(cfg) = config.borrow().clone() {
                configured_state_dir = Some(cfg.state_dir.clone());
                backend.configured(&cfg);
            }
        }
    }
}
