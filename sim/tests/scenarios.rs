//! Hand-written runs for the rules the issue names, each asserting on the world directly as
//! well as through the invariant checkers.

use pledge_backend_fake::{CallOp, FaultPlan};
use pledge_core::{PhaseName, Reply, Request};
use pledge_sim::step::{task_id, GenConfig, GenResponse, GenScript, GenSignal};
use pledge_sim::{Runner, Step};
use std::time::Duration;

fn runner() -> Runner {
    match Runner::new(FaultPlan::none()) {
        Ok(r) => r,
        Err(v) => panic!("{v}"),
    }
}

fn apply(r: &mut Runner, steps: &[Step]) {
    for s in steps {
        if let Err(v) = r.apply(s) {
            panic!("{v}");
        }
    }
}

fn start(slot: u8, on_signal: GenResponse) -> Step {
    Step::Start {
        slot,
        cfg: GenConfig::Valid(0),
        script: GenScript {
            exit_after: None,
            on_signal,
            children: 1,
            reap_ms: 0,
        },
        reuse: false,
    }
}

fn kill_times(r: &Runner) -> Vec<Duration> {
    r.world
        .backend
        .calls()
        .iter()
        .filter(|c| matches!(c.op, CallOp::KillAll(_)))
        .map(|c| c.at)
        .collect()
}

#[test]
fn ignored_stop_signal_is_followed_by_one_kill_exactly_at_the_deadline() {
    let mut r = runner();
    apply(
        &mut r,
        &[
            start(0, GenResponse::Ignore),
            Step::Advance { ms: 500 },
            Step::Stop {
                slot: 0,
                timeout_ms: 1000,
                signal: GenSignal::Default,
            },
            Step::Advance { ms: 999 },
        ],
    );
    let t = task_id(0, 0);
    assert!(r.world.backend.is_running(&t), "killed before the deadline");
    assert!(kill_times(&r).is_empty());
    apply(&mut r, &[Step::Advance { ms: 5000 }]);
    assert_eq!(kill_times(&r), vec![Duration::from_millis(1500)]);
    assert!(
        r.world.backend.live_pids(&t).is_empty(),
        "the child died with the kill"
    );
    assert!(r
        .world
        .backend
        .calls()
        .iter()
        .any(|c| c.op == CallOp::Signal(t.clone(), pledge_core::Signal::TERM)));
    assert!(r.teardown().is_ok());
}

#[test]
fn graceful_exit_before_the_deadline_is_not_killed() {
    let mut r = runner();
    apply(
        &mut r,
        &[
            start(0, GenResponse::Drain(300, 0)),
            Step::Stop {
                slot: 0,
                timeout_ms: 1000,
                signal: GenSignal::Term,
            },
            Step::Advance { ms: 5000 },
        ],
    );
    assert!(kill_times(&r).is_empty());
    let t = task_id(0, 0);
    let view = r.world.driver.task(&t);
    assert_eq!(view.as_ref().map(|v| v.phase), Some(PhaseName::Exited));
    assert_eq!(
        view.and_then(|v| v.result).map(|x| (x.exit_code, x.signal)),
        Some((0, 0))
    );
}

#[test]
fn concurrent_waiters_before_and_after_exit_get_the_same_result() {
    let mut r = runner();
    apply(
        &mut r,
        &[
            start(1, GenResponse::Default),
            Step::Wait {
                slot: 1,
                waiters: 3,
            },
            Step::Exit { slot: 1, code: 7 },
            Step::Wait {
                slot: 1,
                waiters: 2,
            },
        ],
    );
    let results: Vec<i32> = r
        .world
        .requests
        .iter()
        .filter(|(_, s)| matches!(s.body, Request::Wait(_)))
        .map(|(req, _)| match r.world.reply_of(*req) {
            Some(Ok(Reply::Exited(x))) => x.exit_code,
            other => panic!("wait answered {other:?}"),
        })
        .collect();
    assert_eq!(results, vec![7; 5]);
}

#[test]
fn destroy_without_force_of_a_running_task_changes_nothing() {
    let mut r = runner();
    apply(
        &mut r,
        &[
            start(0, GenResponse::Default),
            Step::Destroy {
                slot: 0,
                force: false,
            },
        ],
    );
    let t = task_id(0, 0);
    assert!(r.world.backend.is_running(&t));
    assert_eq!(
        r.world.driver.task(&t).map(|v| v.phase),
        Some(PhaseName::Running)
    );
    apply(
        &mut r,
        &[Step::Destroy {
            slot: 0,
            force: true,
        }],
    );
    assert!(r.world.driver.task(&t).is_none());
    assert!(r.world.backend.live_pids(&t).is_empty());
    assert!(!r.world.backend.knows(&t));
}

#[test]
fn recovered_task_reports_the_exit_code_it_had_while_the_plugin_was_down() {
    let mut r = runner();
    apply(
        &mut r,
        &[
            start(0, GenResponse::Default),
            start(1, GenResponse::Default),
        ],
    );
    let (a, b) = (task_id(0, 0), task_id(1, 0));
    // Crash, then a exits while nobody watches, through a plugin restart.
    r.world.backend.crash_plugin();
    assert!(r.world.backend.exit(&a, 42));
    apply(
        &mut r,
        &[
            Step::RestartPlugin,
            Step::Wait {
                slot: 0,
                waiters: 2,
            },
        ],
    );
    let waits: Vec<_> = r
        .world
        .requests
        .iter()
        .filter(|(_, s)| s.body == Request::Wait(a.clone()))
        .map(|(req, _)| r.world.reply_of(*req).cloned())
        .collect();
    assert_eq!(waits.len(), 2);
    for w in waits {
        assert!(
            matches!(w, Some(Ok(Reply::Exited(ref x))) if x.exit_code == 42),
            "{w:?}"
        );
    }
    // b still runs, keeps its original start time, and its later exit is seen.
    let started = r.world.backend.state_of(&b).map(|s| s.started_at);
    assert_eq!(r.world.driver.task(&b).and_then(|v| v.started_at), started);
    apply(
        &mut r,
        &[
            Step::Exit { slot: 1, code: 3 },
            Step::Wait {
                slot: 1,
                waiters: 1,
            },
        ],
    );
    assert_eq!(
        r.world
            .driver
            .task(&b)
            .and_then(|v| v.result)
            .map(|x| x.exit_code),
        Some(3)
    );
}

#[test]
fn invalid_configs_never_reach_the_backend() {
    let mut r = runner();
    for (slot, cfg) in [
        GenConfig::MissingCommand,
        GenConfig::UnknownPromise,
        GenConfig::RelativeUnveil,
        GenConfig::BadImportance,
    ]
    .into_iter()
    .enumerate()
    {
        let slot = u8::try_from(slot).unwrap_or(0);
        apply(
            &mut r,
            &[Step::Start {
                slot,
                cfg,
                script: GenScript {
                    exit_after: None,
                    on_signal: GenResponse::Default,
                    children: 0,
                    reap_ms: 0,
                },
                reuse: false,
            }],
        );
    }
    assert!(!r
        .world
        .backend
        .calls()
        .iter()
        .any(|c| matches!(c.op, CallOp::Launch(_))));
}

#[test]
fn the_same_run_gives_the_same_trace() {
    let steps = [
        start(0, GenResponse::Drain(2000, 1)),
        start(1, GenResponse::Ignore),
        Step::Stop {
            slot: 0,
            timeout_ms: 1000,
            signal: GenSignal::Int,
        },
        Step::Stop {
            slot: 1,
            timeout_ms: 10,
            signal: GenSignal::Hup,
        },
        Step::RestartPlugin,
        Step::Advance { ms: 3000 },
        Step::Destroy {
            slot: 0,
            force: false,
        },
    ];
    let a = pledge_sim::run(FaultPlan::none(), &steps);
    let b = pledge_sim::run(FaultPlan::none(), &steps);
    match (a, b) {
        (Ok((_, x)), Ok((_, y))) => assert_eq!(x, y),
        (a, b) => panic!("{a:?} {b:?}"),
    }
}

#[test]
fn failed_cleanup_after_a_lost_task_is_retried_by_nomads_destroy() {
    let mut plan = FaultPlan::none();
    plan.reattach_gone.insert(task_id(0, 0));
    let mut r = match Runner::new(plan) {
        Ok(r) => r,
        Err(v) => panic!("{v}"),
    };
    apply(
        &mut r,
        &[
            start(0, GenResponse::Default),
            Step::ArmFault {
                op: pledge_backend_fake::FaultyOp::Cleanup,
                class: pledge_core::FailureClass::Retryable,
            },
            Step::RestartPlugin,
        ],
    );
    let stats = match r.teardown() {
        Ok(s) => s,
        Err(v) => panic!("{v}"),
    };
    println!("{}", r.world.trace_tail(40));
    assert_eq!(
        stats.leaked_state, 0,
        "the lost task's cgroup and state dir were left behind"
    );
}

#[test]
fn a_stop_while_the_kill_is_landing_does_not_kill_again() {
    let mut r = runner();
    let slow = Step::Start {
        slot: 0,
        cfg: GenConfig::Valid(0),
        script: GenScript {
            exit_after: None,
            on_signal: GenResponse::Ignore,
            children: 0,
            reap_ms: 100,
        },
        reuse: false,
    };
    apply(
        &mut r,
        &[
            slow,
            Step::Stop {
                slot: 0,
                timeout_ms: 0,
                signal: GenSignal::Term,
            },
            Step::Advance { ms: 10 },
            Step::Stop {
                slot: 0,
                timeout_ms: 10,
                signal: GenSignal::Term,
            },
            Step::Advance { ms: 50 },
        ],
    );
    assert_eq!(
        kill_times(&r),
        vec![Duration::ZERO],
        "one stop episode, one kill"
    );
    apply(&mut r, &[Step::Advance { ms: 100 }]);
    assert!(!r.world.backend.is_running(&task_id(0, 0)));
    let stops_answered = r
        .world
        .requests
        .iter()
        .filter(|(_, s)| matches!(s.body, Request::Stop { .. }))
        .filter(|(req, _)| matches!(r.world.reply_of(**req), Some(Ok(Reply::Stopped))))
        .count();
    assert_eq!(stops_answered, 2);
}
