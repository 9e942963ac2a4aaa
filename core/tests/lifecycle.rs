//! The lifecycle state machine through its public API: every transition of issue 2 item 5,
//! the illegal ones included. Time is `epoch + offset`; no clock is read.

use pledge_core::backend::ProcessIdentity;
use pledge_core::{
    Command, Driver, DriverError, DriverState, Effect, ExitResult, FailureClass, HostFacts, Input,
    Launched, Observation, OpId, Outcome, Output, PhaseName, RawPluginConfig, RawTaskConfig, Reply,
    ReqId, Request, SandboxPlan, Signal, TaskId, TaskSpec, Usage,
};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

const T0: u64 = 1_700_000_000;

struct H {
    d: Driver,
    epoch: Instant,
    at: Duration,
    next_req: u64,
}

/// What one input produced, split by kind.
#[derive(Debug, Default)]
struct Out {
    cmds: Vec<(OpId, Command)>,
    replies: Vec<(ReqId, Result<Reply, DriverError>)>,
    events: Vec<String>,
}

impl Out {
    fn reply(&self, req: ReqId) -> &Result<Reply, DriverError> {
        let all: Vec<_> = self.replies.iter().filter(|(r, _)| *r == req).collect();
        assert_eq!(all.len(), 1, "exactly one reply to {req}: {self:?}");
        &all[0].1
    }
    fn no_reply(&self, req: ReqId) {
        assert!(
            self.replies.iter().all(|(r, _)| *r != req),
            "unexpected reply to {req}: {self:?}"
        );
    }
    fn only_cmd(&self) -> (OpId, Command) {
        assert_eq!(self.cmds.len(), 1, "one command: {self:?}");
        self.cmds[0].clone()
    }
}

fn id(s: &str) -> TaskId {
    TaskId::parse(s).unwrap()
}

fn wall(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

fn spec(task: &str) -> TaskSpec {
    TaskSpec {
        id: id(task),
        name: "web".into(),
        alloc_id: "a1".into(),
        alloc_dir: PathBuf::from("/var/nomad/alloc/a1"),
        ..TaskSpec::default()
    }
}

fn cfg() -> RawTaskConfig {
    RawTaskConfig {
        command: Some("/bin/sleep".into()),
        args: Some(vec!["60".into()]),
        ..RawTaskConfig::default()
    }
}

fn state_for(plan: &SandboxPlan, started: SystemTime) -> DriverState {
    DriverState {
        version: DriverState::VERSION,
        plan: plan.clone(),
        process: ProcessIdentity {
            supervisor_pid: 100,
            supervisor_start: 1,
            pid: 101,
            pid_start: 2,
            state_dir: plan.state_dir.clone(),
        },
        started_at: started,
    }
}

fn launched(plan: &SandboxPlan, started: SystemTime) -> Outcome {
    Outcome::Ok(Effect::Launched(Box::new(Launched {
        state: state_for(plan, started),
        sandbox_report: "landlock: fully enforced (ABI 7)".into(),
    })))
}

fn failed(class: FailureClass) -> Outcome {
    Outcome::Failed {
        class,
        message: "boom".into(),
    }
}

fn exit_code(code: i32) -> ExitResult {
    ExitResult {
        exit_code: code,
        ..ExitResult::default()
    }
}

impl H {
    fn new() -> Self {
        Self {
            d: Driver::new(HostFacts {
                landlock_abi: 7,
                ..HostFacts::default()
            }),
            epoch: Instant::now(),
            at: Duration::ZERO,
            next_req: 1,
        }
    }

    fn configured() -> Self {
        let mut h = Self::new();
        let (r, o) = h.req(Request::SetConfig(Box::default()));
        assert!(matches!(o.reply(r), Ok(Reply::Configured(_))));
        h
    }

    fn now(&self) -> Instant {
        self.epoch + self.at
    }

    fn input(&mut self, input: Input) -> Out {
        let now = self.now();
        let mut out = Out::default();
        for o in self.d.step(now, input) {
            match o {
                Output::Command { op, cmd } => out.cmds.push((op, cmd)),
                Output::Reply { req, reply } => out.replies.push((req, reply)),
                Output::Event(e) => out.events.push(e.message),
            }
        }
        out
    }

    fn req(&mut self, body: Request) -> (ReqId, Out) {
        let req = ReqId(self.next_req);
        self.next_req += 1;
        let out = self.input(Input::Request { req, body });
        (req, out)
    }

    fn done(&mut self, op: OpId, outcome: Outcome) -> Out {
        self.input(Input::Completed { op, outcome })
    }

    fn advance(&mut self, d: Duration) -> Out {
        self.at += d;
        self.input(Input::Tick)
    }

    fn exit(&mut self, task: &str, result: ExitResult, secs: u64) -> Out {
        self.input(Input::Observed(Observation::Exited {
            task: id(task),
            result,
            at: wall(secs),
        }))
    }

    /// Start `task` and complete its launch; returns the plan.
    fn running(&mut self, task: &str) -> SandboxPlan {
        let (r, o) = self.req(Request::Start {
            spec: Box::new(spec(task)),
            config: Box::new(cfg()),
        });
        o.no_reply(r);
        let (op, cmd) = o.only_cmd();
        let Command::Launch(plan) = cmd else {
            panic!("expected a launch: {cmd:?}")
        };
        let o = self.done(op, launched(&plan, wall(0)));
        assert!(matches!(o.reply(r), Ok(Reply::Started(_))), "{o:?}");
        assert_eq!(self.phase(task), Some(PhaseName::Running));
        *plan
    }

    fn phase(&self, task: &str) -> Option<PhaseName> {
        self.d.task(&id(task)).map(|v| v.phase)
    }

    fn stop(&mut self, task: &str, secs: u64, signal: &str) -> (ReqId, Out) {
        self.req(Request::Stop {
            task: id(task),
            timeout: Duration::from_secs(secs),
            signal: signal.into(),
        })
    }
}

// ---- configuration ---------------------------------------------------------------------------

#[test]
fn every_task_request_before_set_config_is_not_configured() {
    let mut h = H::new();
    let t = id("t1");
    let bodies = vec![
        Request::Start {
            spec: Box::new(spec("t1")),
            config: Box::new(cfg()),
        },
        Request::Wait(t.clone()),
        Request::Stop {
            task: t.clone(),
            timeout: Duration::ZERO,
            signal: String::new(),
        },
        Request::Destroy {
            task: t.clone(),
            force: true,
        },
        Request::Inspect(t.clone()),
        Request::Signal {
            task: t.clone(),
            signal: "SIGHUP".into(),
        },
        Request::Stats(t.clone()),
        Request::Exec {
            task: t,
            argv: vec!["ls".into()],
            tty: false,
        },
    ];
    for body in bodies {
        let (r, o) = h.req(body);
        assert_eq!(o.reply(r), &Err(DriverError::NotConfigured));
        assert!(o.cmds.is_empty());
    }
}

#[test]
fn set_config_twice_is_fine_and_a_bad_one_keeps_the_old() {
    let mut h = H::configured();
    let (r, o) = h.req(Request::SetConfig(Box::default()));
    assert!(matches!(o.reply(r), Ok(Reply::Configured(_))));
    let bad = RawPluginConfig {
        state_dir: Some("relative/dir".into()),
        ..RawPluginConfig::default()
    };
    let (r, o) = h.req(Request::SetConfig(Box::new(bad)));
    let Err(DriverError::InvalidConfig(e)) = o.reply(r) else {
        panic!("{o:?}")
    };
    assert_eq!(e.0[0].field, "plugin.state_dir");
    assert!(
        h.d.plugin_config().is_some(),
        "the earlier valid config stays"
    );
    h.running("t1");
}

// ---- start ------------------------------------------------------------------------------------

#[test]
fn start_emits_launch_then_started_with_a_sandbox_event() {
    let mut h = H::configured();
    let (r, o) = h.req(Request::Start {
        spec: Box::new(spec("t1")),
        config: Box::new(cfg()),
    });
    assert_eq!(h.phase("t1"), Some(PhaseName::Starting));
    let (op, Command::Launch(plan)) = o.only_cmd() else {
        panic!()
    };
    assert_eq!(plan.command, "/bin/sleep");
    let o = h.done(op, launched(&plan, wall(0)));
    let Ok(Reply::Started(state)) = o.reply(r) else {
        panic!("{o:?}")
    };
    assert_eq!(state.process.pid, 101);
    assert_eq!(o.events, ["sandbox: landlock: fully enforced (ABI 7)"]);
    let v = h.d.task(&id("t1")).unwrap();
    assert_eq!(v.started_at, Some(wall(0)));
    assert_eq!(v.attributes.get("pid").map(String::as_str), Some("101"));
}

#[test]
fn duplicate_start_is_rejected_and_changes_nothing() {
    let mut h = H::configured();
    h.running("t1");
    let (r, o) = h.req(Request::Start {
        spec: Box::new(spec("t1")),
        config: Box::new(cfg()),
    });
    assert_eq!(o.reply(r), &Err(DriverError::DuplicateTask(id("t1"))));
    assert!(o.cmds.is_empty());
    assert_eq!(h.phase("t1"), Some(PhaseName::Running));
}

#[test]
fn invalid_task_config_names_every_field_and_tracks_nothing() {
    let mut h = H::configured();
    let bad = RawTaskConfig {
        command: None,
        promises: Some("stdio inett".into()),
        unveil: Some(vec!["relative/path".into()]),
        ..RawTaskConfig::default()
    };
    let (r, o) = h.req(Request::Start {
        spec: Box::new(spec("t1")),
        config: Box::new(bad),
    });
    let Err(DriverError::InvalidConfig(e)) = o.reply(r) else {
        panic!("{o:?}")
    };
    let fields: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["config.command", "config.promises", "config.unveil[0]"]
    );
    assert!(o.cmds.is_empty());
    assert!(h.d.task(&id("t1")).is_none());
}

#[test]
fn launch_failure_replies_with_class_forgets_the_task_and_cleans_up() {
    for class in [
        FailureClass::Retryable,
        FailureClass::Fatal,
        FailureClass::Gone,
    ] {
        let mut h = H::configured();
        let (r, o) = h.req(Request::Start {
            spec: Box::new(spec("t1")),
            config: Box::new(cfg()),
        });
        let (op, _) = o.only_cmd();
        let o = h.done(op, failed(class));
        let Err(DriverError::Backend { class: c, message }) = o.reply(r) else {
            panic!("{o:?}")
        };
        assert_eq!(*c, class);
        assert!(message.contains("boom"), "{message}");
        let (cop, cmd) = o.only_cmd();
        assert_eq!(cmd, Command::Cleanup { task: id("t1") });
        assert!(h.d.task(&id("t1")).is_none());
        // Until the cleanup is done the id cannot be reused; then it can.
        let (r2, o2) = h.req(Request::Start {
            spec: Box::new(spec("t1")),
            config: Box::new(cfg()),
        });
        assert!(
            matches!(
                o2.reply(r2),
                Err(DriverError::Backend {
                    class: FailureClass::Retryable,
                    ..
                })
            ),
            "{o2:?}"
        );
        h.done(cop, Outcome::Ok(Effect::Done));
        h.running("t1");
    }
}

#[test]
fn wrong_effect_for_launch_is_a_fatal_error() {
    let mut h = H::configured();
    let (r, o) = h.req(Request::Start {
        spec: Box::new(spec("t1")),
        config: Box::new(cfg()),
    });
    let (op, _) = o.only_cmd();
    let o = h.done(op, Outcome::Ok(Effect::Done));
    assert!(matches!(
        o.reply(r),
        Err(DriverError::Backend {
            class: FailureClass::Fatal,
            ..
        })
    ));
    assert!(h.d.task(&id("t1")).is_none());
}

#[test]
fn requests_while_starting_are_wrong_state_except_wait_and_inspect() {
    let mut h = H::configured();
    let (r, o) = h.req(Request::Start {
        spec: Box::new(spec("t1")),
        config: Box::new(cfg()),
    });
    let (op, Command::Launch(plan)) = o.only_cmd() else {
        panic!()
    };
    let (w, o) = h.req(Request::Wait(id("t1")));
    o.no_reply(w);
    let (i, o) = h.req(Request::Inspect(id("t1")));
    assert!(matches!(o.reply(i), Ok(Reply::Inspected(v)) if v.phase == PhaseName::Starting));
    for body in [
        Request::Stop {
            task: id("t1"),
            timeout: Duration::ZERO,
            signal: String::new(),
        },
        Request::Destroy {
            task: id("t1"),
            force: true,
        },
        Request::Signal {
            task: id("t1"),
            signal: "SIGHUP".into(),
        },
        Request::Stats(id("t1")),
    ] {
        let (x, o) = h.req(body);
        assert!(
            matches!(
                o.reply(x),
                Err(DriverError::WrongState {
                    phase: PhaseName::Starting,
                    ..
                })
            ),
            "{o:?}"
        );
        assert!(o.cmds.is_empty());
    }
    // The exit arrives before the launch reply: recorded, applied once launched.
    let o = h.exit("t1", exit_code(3), 1);
    o.no_reply(w);
    let o = h.done(op, launched(&plan, wall(0)));
    assert!(matches!(o.reply(r), Ok(Reply::Started(_))));
    assert_eq!(o.reply(w), &Ok(Reply::Exited(exit_code(3))));
}

#[test]
fn waiters_of_a_failed_launch_get_the_error() {
    let mut h = H::configured();
    let (_, o) = h.req(Request::Start {
        spec: Box::new(spec("t1")),
        config: Box::new(cfg()),
    });
    let (op, _) = o.only_cmd();
    let (w, _) = h.req(Request::Wait(id("t1")));
    let o = h.done(op, failed(FailureClass::Fatal));
    assert!(matches!(o.reply(w), Err(DriverError::Backend { .. })));
}

// ---- wait ------------------------------------------------------------------------------------

#[test]
fn many_waiters_before_and_after_exit_get_the_same_result_once() {
    let mut h = H::configured();
    h.running("t1");
    let (w1, o) = h.req(Request::Wait(id("t1")));
    o.no_reply(w1);
    let (w2, o) = h.req(Request::Wait(id("t1")));
    o.no_reply(w2);
    let result = ExitResult {
        exit_code: 0,
        signal: 9,
        oom_killed: false,
        err: None,
    };
    let o = h.exit("t1", result.clone(), 5);
    assert_eq!(o.reply(w1), &Ok(Reply::Exited(result.clone())));
    assert_eq!(o.reply(w2), &Ok(Reply::Exited(result.clone())));
    for _ in 0..3 {
        let (w, o) = h.req(Request::Wait(id("t1")));
        assert_eq!(o.reply(w), &Ok(Reply::Exited(result.clone())));
    }
    // A second exit observation changes nothing.
    h.exit("t1", exit_code(1), 6);
    let (w, o) = h.req(Request::Wait(id("t1")));
    assert_eq!(o.reply(w), &Ok(Reply::Exited(result)));
    let v = h.d.task(&id("t1")).unwrap();
    assert_eq!(v.completed_at, Some(wall(5)));
}

#[test]
fn unknown_ids_answer_task_not_found() {
    let mut h = H::configured();
    let t = id("nope");
    for body in [
        Request::Wait(t.clone()),
        Request::Stop {
            task: t.clone(),
            timeout: Duration::ZERO,
            signal: String::new(),
        },
        Request::Inspect(t.clone()),
        Request::Signal {
            task: t.clone(),
            signal: "SIGHUP".into(),
        },
        Request::Stats(t.clone()),
        Request::Exec {
            task: t.clone(),
            argv: vec!["ls".into()],
            tty: false,
        },
    ] {
        let (r, o) = h.req(body);
        let e = o.reply(r).clone().unwrap_err();
        assert_eq!(e, DriverError::UnknownTask(t.clone()));
        assert_eq!(e.to_string(), "task not found for given id");
    }
}

/// Destroy of an untracked id first removes whatever it may have left (a cleanup that failed
/// before a plugin restart is forgotten with it), then answers "not found"; a failing
/// cleanup is reported, so Nomad's retry comes back.
#[test]
fn destroy_of_an_unknown_id_cleans_up_what_it_left_then_answers_not_found() {
    let mut h = H::configured();
    let t = id("nope");
    for (outcome, want) in [
        (
            failed(FailureClass::Retryable),
            None, // a backend error
        ),
        (
            Outcome::Ok(Effect::Done),
            Some(DriverError::UnknownTask(t.clone())),
        ),
    ] {
        let (d, o) = h.req(Request::Destroy {
            task: t.clone(),
            force: true,
        });
        o.no_reply(d);
        let (op, cmd) = o.only_cmd();
        assert_eq!(cmd, Command::Cleanup { task: t.clone() });
        let o = h.done(op, outcome);
        let e = o.reply(d).clone().unwrap_err();
        match want {
            Some(w) => assert_eq!(e, w),
            None => assert!(matches!(e, DriverError::Backend { .. }), "{e:?}"),
        }
    }
}

// ---- stop ------------------------------------------------------------------------------------

#[test]
fn stop_signals_arms_deadline_kills_once_and_replies_after_exit() {
    let mut h = H::configured();
    h.running("t1");
    let (s, o) = h.stop("t1", 5, "");
    o.no_reply(s);
    let (op, cmd) = o.only_cmd();
    assert_eq!(
        cmd,
        Command::Signal {
            task: id("t1"),
            signal: Signal::TERM
        }
    );
    assert_eq!(o.events.len(), 1);
    assert!(o.events[0].contains("SIGTERM"), "{:?}", o.events);
    h.done(op, Outcome::Ok(Effect::Done));
    assert_eq!(h.phase("t1"), Some(PhaseName::Stopping));
    assert_eq!(h.d.poll_timeout(), Some(h.now() + Duration::from_secs(5)));

    let o = h.advance(Duration::from_secs(4));
    assert!(o.cmds.is_empty(), "not yet: {o:?}");
    let o = h.advance(Duration::from_secs(1));
    let (kop, kcmd) = o.only_cmd();
    assert_eq!(kcmd, Command::KillAll { task: id("t1") });
    assert!(o.events.iter().any(|e| e.contains("kill timeout")));
    o.no_reply(s);
    h.done(kop, Outcome::Ok(Effect::Done));
    // No second kill, however long we wait.
    let o = h.advance(Duration::from_secs(60));
    assert!(o.cmds.is_empty());
    assert_eq!(h.d.poll_timeout(), None);

    let o = h.exit("t1", exit_code(137), 66);
    assert_eq!(o.reply(s), &Ok(Reply::Stopped));
    assert_eq!(h.phase("t1"), Some(PhaseName::Exited));
}

#[test]
fn stop_that_exits_in_time_never_kills() {
    let mut h = H::configured();
    h.running("t1");
    let (s, o) = h.stop("t1", 5, "SIGINT");
    let (op, cmd) = o.only_cmd();
    assert_eq!(
        cmd,
        Command::Signal {
            task: id("t1"),
            signal: Signal::INT
        }
    );
    h.done(op, Outcome::Ok(Effect::Done));
    let o = h.exit("t1", exit_code(0), 1);
    assert_eq!(o.reply(s), &Ok(Reply::Stopped));
    assert_eq!(h.d.poll_timeout(), None);
    let o = h.advance(Duration::from_secs(10));
    assert!(o.cmds.is_empty());
}

#[test]
fn zero_timeout_kills_at_once() {
    let mut h = H::configured();
    h.running("t1");
    let (_, o) = h.stop("t1", 0, "");
    let cmds: Vec<_> = o.cmds.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(
        cmds,
        [
            Command::Signal {
                task: id("t1"),
                signal: Signal::TERM
            },
            Command::KillAll { task: id("t1") }
        ]
    );
}

#[test]
fn unknown_stop_signal_is_invalid_argument_and_changes_nothing() {
    let mut h = H::configured();
    h.running("t1");
    let (s, o) = h.stop("t1", 5, "SIGBOGUS");
    let Err(DriverError::InvalidArgument { field, reason }) = o.reply(s) else {
        panic!("{o:?}")
    };
    assert_eq!(*field, "signal");
    assert!(reason.contains("SIGBOGUS"));
    assert!(o.cmds.is_empty());
    assert_eq!(h.phase("t1"), Some(PhaseName::Running));
    assert_eq!(h.d.poll_timeout(), None);
}

#[test]
fn stop_of_an_exited_task_succeeds_at_once() {
    let mut h = H::configured();
    h.running("t1");
    h.exit("t1", exit_code(0), 1);
    let (s, o) = h.stop("t1", 5, "SIGBOGUS");
    assert_eq!(o.reply(s), &Ok(Reply::Stopped));
    assert!(o.cmds.is_empty());
}

#[test]
fn second_stop_only_brings_the_kill_closer_and_both_reply() {
    let mut h = H::configured();
    h.running("t1");
    let (s1, _) = h.stop("t1", 30, "");
    let (s2, o) = h.stop("t1", 2, "SIGKILL");
    assert!(o.cmds.iter().any(|(_, c)| *c
        == Command::Signal {
            task: id("t1"),
            signal: Signal::KILL
        }));
    assert_eq!(h.d.poll_timeout(), Some(h.now() + Duration::from_secs(2)));
    let (s3, _) = h.stop("t1", 100, "");
    assert_eq!(h.d.poll_timeout(), Some(h.now() + Duration::from_secs(2)));
    let o = h.advance(Duration::from_secs(2));
    assert_eq!(
        o.cmds
            .iter()
            .filter(|(_, c)| matches!(c, Command::KillAll { .. }))
            .count(),
        1
    );
    let o = h.exit("t1", exit_code(137), 3);
    for s in [s1, s2, s3] {
        assert_eq!(o.reply(s), &Ok(Reply::Stopped));
    }
}

#[test]
fn failed_stop_signal_is_reported_and_the_deadline_still_kills() {
    let mut h = H::configured();
    h.running("t1");
    let (_, o) = h.stop("t1", 1, "");
    let (op, _) = o.only_cmd();
    let o = h.done(op, failed(FailureClass::Retryable));
    assert!(o
        .events
        .iter()
        .any(|e| e.contains("sending SIGTERM failed")));
    let o = h.advance(Duration::from_secs(1));
    assert_eq!(o.only_cmd().1, Command::KillAll { task: id("t1") });
}

#[test]
fn huge_stop_timeout_does_not_overflow() {
    let mut h = H::configured();
    h.running("t1");
    let (s, o) = h.req(Request::Stop {
        task: id("t1"),
        timeout: Duration::MAX,
        signal: String::new(),
    });
    o.no_reply(s);
    assert_eq!(h.phase("t1"), Some(PhaseName::Stopping));
    let o = h.exit("t1", exit_code(0), 1);
    assert_eq!(o.reply(s), &Ok(Reply::Stopped));
}

// ---- destroy ---------------------------------------------------------------------------------

#[test]
fn destroy_running_without_force_is_wrong_state_and_changes_nothing() {
    let mut h = H::configured();
    h.running("t1");
    let before = h.d.task(&id("t1"));
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: false,
    });
    assert!(matches!(
        o.reply(r),
        Err(DriverError::WrongState {
            phase: PhaseName::Running,
            ..
        })
    ));
    assert!(o.cmds.is_empty());
    assert_eq!(h.d.task(&id("t1")), before);
}

#[test]
fn destroy_exited_cleans_up_then_forgets() {
    let mut h = H::configured();
    h.running("t1");
    h.exit("t1", exit_code(0), 1);
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: false,
    });
    o.no_reply(r);
    let (op, cmd) = o.only_cmd();
    assert_eq!(cmd, Command::Cleanup { task: id("t1") });
    assert_eq!(h.phase("t1"), Some(PhaseName::Destroying));
    // Wait still answers while destroying an exited task.
    let (w, o) = h.req(Request::Wait(id("t1")));
    assert_eq!(o.reply(w), &Ok(Reply::Exited(exit_code(0))));
    let o = h.done(op, Outcome::Ok(Effect::Done));
    assert_eq!(o.reply(r), &Ok(Reply::Destroyed));
    assert!(h.d.task(&id("t1")).is_none());
    let (w, o) = h.req(Request::Wait(id("t1")));
    assert_eq!(o.reply(w), &Err(DriverError::UnknownTask(id("t1"))));
}

#[test]
fn failed_cleanup_keeps_the_exited_task_for_a_retry() {
    let mut h = H::configured();
    h.running("t1");
    h.exit("t1", exit_code(2), 1);
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    let (op, _) = o.only_cmd();
    let o = h.done(op, failed(FailureClass::Retryable));
    assert!(matches!(o.reply(r), Err(DriverError::Backend { .. })));
    assert_eq!(h.phase("t1"), Some(PhaseName::Exited));
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    let (op, _) = o.only_cmd();
    let o = h.done(op, Outcome::Ok(Effect::Done));
    assert_eq!(o.reply(r), &Ok(Reply::Destroyed));
}

#[test]
fn forced_destroy_kills_waits_for_exit_cleans_up_and_forgets() {
    let mut h = H::configured();
    h.running("t1");
    let (w, _) = h.req(Request::Wait(id("t1")));
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    let (kop, cmd) = o.only_cmd();
    assert_eq!(cmd, Command::KillAll { task: id("t1") });
    o.no_reply(r);
    let o = h.done(kop, Outcome::Ok(Effect::Done));
    o.no_reply(r);
    // A second destroy while this one runs is refused.
    let (r2, o2) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    assert!(matches!(
        o2.reply(r2),
        Err(DriverError::WrongState {
            phase: PhaseName::Destroying,
            ..
        })
    ));
    let killed = ExitResult {
        signal: 9,
        ..ExitResult::default()
    };
    let o = h.exit("t1", killed.clone(), 2);
    assert_eq!(o.reply(w), &Ok(Reply::Exited(killed)));
    o.no_reply(r);
    let (cop, cmd) = o.only_cmd();
    assert_eq!(cmd, Command::Cleanup { task: id("t1") });
    let o = h.done(cop, Outcome::Ok(Effect::Done));
    assert_eq!(o.reply(r), &Ok(Reply::Destroyed));
    assert!(h.d.task(&id("t1")).is_none());
}

#[test]
fn failed_forced_kill_restores_the_phase() {
    let mut h = H::configured();
    h.running("t1");
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    let (kop, _) = o.only_cmd();
    let o = h.done(kop, failed(FailureClass::Retryable));
    assert!(matches!(o.reply(r), Err(DriverError::Backend { .. })));
    assert_eq!(h.phase("t1"), Some(PhaseName::Running));
}

#[test]
fn kill_finding_nothing_left_records_a_lost_exit() {
    let mut h = H::configured();
    h.running("t1");
    let (w, _) = h.req(Request::Wait(id("t1")));
    let (r, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    let (kop, _) = o.only_cmd();
    let o = h.done(kop, failed(FailureClass::Gone));
    let Ok(Reply::Exited(res)) = o.reply(w) else {
        panic!("{o:?}")
    };
    assert!(res.err.as_deref().unwrap_or("").contains("gone"));
    let (cop, _) = o.only_cmd();
    let o = h.done(cop, Outcome::Ok(Effect::Done));
    assert_eq!(o.reply(r), &Ok(Reply::Destroyed));
}

// ---- recover ---------------------------------------------------------------------------------

fn recover_req(h: &mut H, plan: &SandboxPlan, started: SystemTime) -> (ReqId, Out) {
    h.req(Request::Recover {
        task: plan.task.clone(),
        state: Box::new(state_for(plan, started)),
    })
}

#[test]
fn recover_of_a_tracked_task_is_immediate() {
    let mut h = H::configured();
    let plan = h.running("t1");
    let (r, o) = recover_req(&mut h, &plan, wall(0));
    assert_eq!(o.reply(r), &Ok(Reply::Recovered));
    assert!(o.cmds.is_empty());
}

#[test]
fn recover_reattaches_and_keeps_the_original_start_time() {
    let mut h1 = H::configured();
    let plan = h1.running("t1");
    let mut h = H::configured();
    let (r, o) = recover_req(&mut h, &plan, wall(0));
    o.no_reply(r);
    let (op, Command::Reattach { state }) = o.only_cmd() else {
        panic!()
    };
    assert_eq!(state.started_at, wall(0));
    // The backend reports a fresh time; the original is kept.
    let o = h.done(op, launched(&plan, wall(500)));
    assert_eq!(o.reply(r), &Ok(Reply::Recovered));
    let v = h.d.task(&id("t1")).unwrap();
    assert_eq!(v.phase, PhaseName::Running);
    assert_eq!(v.started_at, Some(wall(0)));
    assert_eq!(v.name, "web");
    let (w, o) = h.req(Request::Wait(id("t1")));
    o.no_reply(w);
    let o = h.exit("t1", exit_code(7), 900);
    assert_eq!(o.reply(w), &Ok(Reply::Exited(exit_code(7))));
}

#[test]
fn recover_of_an_already_exited_task_reports_its_exit() {
    let plan = H::configured().running("t1");
    let mut h = H::configured();
    let (r, o) = recover_req(&mut h, &plan, wall(0));
    let (op, _) = o.only_cmd();
    let oom = ExitResult {
        signal: 9,
        oom_killed: true,
        ..ExitResult::default()
    };
    let o = h.done(
        op,
        Outcome::Ok(Effect::AlreadyExited {
            state: Box::new(state_for(&plan, wall(3))),
            result: oom.clone(),
            at: wall(9),
        }),
    );
    assert_eq!(o.reply(r), &Ok(Reply::Recovered));
    assert!(o.events.iter().any(|e| e.contains("OOM")), "{o:?}");
    let v = h.d.task(&id("t1")).unwrap();
    assert_eq!(v.phase, PhaseName::Exited);
    assert_eq!(v.started_at, Some(wall(0)));
    assert_eq!(v.result, Some(oom));
}

#[test]
fn failed_reattach_is_an_error_not_tracked_and_nothing_is_left_running() {
    for class in [FailureClass::Gone, FailureClass::Retryable] {
        let plan = H::configured().running("t1");
        let mut h = H::configured();
        let (r, o) = recover_req(&mut h, &plan, wall(0));
        let (op, _) = o.only_cmd();
        let o = h.done(op, failed(class));
        let Err(DriverError::Backend { class: c, message }) = o.reply(r) else {
            panic!("{o:?}")
        };
        assert_eq!(*c, class);
        if class == FailureClass::Gone {
            assert!(message.contains("lost"), "{message}");
        }
        assert!(h.d.task(&id("t1")).is_none());
        let cmds: Vec<_> = o.cmds.iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(
            cmds,
            [
                Command::KillAll { task: id("t1") },
                Command::Cleanup { task: id("t1") }
            ]
        );
    }
}

#[test]
fn recover_with_a_foreign_state_is_refused() {
    let plan = H::configured().running("t1");
    let mut h = H::configured();
    let (r, o) = h.req(Request::Recover {
        task: id("other"),
        state: Box::new(state_for(&plan, wall(0))),
    });
    assert!(matches!(
        o.reply(r),
        Err(DriverError::InvalidArgument {
            field: "handle.driver_state",
            ..
        })
    ));
    assert!(o.cmds.is_empty());
}

// ---- signal, stats, exec, inspect ------------------------------------------------------------

#[test]
fn signal_task_parses_sends_and_replies() {
    let mut h = H::configured();
    h.running("t1");
    let (r, o) = h.req(Request::Signal {
        task: id("t1"),
        signal: "hup".into(),
    });
    let (op, cmd) = o.only_cmd();
    assert_eq!(
        cmd,
        Command::Signal {
            task: id("t1"),
            signal: Signal::parse("SIGHUP").unwrap()
        }
    );
    let o = h.done(op, Outcome::Ok(Effect::Done));
    assert_eq!(o.reply(r), &Ok(Reply::Signalled));
    for bad in ["", "SIGNOPE", "\0"] {
        let (r, o) = h.req(Request::Signal {
            task: id("t1"),
            signal: bad.into(),
        });
        assert!(matches!(
            o.reply(r),
            Err(DriverError::InvalidArgument { .. })
        ));
    }
    let (r, o) = h.req(Request::Signal {
        task: id("t1"),
        signal: "SIGUSR1".into(),
    });
    let (op, _) = o.only_cmd();
    let o = h.done(op, failed(FailureClass::Gone));
    assert!(matches!(o.reply(r), Err(DriverError::Backend { .. })));
    h.exit("t1", exit_code(0), 1);
    let (r, o) = h.req(Request::Signal {
        task: id("t1"),
        signal: "SIGHUP".into(),
    });
    assert!(matches!(
        o.reply(r),
        Err(DriverError::WrongState {
            phase: PhaseName::Exited,
            ..
        })
    ));
}

#[test]
fn stats_samples_while_live_and_is_wrong_state_once_exited() {
    let mut h = H::configured();
    h.running("t1");
    let (r, o) = h.req(Request::Stats(id("t1")));
    let (op, cmd) = o.only_cmd();
    assert_eq!(cmd, Command::Sample { task: id("t1") });
    let u = Usage {
        memory_rss: 42,
        ..Usage::default()
    };
    let o = h.done(op, Outcome::Ok(Effect::Usage(Box::new(u.clone()))));
    assert_eq!(o.reply(r), &Ok(Reply::Stats(Box::new(u))));
    let (r, o) = h.req(Request::Stats(id("t1")));
    let (op, _) = o.only_cmd();
    let o = h.done(op, failed(FailureClass::Retryable));
    assert!(matches!(o.reply(r), Err(DriverError::Backend { .. })));
    h.exit("t1", exit_code(0), 1);
    let (r, o) = h.req(Request::Stats(id("t1")));
    assert!(matches!(
        o.reply(r),
        Err(DriverError::WrongState {
            phase: PhaseName::Exited,
            ..
        })
    ));
}

#[test]
fn exec_returns_the_task_plan_with_the_new_command() {
    let mut h = H::configured();
    let plan = h.running("t1");
    let (r, o) = h.req(Request::Exec {
        task: id("t1"),
        argv: vec!["/bin/ls".into(), "-l".into()],
        tty: true,
    });
    let Ok(Reply::Exec(e)) = o.reply(r) else {
        panic!("{o:?}")
    };
    assert_eq!(e.plan.command, "/bin/ls");
    assert_eq!(e.plan.args, ["-l"]);
    assert_eq!(e.plan.promises, plan.promises);
    assert!(e.tty);
    assert_eq!(e.target_pid, 101);
    let (r, o) = h.req(Request::Exec {
        task: id("t1"),
        argv: vec![],
        tty: false,
    });
    assert!(matches!(
        o.reply(r),
        Err(DriverError::InvalidArgument {
            field: "command",
            ..
        })
    ));
    h.exit("t1", exit_code(0), 1);
    let (r, o) = h.req(Request::Exec {
        task: id("t1"),
        argv: vec!["/bin/ls".into()],
        tty: false,
    });
    assert!(matches!(
        o.reply(r),
        Err(DriverError::WrongState {
            phase: PhaseName::Exited,
            ..
        })
    ));
}

#[test]
fn oom_exit_emits_an_event_and_notes_become_events() {
    let mut h = H::configured();
    h.running("t1");
    let o = h.input(Input::Observed(Observation::Note {
        task: id("t1"),
        message: "complain: would deny openat".into(),
    }));
    assert_eq!(o.events, ["complain: would deny openat"]);
    let o = h.exit(
        "t1",
        ExitResult {
            signal: 9,
            oom_killed: true,
            ..ExitResult::default()
        },
        1,
    );
    assert_eq!(o.events.len(), 1);
    assert!(o.events[0].contains("OOM"));
}

#[test]
fn stray_inputs_are_ignored() {
    let mut h = H::configured();
    h.running("t1");
    let o = h.done(OpId(999_999), Outcome::Ok(Effect::Done));
    assert!(o.cmds.is_empty() && o.replies.is_empty() && o.events.is_empty());
    let o = h.exit("ghost", exit_code(1), 1);
    assert!(o.cmds.is_empty() && o.replies.is_empty() && o.events.is_empty());
    // Time going backwards is clamped, not a panic.
    h.at = Duration::from_secs(100);
    h.input(Input::Tick);
    h.at = Duration::from_secs(1);
    h.input(Input::Tick);
}

#[test]
fn destroy_retries_a_failed_cleanup_of_a_lost_task() {
    let plan = H::configured().running("t1");
    let mut h = H::configured();
    let (r, o) = recover_req(&mut h, &plan, wall(0));
    let (op, _) = o.only_cmd();
    let o = h.done(op, failed(FailureClass::Gone));
    assert!(o.reply(r).is_err());
    let cleanup = o
        .cmds
        .iter()
        .find(|(_, c)| matches!(c, Command::Cleanup { .. }))
        .map(|(op, _)| *op)
        .unwrap();
    // The leak-prevention cleanup fails: the task's cgroup/state dir may remain.
    let o = h.done(cleanup, failed(FailureClass::Retryable));
    assert!(o.replies.is_empty() && o.cmds.is_empty(), "{o:?}");
    // Nomad's DestroyTask(force) after the failed RecoverTask retries it; a failure is
    // reported and a later destroy tries again.
    for (outcome, ok) in [
        (failed(FailureClass::Retryable), false),
        (Outcome::Ok(Effect::Done), true),
    ] {
        let (d, o) = h.req(Request::Destroy {
            task: id("t1"),
            force: true,
        });
        o.no_reply(d);
        let (op, cmd) = o.only_cmd();
        assert_eq!(cmd, Command::Cleanup { task: id("t1") });
        let o = h.done(op, outcome);
        assert_eq!(o.reply(d).is_ok(), ok, "{o:?}");
    }
    // Once clean, the id is simply unknown (after one more, empty, cleanup).
    let (d, o) = h.req(Request::Destroy {
        task: id("t1"),
        force: true,
    });
    let (op, _) = o.only_cmd();
    let o = h.done(op, Outcome::Ok(Effect::Done));
    assert_eq!(o.reply(d), &Err(DriverError::UnknownTask(id("t1"))));
}
