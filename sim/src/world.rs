//! [`World`]: the system under test. The real [`Driver`], the [`FakeBackend`], a virtual clock
//! and the shared drive loop ([`pledge_core::lifecycle::drive::settle`]), plus everything the
//! checkers need to look back at: requests, replies, events and a readable trace.

use pledge_backend_fake::FakeBackend;
use pledge_core::lifecycle::drive::{self, Sink};
use pledge_core::{
    Backend, Command, Driver, DriverError, DriverState, RawPluginConfig, Reply, ReqId, Request,
    TaskEvent, TaskId,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Outputs one [`World::settle`] may handle before the run counts as stuck (a liveness failure:
/// the driver keeps producing work without an input).
pub const MAX_SETTLE_STEPS: usize = 10_000;

/// The simulation stopped making progress.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stuck {
    /// The drive loop hit its step bound.
    #[error("drive loop did not settle within {0} outputs")]
    TooManySteps(usize),
    /// A timer stays due after the driver was ticked at its time.
    #[error("timer due at +{0:?} is still pending after a tick at +{1:?}")]
    TimerNotFired(Duration, Duration),
    /// `advance` met more timers than it may fire in one call.
    #[error("more than {0} timer firings in one advance")]
    TimerStorm(usize),
}

/// One submitted request, as the checkers see it.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// Virtual time of submission.
    pub at: Duration,
    /// The request.
    pub body: Request,
    /// The plugin generation (restart count) that received it.
    pub generation: u32,
}

/// One delivered reply.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// Virtual time of delivery.
    pub at: Duration,
    /// The answer.
    pub reply: Result<Reply, DriverError>,
}

/// The whole simulated system.
pub struct World {
    /// The real state machine.
    pub driver: Driver,
    /// The fake kernel.
    pub backend: FakeBackend,
    /// Virtual time zero.
    pub epoch: Instant,
    /// Virtual now, as an offset from `epoch`.
    pub now: Duration,
    /// Every request ever submitted.
    pub requests: BTreeMap<ReqId, Submitted>,
    /// Every reply, per request (a well-behaved driver gives exactly one each).
    pub replies: BTreeMap<ReqId, Vec<Delivered>>,
    /// Requests whose plugin crashed before answering (Nomad sees the connection drop).
    pub abandoned: BTreeSet<ReqId>,
    /// Replies delivered since the checker last looked (it drains this).
    pub fresh: Vec<ReqId>,
    /// Requests that got a second (or later) reply: a broken driver.
    pub double_replies: Vec<ReqId>,
    /// Task events.
    pub events: Vec<TaskEvent>,
    /// What Nomad persisted: the driver state of every task started and not yet destroyed.
    pub handles: BTreeMap<TaskId, DriverState>,
    /// Plugin restarts so far.
    pub generation: u32,
    /// Readable history (`+1.250s cmd KillAll t2`), printed on failure and hashed for the
    /// determinism check.
    pub trace: Vec<String>,
    /// The plugin config sent with every SetConfig.
    pub plugin_config: RawPluginConfig,
    next_req: u64,
}

/// Formats a virtual time like `+12.345s`.
pub fn stamp(d: Duration) -> String {
    format!("+{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// A one-line summary of a request for the trace (plans and configs are long).
pub fn summarize_request(r: &Request) -> String {
    match r {
        Request::SetConfig(_) => "SetConfig".to_string(),
        Request::Start { spec, config } => format!(
            "Start {} command={:?} promises={:?}",
            spec.id, config.command, config.promises
        ),
        Request::Recover { task, .. } => format!("Recover {task}"),
        Request::Wait(t) => format!("Wait {t}"),
        Request::Stop {
            task,
            timeout,
            signal,
        } => format!("Stop {task} timeout={timeout:?} signal={signal:?}"),
        Request::Destroy { task, force } => format!("Destroy {task} force={force}"),
        Request::Inspect(t) => format!("Inspect {t}"),
        Request::Signal { task, signal } => format!("Signal {task} {signal:?}"),
        Request::Stats(t) => format!("Stats {t}"),
        Request::Exec { task, argv, tty } => format!("Exec {task} {argv:?} tty={tty}"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// A one-line summary of a reply.
pub fn summarize_reply(r: &Result<Reply, DriverError>) -> String {
    match r {
        Ok(Reply::Configured(_)) => "Configured".to_string(),
        Ok(Reply::Started(s)) => format!("Started pid={}", s.process.pid),
        Ok(Reply::Inspected(v)) => format!("Inspected {:?} result={:?}", v.phase, v.result),
        Ok(Reply::Stats(u)) => format!("Stats pids={:?}", u.pids),
        Ok(Reply::Exec(p)) => format!("Exec target_pid={}", p.target_pid),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("Err({e})"),
    }
}

/// A one-line summary of a backend command.
pub fn summarize_command(c: &Command) -> String {
    match c {
        Command::Launch(p) => format!("Launch {}", p.task),
        Command::Signal { task, signal } => format!("Signal {task} {signal}"),
        Command::KillAll { task } => format!("KillAll {task}"),
        Command::Reattach { state } => format!("Reattach {}", state.plan.task),
        Command::Sample { task } => format!("Sample {task}"),
        Command::Cleanup { task } => format!("Cleanup {task}"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Where the drive loop delivers replies and events: straight into the world's records.
struct WorldSink<'a> {
    now: Duration,
    requests: &'a BTreeMap<ReqId, Submitted>,
    replies: &'a mut BTreeMap<ReqId, Vec<Delivered>>,
    fresh: &'a mut Vec<ReqId>,
    double_replies: &'a mut Vec<ReqId>,
    handles: &'a mut BTreeMap<TaskId, DriverState>,
    events: &'a mut Vec<TaskEvent>,
    trace: &'a mut Vec<String>,
}

impl Sink for WorldSink<'_> {
    fn reply(&mut self, req: ReqId, reply: Result<Reply, DriverError>) {
        self.trace.push(format!(
            "{} reply {req} {}",
            stamp(self.now),
            summarize_reply(&reply)
        ));
        // Nomad's bookkeeping: a started task's handle is persisted, a destroyed one dropped.
        match (self.requests.get(&req).map(|s| &s.body), &reply) {
            (Some(Request::Start { spec, .. }), Ok(Reply::Started(state))) => {
                self.handles.insert(spec.id.clone(), (**state).clone());
            }
            (Some(Request::Destroy { task, .. }), Ok(Reply::Destroyed)) => {
                self.handles.remove(task);
            }
            _ => {}
        }
        let all = self.replies.entry(req).or_default();
        if !all.is_empty() {
            self.double_replies.push(req);
        }
        all.push(Delivered {
            at: self.now,
            reply,
        });
        self.fresh.push(req);
    }

    fn event(&mut self, event: TaskEvent) {
        self.trace.push(format!(
            "{} event {} {}",
            stamp(self.now),
            event.task,
            event.message
        ));
        self.events.push(event);
    }

    fn before_command(&mut self, cmd: &Command) {
        self.trace.push(format!(
            "{} cmd {}",
            stamp(self.now),
            summarize_command(cmd)
        ));
    }
}

impl World {
    /// A configured world: a new driver for the fake's host, SetConfig applied.
    pub fn new(mut backend: FakeBackend) -> Result<Self, Stuck> {
        let host = backend.probe();
        let mut w = Self {
            driver: Driver::new(host),
            backend,
            epoch: Instant::now(),
            now: Duration::ZERO,
            requests: BTreeMap::new(),
            replies: BTreeMap::new(),
            abandoned: BTreeSet::new(),
            fresh: Vec::new(),
            double_replies: Vec::new(),
            events: Vec::new(),
            handles: BTreeMap::new(),
            generation: 0,
            trace: Vec::new(),
            // Not the defaults, so a driver that ignored SetConfig would show.
            plugin_config: RawPluginConfig {
                state_dir: Some("/run/pledge-sim".to_string()),
                ..RawPluginConfig::default()
            },
            next_req: 0,
        };
        w.configure()?;
        Ok(w)
    }

    fn configure(&mut self) -> Result<(), Stuck> {
        let cfg = Box::new(self.plugin_config.clone());
        self.submit(Request::SetConfig(cfg));
        self.settle()
    }

    /// The virtual now as an `Instant`.
    pub fn instant(&self) -> Instant {
        self.epoch + self.now
    }

    /// Hands `body` to the driver (it is not drained: call [`World::settle`]).
    pub fn submit(&mut self, body: Request) -> ReqId {
        self.next_req += 1;
        let req = ReqId(self.next_req);
        self.trace.push(format!(
            "{} req {req} {}",
            stamp(self.now),
            summarize_request(&body)
        ));
        self.requests.insert(
            req,
            Submitted {
                at: self.now,
                body: body.clone(),
                generation: self.generation,
            },
        );
        let now = self.instant();
        self.driver
            .handle(now, pledge_core::Input::Request { req, body });
        req
    }

    /// Submits and settles.
    pub fn call(&mut self, body: Request) -> Result<ReqId, Stuck> {
        let req = self.submit(body);
        self.settle()?;
        Ok(req)
    }

    /// Runs the shared drive loop until the driver is quiet: no output, no observation, and no
    /// timer due at the current time. Time does not move.
    pub fn settle(&mut self) -> Result<(), Stuck> {
        for _ in 0..MAX_SETTLE_STEPS {
            self.drain_once()?;
            let now = self.instant();
            match self.driver.poll_timeout() {
                Some(t) if t <= now => {
                    self.trace
                        .push(format!("{} tick (timer due)", stamp(self.now)));
                    self.driver.handle(now, pledge_core::Input::Tick);
                    self.drain_once()?;
                    if let Some(t2) = self.driver.poll_timeout() {
                        if t2 <= t {
                            return Err(Stuck::TimerNotFired(
                                t2.saturating_duration_since(self.epoch),
                                self.now,
                            ));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
        Err(Stuck::TimerStorm(MAX_SETTLE_STEPS))
    }

    fn drain_once(&mut self) -> Result<(), Stuck> {
        let now_i = self.instant();
        let mut now = move || now_i;
        let mut sink = WorldSink {
            now: self.now,
            requests: &self.requests,
            replies: &mut self.replies,
            fresh: &mut self.fresh,
            double_replies: &mut self.double_replies,
            handles: &mut self.handles,
            events: &mut self.events,
            trace: &mut self.trace,
        };
        drive::settle(
            &mut self.driver,
            &mut self.backend,
            &mut now,
            &mut sink,
            MAX_SETTLE_STEPS,
        )
        .map(|_| ())
        .map_err(Stuck::TooManySteps)
    }

    /// Lets `d` pass: jumps from event to event (the driver's timers, the fake's scheduled
    /// exits) up to `now + d`, ticking and settling at each, so every deadline fires at exactly
    /// its time.
    pub fn advance(&mut self, d: Duration) -> Result<(), Stuck> {
        let target = self.now + d;
        for _ in 0..MAX_SETTLE_STEPS {
            let timer = self
                .driver
                .poll_timeout()
                .map(|t| t.saturating_duration_since(self.epoch));
            let next = [timer, self.backend.next_event_at()]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= target);
            let Some(next) = next else {
                self.set_time(target);
                return self.tick();
            };
            self.set_time(next.max(self.now));
            self.tick()?;
        }
        Err(Stuck::TimerStorm(MAX_SETTLE_STEPS))
    }

    fn set_time(&mut self, t: Duration) {
        if t > self.now {
            self.trace.push(format!("{} time", stamp(t)));
        }
        self.now = self.now.max(t);
        self.backend.set_time(self.now);
    }

    fn tick(&mut self) -> Result<(), Stuck> {
        let now = self.instant();
        self.driver.handle(now, pledge_core::Input::Tick);
        self.settle()
    }

    /// The plugin process dies and Nomad starts a new one: the fake loses what a real plugin
    /// loses, requests in flight are abandoned, a new [`Driver`] gets SetConfig and then a
    /// RecoverTask for every persisted handle, in id order (Nomad recovers each task once).
    pub fn restart_plugin(&mut self) -> Result<Vec<(TaskId, ReqId)>, Stuck> {
        self.trace
            .push(format!("{} plugin restart", stamp(self.now)));
        self.backend.crash_plugin();
        for (req, s) in &self.requests {
            if s.generation == self.generation && !self.replies.contains_key(req) {
                self.abandoned.insert(*req);
            }
        }
        self.generation += 1;
        let host = self.backend.probe();
        self.driver = Driver::new(host);
        self.configure()?;
        let handles: Vec<(TaskId, DriverState)> = self
            .handles
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut recovered = Vec::new();
        for (task, state) in handles {
            let req = self.call(Request::Recover {
                task: task.clone(),
                state: Box::new(state),
            })?;
            recovered.push((task, req));
        }
        Ok(recovered)
    }

    /// The only reply of `req`, if exactly one arrived.
    pub fn reply_of(&self, req: ReqId) -> Option<&Result<Reply, DriverError>> {
        match self.replies.get(&req).map(Vec::as_slice) {
            Some([one]) => Some(&one.reply),
            _ => None,
        }
    }

    /// The last `n` trace lines, for failure messages.
    pub fn trace_tail(&self, n: usize) -> String {
        let mut s = String::new();
        let start = self.trace.len().saturating_sub(n);
        for line in &self.trace[start..] {
            let _ = writeln!(s, "  {line}");
        }
        s
    }

    /// A hash of the whole trace and the backend's call log, for the determinism check.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // DefaultHasher::new() has fixed keys: equal input, equal hash, in one build.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.trace.hash(&mut h);
        format!("{:?}", self.backend.calls()).hash(&mut h);
        h.finish()
    }
}
