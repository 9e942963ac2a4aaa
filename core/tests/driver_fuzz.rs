//! Random input sequences against the Driver: it never panics, never answers a request twice,
//! and once every command is completed and every task has exited, every request has had its
//! one reply. (The sim crate runs the same idea against the fake backend at larger scale.)

use pledge_core::backend::ProcessIdentity;
use pledge_core::{
    Command, Driver, DriverState, Effect, ExitResult, FailureClass, HostFacts, Input, Launched,
    Observation, OpId, Outcome, Output, RawPluginConfig, RawTaskConfig, ReqId, Request,
    SandboxPlan, TaskId, TaskSpec,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug)]
enum Act {
    SetConfig(bool),
    Start(u8, bool),
    Recover(u8),
    Wait(u8),
    Stop(u8, u8, u8),
    Destroy(u8, bool),
    Inspect(u8),
    Signal(u8, u8),
    Stats(u8),
    Exec(u8, bool),
    /// Complete the n-th pending op: success, or a failure of the given class.
    Complete(u8, Option<u8>),
    CompleteUnknown,
    Exit(u8, i32, bool),
    Advance(u16),
}

fn act() -> impl Strategy<Value = Act> {
    let t = 0u8..4;
    prop_oneof![
        1 => any::<bool>().prop_map(Act::SetConfig),
        3 => (t.clone(), any::<bool>()).prop_map(|(i, ok)| Act::Start(i, ok)),
        1 => t.clone().prop_map(Act::Recover),
        2 => t.clone().prop_map(Act::Wait),
        2 => (t.clone(), 0u8..10, 0u8..4).prop_map(|(i, s, g)| Act::Stop(i, s, g)),
        2 => (t.clone(), any::<bool>()).prop_map(|(i, f)| Act::Destroy(i, f)),
        1 => t.clone().prop_map(Act::Inspect),
        1 => (t.clone(), 0u8..4).prop_map(|(i, g)| Act::Signal(i, g)),
        1 => t.clone().prop_map(Act::Stats),
        1 => (t.clone(), any::<bool>()).prop_map(|(i, e)| Act::Exec(i, e)),
        6 => (any::<u8>(), proptest::option::of(0u8..3)).prop_map(|(n, f)| Act::Complete(n, f)),
        1 => Just(Act::CompleteUnknown),
        3 => (t.clone(), -1i32..3, any::<bool>()).prop_map(|(i, c, o)| Act::Exit(i, c, o)),
        2 => (0u16..12).prop_map(Act::Advance),
    ]
}

struct World {
    d: Driver,
    epoch: Instant,
    at: Duration,
    next_req: u64,
    pending: Vec<(OpId, Command)>,
    asked: BTreeSet<ReqId>,
    answered: BTreeMap<ReqId, usize>,
    /// Plans seen in launches, so Recover can present a real state.
    plans: BTreeMap<u8, SandboxPlan>,
}

fn tid(i: u8) -> TaskId {
    TaskId::parse(format!("alloc/t{i}/0000000{i}")).unwrap()
}

fn state(plan: &SandboxPlan) -> DriverState {
    DriverState {
        version: DriverState::VERSION,
        plan: plan.clone(),
        process: ProcessIdentity {
            supervisor_pid: 1,
            supervisor_start: 1,
            pid: 2,
            pid_start: 2,
            state_dir: PathBuf::from("/run/x"),
        },
        started_at: SystemTime::UNIX_EPOCH,
    }
}

fn success(cmd: &Command) -> Outcome {
    Outcome::Ok(match cmd {
        Command::Launch(plan) => Effect::Launched(Box::new(Launched {
            state: state(plan),
            sandbox_report: "ok".into(),
        })),
        Command::Reattach { state } => Effect::Launched(Box::new(Launched {
            state: (**state).clone(),
            sandbox_report: String::new(),
        })),
        Command::Sample { .. } => Effect::Usage(Box::default()),
        _ => Effect::Done,
    })
}

impl World {
    fn new() -> Self {
        Self {
            d: Driver::new(HostFacts {
                landlock_abi: 7,
                ..HostFacts::default()
            }),
            epoch: Instant::now(),
            at: Duration::ZERO,
            next_req: 1,
            pending: Vec::new(),
            asked: BTreeSet::new(),
            answered: BTreeMap::new(),
            plans: BTreeMap::new(),
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.epoch + self.at;
        for o in self.d.step(now, input) {
            match o {
                Output::Command { op, cmd } => {
                    if let Command::Launch(plan) = &cmd {
                        if let Some(i) = (0..4).find(|i| tid(*i) == plan.task) {
                            self.plans.insert(i, (**plan).clone());
                        }
                    }
                    self.pending.push((op, cmd));
                }
                Output::Reply { req, .. } => {
                    assert!(
                        self.asked.contains(&req),
                        "reply to a request never made: {req}"
                    );
                    let n = self.answered.entry(req).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "{req} answered twice");
                }
                Output::Event(e) => assert!(!e.message.is_empty()),
            }
        }
    }

    fn req(&mut self, body: Request) {
        let req = ReqId(self.next_req);
        self.next_req += 1;
        self.asked.insert(req);
        self.input(Input::Request { req, body });
    }

    fn apply(&mut self, a: Act) {
        let sig = |g: u8| ["", "SIGINT", "SIGKILL", "SIGBOGUS"][usize::from(g % 4)].to_string();
        match a {
            Act::SetConfig(ok) => {
                let raw = RawPluginConfig {
                    state_dir: (!ok).then(|| "relative".into()),
                    ..RawPluginConfig::default()
                };
                self.req(Request::SetConfig(Box::new(raw)));
            }
            Act::Start(i, ok) => {
                let spec = TaskSpec {
                    id: tid(i),
                    name: format!("t{i}"),
                    alloc_id: "alloc".into(),
                    alloc_dir: "/alloc".into(),
                    ..TaskSpec::default()
                };
                let config = RawTaskConfig {
                    command: ok.then(|| "/bin/true".into()),
                    ..RawTaskConfig::default()
                };
                self.req(Request::Start {
                    spec: Box::new(spec),
                    config: Box::new(config),
                });
            }
            Act::Recover(i) => {
                if let Some(plan) = self.plans.get(&i).cloned() {
                    self.req(Request::Recover {
                        task: tid(i),
                        state: Box::new(state(&plan)),
                    });
                }
            }
            Act::Wait(i) => self.req(Request::Wait(tid(i))),
            Act::Stop(i, s, g) => self.req(Request::Stop {
                task: tid(i),
                timeout: Duration::from_secs(u64::from(s)),
                signal: sig(g),
            }),
            Act::Destroy(i, force) => self.req(Request::Destroy {
                task: tid(i),
                force,
            }),
            Act::Inspect(i) => self.req(Request::Inspect(tid(i))),
            Act::Signal(i, g) => self.req(Request::Signal {
                task: tid(i),
                signal: sig(g),
            }),
            Act::Stats(i) => self.req(Request::Stats(tid(i))),
            Act::Exec(i, empty) => self.req(Request::Exec {
                task: tid(i),
                argv: if empty { vec![] } else { vec!["ls".into()] },
                tty: false,
            }),
            Act::Complete(n, fail) => {
                if self.pending.is_empty() {
                    return;
                }
                let (op, cmd) = self.pending.remove(usize::from(n) % self.pending.len());
                let outcome = match fail {
                    None => success(&cmd),
                    Some(c) => Outcome::Failed {
                        class: [
                            FailureClass::Retryable,
                            FailureClass::Fatal,
                            FailureClass::Gone,
                        ][usize::from(c)],
                        message: "injected".into(),
                    },
                };
                self.input(Input::Completed { op, outcome });
            }
            Act::CompleteUnknown => self.input(Input::Completed {
                op: OpId(u64::MAX),
                outcome: Outcome::Ok(Effect::Usage(Box::default())),
            }),
            Act::Exit(i, code, oom) => self.input(Input::Observed(Observation::Exited {
                task: tid(i),
                result: ExitResult {
                    exit_code: code,
                    oom_killed: oom,
                    ..ExitResult::default()
                },
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            })),
            Act::Advance(s) => {
                self.at += Duration::from_secs(u64::from(s));
                self.input(Input::Tick);
            }
        }
    }

    /// Complete everything successfully and let every task exit, until quiet.
    fn settle(&mut self) {
        for _ in 0..100 {
            let before = (self.pending.len(), self.answered.len());
            while let Some((op, cmd)) = self.pending.pop() {
                let outcome = success(&cmd);
                self.input(Input::Completed { op, outcome });
            }
            for i in 0..4 {
                self.apply(Act::Exit(i, 0, false));
            }
            self.apply(Act::Advance(1000));
            if self.pending.is_empty() && before == (0, self.answered.len()) {
                return;
            }
        }
        panic!("did not settle: {} pending", self.pending.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn any_sequence_is_safe_and_every_request_gets_one_reply(acts in proptest::collection::vec(act(), 0..60)) {
        let mut w = World::new();
        for a in acts {
            w.apply(a);
        }
        w.settle();
        let unanswered: Vec<_> = w.asked.iter().filter(|r| !w.answered.contains_key(r)).collect();
        prop_assert!(unanswered.is_empty(), "unanswered: {:?}", unanswered);
        prop_assert_eq!(w.d.pending_ops(), 0);
        prop_assert_eq!(w.d.poll_timeout(), None);
    }
}
