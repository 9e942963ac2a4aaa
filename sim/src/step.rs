//! What the generator chooses: the initial fault plan and a sequence of [`Step`]s. Steps name
//! task *slots* (`slot % SLOTS`), never indices into state, so any subsequence is still a valid
//! run and proptest can shrink a failure by dropping steps.

use pledge_backend_fake::{FaultPlan, FaultyOp, ProcScript, SignalResponse};
use pledge_core::{FailureClass, RawTaskConfig, TaskId};
use proptest::prelude::*;
use proptest::sample::SizeRange;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Task slots a run uses. Few slots means many steps hit the same task.
pub const SLOTS: u8 = 4;

/// The id of the `generation`th fresh task started in `slot`. Deterministic, so the fault plan
/// can name tasks before they exist.
pub fn task_id(slot: u8, generation: u32) -> TaskId {
    let s = slot % SLOTS;
    TaskId::parse(format!(
        "alloc-{s}-{generation}/web/{:08x}",
        u32::from(s) << 24 | generation
    ))
    .unwrap_or_default()
}

/// A task config, valid or broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenConfig {
    /// A valid config; the number picks one of a few shapes.
    Valid(u8),
    /// `command` unset.
    MissingCommand,
    /// A promise name that does not exist.
    UnknownPromise,
    /// A relative unveil path.
    RelativeUnveil,
    /// An importance that does not exist.
    BadImportance,
}

impl GenConfig {
    /// Whether validation must accept it.
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Valid(_))
    }

    /// The raw config Nomad would send.
    pub fn raw(self) -> RawTaskConfig {
        let mut c = RawTaskConfig {
            command: Some("/bin/sleep".to_string()),
            args: Some(vec!["infinity".to_string()]),
            promises: Some("stdio rpath".to_string()),
            unveil: Some(vec!["r:/etc".to_string()]),
            importance: None,
            ..RawTaskConfig::default()
        };
        match self {
            Self::Valid(n) => match n % 4 {
                0 => {}
                1 => {
                    c.promises = Some("stdio rpath inet dns".to_string());
                    c.importance = Some("high".to_string());
                }
                2 => {
                    c.promises = None;
                    c.unveil = None;
                    c.args = None;
                }
                _ => {
                    c.command = Some("sleep".to_string());
                    c.unveil = Some(vec!["rwc:/tmp".to_string(), "/usr".to_string()]);
                    c.importance = Some("lowest".to_string());
                }
            },
            Self::MissingCommand => c.command = None,
            Self::UnknownPromise => c.promises = Some("stdio inett".to_string()),
            Self::RelativeUnveil => c.unveil = Some(vec!["r:etc/passwd".to_string()]),
            Self::BadImportance => c.importance = Some("urgent".to_string()),
        }
        c
    }
}

/// A signal name as a Nomad job might spell it, including wrong ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenSignal {
    /// Empty: the default (SIGTERM for stop).
    Default,
    /// `SIGTERM`.
    Term,
    /// `SIGINT`.
    Int,
    /// `sighup` (lowercase is accepted).
    Hup,
    /// `SIGUSR1`.
    Usr1,
    /// `SIGKILL`.
    Kill,
    /// `SIGCHLD`, ignored by default: the process keeps running.
    Chld,
    /// A name that is no signal.
    Bogus,
}

impl GenSignal {
    /// The name sent.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "",
            Self::Term => "SIGTERM",
            Self::Int => "SIGINT",
            Self::Hup => "sighup",
            Self::Usr1 => "SIGUSR1",
            Self::Kill => "SIGKILL",
            Self::Chld => "SIGCHLD",
            Self::Bogus => "SIGFOO",
        }
    }
}

/// How a started task's main process behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenScript {
    /// Exit by itself with `code` after `ms`.
    pub exit_after: Option<(u16, u8)>,
    /// Signal handling.
    pub on_signal: GenResponse,
    /// Children forked at launch.
    pub children: u8,
    /// Milliseconds a kill takes to land (0 = at once).
    pub reap_ms: u8,
}

/// A process's signal handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenResponse {
    /// Default actions.
    Default,
    /// Ignores every catchable signal.
    Ignore,
    /// Drains for `ms`, then exits with `code`.
    Drain(u16, u8),
}

impl GenResponse {
    /// As the fake takes it.
    pub fn response(self) -> SignalResponse {
        match self {
            Self::Default => SignalResponse::Default,
            Self::Ignore => SignalResponse::Ignore,
            Self::Drain(ms, code) => SignalResponse::ExitAfter {
                delay: Duration::from_millis(u64::from(ms)),
                code: i32::from(code),
            },
        }
    }
}

impl GenScript {
    /// As the fake takes it.
    pub fn script(self) -> ProcScript {
        ProcScript {
            exit_after: self
                .exit_after
                .map(|(ms, code)| (Duration::from_millis(u64::from(ms)), i32::from(code))),
            on_signal: self.on_signal.response(),
            children: self.children,
            reap_delay: Duration::from_millis(u64::from(self.reap_ms)),
        }
    }
}

/// One thing that happens in a run: a Nomad request, a kernel event, time, a crash, a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// StartTask; `reuse` restarts the slot's current id (a duplicate when it is still tracked).
    Start {
        /// Slot.
        slot: u8,
        /// The config.
        cfg: GenConfig,
        /// The process's behaviour.
        script: GenScript,
        /// Reuse the slot's current id instead of a fresh one.
        reuse: bool,
    },
    /// The main process exits by itself.
    Exit {
        /// Slot.
        slot: u8,
        /// Exit code.
        code: u8,
    },
    /// The OOM killer strikes.
    OomKill {
        /// Slot.
        slot: u8,
    },
    /// The main process forks a child.
    Fork {
        /// Slot.
        slot: u8,
    },
    /// The supervisor dies.
    LoseSupervisor {
        /// Slot.
        slot: u8,
    },
    /// The process changes its signal handling.
    SetSignals {
        /// Slot.
        slot: u8,
        /// New handling.
        response: GenResponse,
    },
    /// StopTask.
    Stop {
        /// Slot.
        slot: u8,
        /// Grace period.
        timeout_ms: u16,
        /// Signal name.
        signal: GenSignal,
    },
    /// DestroyTask.
    Destroy {
        /// Slot.
        slot: u8,
        /// Force.
        force: bool,
    },
    /// `waiters` concurrent WaitTask calls.
    Wait {
        /// Slot.
        slot: u8,
        /// How many at once (1..=3).
        waiters: u8,
    },
    /// InspectTask.
    Inspect {
        /// Slot.
        slot: u8,
    },
    /// SignalTask.
    Signal {
        /// Slot.
        slot: u8,
        /// Signal name.
        signal: GenSignal,
    },
    /// One TaskStats sample.
    Stats {
        /// Slot.
        slot: u8,
    },
    /// ExecTask.
    Exec {
        /// Slot.
        slot: u8,
    },
    /// Time passes.
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// The plugin crashes and is restarted; every handle is recovered.
    RestartPlugin,
    /// SetConfig again (Nomad may send it more than once); an invalid one must change nothing.
    Reconfigure {
        /// Send a valid config.
        valid: bool,
    },
    /// RecoverTask with the slot's stored handle while the task may still be tracked.
    Recover {
        /// Slot.
        slot: u8,
    },
    /// The next call of `op` fails with `class`.
    ArmFault {
        /// Operation.
        op: FaultyOp,
        /// Class.
        class: FailureClass,
    },
}

fn slot() -> impl Strategy<Value = u8> {
    0..SLOTS
}

fn gen_config() -> impl Strategy<Value = GenConfig> {
    prop_oneof![
        6 => any::<u8>().prop_map(GenConfig::Valid),
        1 => Just(GenConfig::MissingCommand),
        1 => Just(GenConfig::UnknownPromise),
        1 => Just(GenConfig::RelativeUnveil),
        1 => Just(GenConfig::BadImportance),
    ]
}

fn gen_signal() -> impl Strategy<Value = GenSignal> {
    prop_oneof![
        3 => Just(GenSignal::Default),
        2 => Just(GenSignal::Term),
        1 => Just(GenSignal::Int),
        1 => Just(GenSignal::Hup),
        1 => Just(GenSignal::Usr1),
        1 => Just(GenSignal::Kill),
        1 => Just(GenSignal::Chld),
        1 => Just(GenSignal::Bogus),
    ]
}

fn gen_response() -> impl Strategy<Value = GenResponse> {
    prop_oneof![
        3 => Just(GenResponse::Default),
        2 => Just(GenResponse::Ignore),
        2 => (0u16..6000, 0u8..4).prop_map(|(ms, c)| GenResponse::Drain(ms, c)),
    ]
}

fn gen_script() -> impl Strategy<Value = GenScript> {
    (
        proptest::option::weighted(0.3, (0u16..8000, 0u8..=255)),
        gen_response(),
        0u8..3,
        prop_oneof![Just(0u8), 1u8..=200],
    )
        .prop_map(|(exit_after, on_signal, children, reap_ms)| GenScript {
            exit_after,
            on_signal,
            children,
            reap_ms,
        })
}

fn class() -> impl Strategy<Value = FailureClass> {
    prop_oneof![
        Just(FailureClass::Retryable),
        Just(FailureClass::Fatal),
        Just(FailureClass::Gone)
    ]
}

fn faulty_op() -> impl Strategy<Value = FaultyOp> {
    prop_oneof![
        3 => Just(FaultyOp::Launch),
        1 => Just(FaultyOp::Signal),
        1 => Just(FaultyOp::Sample),
        1 => Just(FaultyOp::Cleanup),
    ]
}

/// One step, weighted towards the requests and events that move tasks through their lives.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (slot(), gen_config(), gen_script(), proptest::bool::weighted(0.1))
            .prop_map(|(slot, cfg, script, reuse)| Step::Start { slot, cfg, script, reuse }),
        3 => (slot(), 0u8..=255).prop_map(|(slot, code)| Step::Exit { slot, code }),
        1 => slot().prop_map(|slot| Step::OomKill { slot }),
        1 => slot().prop_map(|slot| Step::Fork { slot }),
        1 => slot().prop_map(|slot| Step::LoseSupervisor { slot }),
        1 => (slot(), gen_response()).prop_map(|(slot, response)| Step::SetSignals { slot, response }),
        5 => (slot(), 0u16..5000, gen_signal())
            .prop_map(|(slot, timeout_ms, signal)| Step::Stop { slot, timeout_ms, signal }),
        4 => (slot(), any::<bool>()).prop_map(|(slot, force)| Step::Destroy { slot, force }),
        4 => (slot(), 1u8..=3).prop_map(|(slot, waiters)| Step::Wait { slot, waiters }),
        2 => slot().prop_map(|slot| Step::Inspect { slot }),
        2 => (slot(), gen_signal()).prop_map(|(slot, signal)| Step::Signal { slot, signal }),
        1 => slot().prop_map(|slot| Step::Stats { slot }),
        1 => slot().prop_map(|slot| Step::Exec { slot }),
        6 => prop_oneof![0u32..200, 0u32..3000, 0u32..12_000].prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::RestartPlugin),
        1 => any::<bool>().prop_map(|valid| Step::Reconfigure { valid }),
        1 => slot().prop_map(|slot| Step::Recover { slot }),
        1 => (faulty_op(), class()).prop_map(|(op, class)| Step::ArmFault { op, class }),
    ]
}

fn ordinal_faults(max_calls: u32) -> impl Strategy<Value = BTreeMap<u32, FailureClass>> {
    proptest::collection::btree_map(0..max_calls, class(), 0..3)
}

/// The initial fault plan, swarm style (VOPR's `options_swarm`): half the runs have no planned
/// faults at all, the rest a few, so both the clean paths and the failure paths get depth.
pub fn fault_plan() -> impl Strategy<Value = FaultPlan> {
    let faulty = (
        ordinal_faults(12),
        ordinal_faults(12),
        ordinal_faults(6),
        ordinal_faults(12),
        proptest::collection::btree_set((slot(), 0u32..4), 0..3),
    )
        .prop_map(
            |(fail_launch, fail_signal, fail_sample, fail_cleanup, gone)| {
                let reattach_gone: BTreeSet<TaskId> =
                    gone.into_iter().map(|(s, g)| task_id(s, g)).collect();
                FaultPlan {
                    fail_launch,
                    fail_signal,
                    fail_sample,
                    fail_cleanup,
                    reattach_gone,
                }
            },
        );
    prop_oneof![1 => Just(FaultPlan::none()), 1 => faulty]
}

/// A run: a fault plan and steps.
pub fn run_of(len: impl Into<SizeRange>) -> impl Strategy<Value = (FaultPlan, Vec<Step>)> {
    (fault_plan(), proptest::collection::vec(step(), len))
}
