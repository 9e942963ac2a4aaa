//! Behaviour specific to the fake: the call log, the fault plan, world control, crash
//! semantics and virtual time.

use pledge_backend_fake::{
    plan_for, CallOp, FakeBackend, FakeError, FaultPlan, FaultyOp, ProcRole, ProcScript,
    SignalResponse,
};
use pledge_core::{Backend, Classify, Effect, FailureClass, Observation, Signal, TaskId};
use std::time::{Duration, SystemTime};

fn id(n: u32) -> TaskId {
    TaskId::parse(format!("alloc/t/{n:08x}")).unwrap_or_default()
}

fn launch(
    b: &mut FakeBackend,
    n: u32,
    script: ProcScript,
) -> Result<pledge_core::Launched, FakeError> {
    let task = id(n);
    b.set_script(&task, script);
    b.launch(&plan_for(&task, "/bin/sleep", &["1000"]))
}

fn drain(b: &mut FakeBackend) -> Vec<Observation> {
    let mut v = Vec::new();
    b.drain_observations(&mut v);
    v
}

fn exit_codes(obs: &[Observation]) -> Vec<(TaskId, i32, i32, bool)> {
    obs.iter()
        .filter_map(|o| match o {
            Observation::Exited { task, result, .. } => Some((
                task.clone(),
                result.exit_code,
                result.signal,
                result.oom_killed,
            )),
            Observation::Note { .. } => None,
        })
        .collect()
}

#[test]
fn every_call_is_logged_with_its_time_and_failure() {
    let mut b = FakeBackend::default();
    b.set_time(Duration::from_millis(5));
    assert!(launch(&mut b, 1, ProcScript::forever()).is_ok());
    assert!(b.signal(&id(1), Signal::TERM).is_ok());
    assert!(b.sample(&id(2)).is_err());
    let _ = b.probe();
    assert!(b.cleanup(&id(1)).is_ok());
    let ops: Vec<(Duration, CallOp, Option<FailureClass>)> = b
        .calls()
        .iter()
        .map(|c| (c.at, c.op.clone(), c.failed))
        .collect();
    let t = Duration::from_millis(5);
    assert_eq!(
        ops,
        vec![
            (t, CallOp::Launch(id(1)), None),
            (t, CallOp::Signal(id(1), Signal::TERM), None),
            (t, CallOp::Sample(id(2)), Some(FailureClass::Gone)),
            (t, CallOp::Probe, None),
            (
                t,
                CallOp::Cleanup {
                    task: id(1),
                    killed: 0
                },
                None
            ),
        ]
    );
    // The SIGTERM killed it (default handling); its exit is pending until drained.
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(1), 0, 15, false)]);
    assert_eq!(
        b.calls().last().map(|c| c.op.clone()),
        Some(CallOp::Drain(1))
    );
}

#[test]
fn fault_plan_fails_the_nth_launch_and_creates_nothing() {
    let mut plan = FaultPlan::none();
    plan.fail_launch.insert(1, FailureClass::Retryable);
    let mut b = FakeBackend::new(plan);
    assert!(launch(&mut b, 1, ProcScript::forever()).is_ok());
    let err = launch(&mut b, 2, ProcScript::forever()).err();
    assert_eq!(
        err,
        Some(FakeError::Injected {
            op: FaultyOp::Launch,
            class: FailureClass::Retryable
        })
    );
    assert_eq!(err.map(|e| e.class()), Some(FailureClass::Retryable));
    assert!(!b.knows(&id(2)));
    assert!(b.live_pids(&id(2)).is_empty());
    assert!(
        launch(&mut b, 3, ProcScript::forever()).is_ok(),
        "only the planned call fails"
    );
}

#[test]
fn armed_fault_fails_the_next_call_only() {
    let mut b = FakeBackend::default();
    assert!(launch(&mut b, 1, ProcScript::forever()).is_ok());
    b.fail_next(FaultyOp::Cleanup, FailureClass::Retryable);
    assert!(b.cleanup(&id(1)).is_err());
    assert!(b.knows(&id(1)), "a failed cleanup removes nothing");
    assert_eq!(b.live_pids(&id(1)).len(), 1);
    assert!(b.cleanup(&id(1)).is_ok());
    assert!(!b.knows(&id(1)));
    b.fail_next(FaultyOp::Sample, FailureClass::Fatal);
    assert!(launch(&mut b, 2, ProcScript::forever()).is_ok());
    assert_eq!(
        b.sample(&id(2)).err().map(|e| e.class()),
        Some(FailureClass::Fatal)
    );
    assert!(b.sample(&id(2)).is_ok());
}

#[test]
fn duplicate_launch_is_fatal() {
    let mut b = FakeBackend::default();
    assert!(launch(&mut b, 1, ProcScript::forever()).is_ok());
    let e = launch(&mut b, 1, ProcScript::forever()).err();
    assert_eq!(e.as_ref().map(Classify::class), Some(FailureClass::Fatal));
    assert_eq!(b.live_pids(&id(1)).len(), 1);
}

#[test]
fn wall_time_follows_the_virtual_clock() {
    let mut b = FakeBackend::default();
    let wall0 = b.wall(Duration::ZERO);
    b.set_time(Duration::from_secs(3));
    let l = launch(&mut b, 1, ProcScript::exits(Duration::from_millis(1500), 4));
    assert_eq!(
        l.map(|l| l.state.started_at).ok(),
        Some(wall0 + Duration::from_secs(3))
    );
    b.set_time(Duration::from_secs(10));
    match drain(&mut b).as_slice() {
        [Observation::Exited { at, result, .. }] => {
            assert_eq!(
                *at,
                wall0 + Duration::from_millis(4500),
                "exit happens at its own time"
            );
            assert_eq!(result.exit_code, 4);
        }
        other => panic!("expected one exit, got {other:?}"),
    }
    // Time never goes back.
    b.set_time(Duration::from_secs(1));
    assert_eq!(b.now(), Duration::from_secs(10));
    assert!(wall0 > SystemTime::UNIX_EPOCH);
}

#[test]
fn scripted_exit_fires_at_its_time_and_not_before() {
    let mut b = FakeBackend::default();
    assert!(launch(&mut b, 1, ProcScript::exits(Duration::from_secs(2), 9)).is_ok());
    assert_eq!(b.next_event_at(), Some(Duration::from_secs(2)));
    b.set_time(Duration::from_millis(1999));
    assert!(drain(&mut b).is_empty());
    assert!(b.is_running(&id(1)));
    b.set_time(Duration::from_secs(2));
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(1), 9, 0, false)]);
    assert_eq!(b.next_event_at(), None);
}

#[test]
fn signal_responses() {
    let mut b = FakeBackend::default();
    // Default: SIGCHLD is ignored, SIGHUP kills.
    assert!(launch(&mut b, 1, ProcScript::forever()).is_ok());
    let chld = Signal::parse("SIGCHLD").unwrap_or(Signal::TERM);
    assert!(b.signal(&id(1), chld).is_ok());
    assert!(b.is_running(&id(1)));
    let hup = Signal::parse("SIGHUP").unwrap_or(Signal::TERM);
    assert!(b.signal(&id(1), hup).is_ok());
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(1), 0, 1, false)]);
    // Ignore: only SIGKILL works.
    assert!(launch(&mut b, 2, ProcScript::forever().ignoring_signals()).is_ok());
    assert!(b.signal(&id(2), Signal::TERM).is_ok());
    assert!(b.is_running(&id(2)));
    assert!(b.signal(&id(2), Signal::KILL).is_ok());
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(2), 0, 9, false)]);
    // Drain: exits with its code after the delay; a second SIGTERM does not restart it.
    let drain_script = ProcScript {
        on_signal: SignalResponse::ExitAfter {
            delay: Duration::from_secs(1),
            code: 0,
        },
        ..ProcScript::forever()
    };
    assert!(launch(&mut b, 3, drain_script).is_ok());
    assert!(b.signal(&id(3), Signal::TERM).is_ok());
    b.set_time(Duration::from_millis(500));
    assert!(b.signal(&id(3), Signal::TERM).is_ok());
    b.set_time(Duration::from_millis(1000));
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(3), 0, 0, false)]);
    assert_eq!(b.next_event_at(), None);
    // Set at run time.
    assert!(launch(&mut b, 4, ProcScript::forever()).is_ok());
    assert!(b.set_ignores_signals(&id(4), true));
    assert!(b.signal(&id(4), Signal::INT).is_ok());
    assert!(b.is_running(&id(4)));
}

#[test]
fn children_outlive_the_main_until_kill_all_or_cleanup() {
    let mut b = FakeBackend::default();
    assert!(launch(&mut b, 1, ProcScript::forever().with_children(2)).is_ok());
    assert_eq!(b.fork_child(&id(1)).map(|_| ()), Some(()));
    assert_eq!(b.live_pids(&id(1)).len(), 4);
    assert!(b.exit(&id(1), 0));
    let left: Vec<ProcRole> = b.processes().map(|(_, _, r)| r).collect();
    assert_eq!(
        left,
        vec![ProcRole::Child; 3],
        "daemonized children stay in the cgroup"
    );
    assert!(b.cleanup(&id(1)).is_ok());
    assert_eq!(b.processes().count(), 0);
    assert!(matches!(
        b.calls().last().map(|c| &c.op),
        Some(CallOp::Cleanup { killed: 3, .. })
    ));
}

#[test]
fn oom_kill_reports_oom_and_kills_everything() {
    let mut b = FakeBackend::default();
    assert!(launch(&mut b, 1, ProcScript::forever().with_children(1)).is_ok());
    assert!(b.oom_kill(&id(1)));
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(1), 0, 9, true)]);
    assert!(b.live_pids(&id(1)).is_empty());
    assert!(!b.oom_kill(&id(1)));
}

#[test]
fn crash_loses_observations_but_not_the_recorded_exit() {
    let mut b = FakeBackend::default();
    let l = launch(&mut b, 1, ProcScript::forever());
    let Ok(l) = l else { panic!("launch failed") };
    assert!(b.exit(&id(1), 42));
    b.crash_plugin();
    assert!(
        drain(&mut b).is_empty(),
        "the dead plugin's undelivered observations are gone"
    );
    match b.reattach(&l.state) {
        Ok(Effect::AlreadyExited { result, state, .. }) => {
            assert_eq!(result.exit_code, 42);
            assert_eq!(state.started_at, l.state.started_at);
        }
        other => panic!("expected AlreadyExited, got {other:?}"),
    }
}

#[test]
fn exit_while_unwatched_is_observed_only_through_reattach() {
    let mut b = FakeBackend::default();
    let Ok(l) = launch(&mut b, 1, ProcScript::exits(Duration::from_secs(1), 6)) else {
        panic!("launch failed")
    };
    b.crash_plugin();
    b.set_time(Duration::from_secs(2));
    assert!(drain(&mut b).is_empty());
    assert!(matches!(
        b.reattach(&l.state),
        Ok(Effect::AlreadyExited { .. })
    ));
    // A running task, once re-attached, is watched again.
    let Ok(l2) = launch(&mut b, 2, ProcScript::forever()) else {
        panic!("launch failed")
    };
    b.crash_plugin();
    assert!(b.exit(&id(2), 1) && drain(&mut b).is_empty());
    assert!(matches!(
        b.reattach(&l2.state),
        Ok(Effect::AlreadyExited { .. })
    ));
    let Ok(_) = launch(&mut b, 3, ProcScript::forever()) else {
        panic!("launch failed")
    };
    let s3 = b.state_of(&id(3)).cloned();
    b.crash_plugin();
    assert!(s3.is_some_and(|s| matches!(b.reattach(&s), Ok(Effect::Launched(_)))));
    assert!(b.exit(&id(3), 2));
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(3), 2, 0, false)]);
}

#[test]
fn lost_supervisor_kills_the_task_and_reports_it() {
    let mut b = FakeBackend::default();
    assert!(launch(&mut b, 1, ProcScript::forever().with_children(1)).is_ok());
    assert!(b.lose_supervisor(&id(1)));
    let obs = drain(&mut b);
    match obs.as_slice() {
        [Observation::Exited { result, .. }] => assert!(result.err.is_some(), "{result:?}"),
        other => panic!("expected one exit, got {other:?}"),
    }
    assert!(
        b.live_pids(&id(1)).is_empty(),
        "a lost task does not run unmanaged"
    );
}

#[test]
fn reattach_gone_tasks_lose_their_supervisor_at_the_crash() {
    let mut plan = FaultPlan::none();
    plan.reattach_gone.insert(id(1));
    let mut b = FakeBackend::new(plan);
    let Ok(l) = launch(&mut b, 1, ProcScript::forever()) else {
        panic!("launch failed")
    };
    b.crash_plugin();
    assert!(b.live_pids(&id(1)).is_empty());
    let e = b.reattach(&l.state).err();
    assert_eq!(e, Some(FakeError::SupervisorGone(id(1))));
    assert!(drain(&mut b).is_empty());
}

#[test]
fn reattach_checks_the_identity() {
    let mut b = FakeBackend::default();
    let Ok(l) = launch(&mut b, 1, ProcScript::forever()) else {
        panic!("launch failed")
    };
    let mut forged = l.state.clone();
    forged.process.pid_start += 1;
    let e = b.reattach(&forged);
    assert!(
        matches!(e, Err(FakeError::IdentityMismatch { .. })),
        "{e:?}"
    );
    assert_eq!(e.err().map(|e| e.class()), Some(FailureClass::Gone));
}

#[test]
fn same_world_calls_give_same_log() {
    fn run() -> Vec<pledge_backend_fake::Call> {
        let mut plan = FaultPlan::none();
        plan.fail_signal.insert(1, FailureClass::Retryable);
        let mut b = FakeBackend::new(plan);
        for n in 0..5 {
            let _ = launch(
                &mut b,
                n,
                ProcScript::exits(Duration::from_millis(100 * u64::from(n)), 1),
            );
            let _ = b.signal(&id(n), Signal::TERM);
        }
        b.set_time(Duration::from_secs(1));
        let _ = drain(&mut b);
        b.calls().to_vec()
    }
    assert_eq!(run(), run());
}

#[test]
fn kills_take_the_reap_delay_to_land() {
    let mut b = FakeBackend::default();
    let script = ProcScript::forever()
        .with_children(1)
        .reaped_after(Duration::from_millis(30));
    assert!(launch(&mut b, 1, script).is_ok());
    assert!(b.kill_all(&id(1)).is_ok());
    assert!(b.is_running(&id(1)) && b.is_dying(&id(1)));
    assert!(
        b.kill_all(&id(1)).is_ok(),
        "a second kill while dying is fine"
    );
    assert_eq!(b.next_event_at(), Some(Duration::from_millis(30)));
    assert!(drain(&mut b).is_empty());
    b.set_time(Duration::from_millis(30));
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(1), 0, 9, false)]);
    assert!(b.live_pids(&id(1)).is_empty() && !b.is_dying(&id(1)));
    // SIGKILL of the main alone spares the children, also when delayed.
    assert!(launch(&mut b, 2, script).is_ok());
    assert!(b.signal(&id(2), Signal::KILL).is_ok());
    b.set_time(Duration::from_millis(60));
    assert_eq!(exit_codes(&drain(&mut b)), vec![(id(2), 0, 9, false)]);
    assert_eq!(b.live_pids(&id(2)).len(), 1);
    // Cleanup does not wait: it kills what is left at once.
    assert!(launch(&mut b, 3, script).is_ok());
    assert!(b.kill_all(&id(3)).is_ok());
    assert!(b.cleanup(&id(3)).is_ok());
    assert!(b.live_pids(&id(3)).is_empty());
    assert_eq!(b.next_event_at(), None);
}
