//! The shared drive loop itself (`pledge_core::lifecycle::drive::settle`), as the shells use
//! it: output counting, the step bound, observation draining; and the error texts Nomad shows.

use pledge_backend_fake::{FakeBackend, ProcScript};
use pledge_core::lifecycle::drive::{settle, Sink};
use pledge_core::{
    Backend, Driver, DriverError, Input, RawTaskConfig, Reply, ReqId, Request, TaskEvent, TaskId,
    TaskSpec,
};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Collect {
    replies: Vec<(ReqId, Result<Reply, DriverError>)>,
    events: Vec<String>,
    commands: usize,
}

impl Sink for Collect {
    fn reply(&mut self, req: ReqId, reply: Result<Reply, DriverError>) {
        self.replies.push((req, reply));
    }
    fn event(&mut self, event: TaskEvent) {
        self.events.push(event.message);
    }
    fn before_command(&mut self, _cmd: &pledge_core::Command) {
        self.commands += 1;
    }
}

fn task() -> TaskId {
    TaskId::parse("alloc/web/00000001").unwrap_or_default()
}

fn start_request() -> Request {
    Request::Start {
        spec: Box::new(TaskSpec {
            id: task(),
            name: "web".into(),
            alloc_id: "alloc".into(),
            alloc_dir: "/var/lib/nomad/alloc/alloc".into(),
            ..TaskSpec::default()
        }),
        config: Box::new(RawTaskConfig {
            command: Some("/bin/sleep".into()),
            ..RawTaskConfig::default()
        }),
    }
}

/// A configured driver with a start request handled but not drained.
fn started(max_steps: usize) -> (Result<usize, usize>, Collect, Driver, FakeBackend) {
    let mut b = FakeBackend::default();
    let mut d = Driver::new(b.probe());
    let t0 = Instant::now();
    let mut sink = Collect::default();
    d.handle(
        t0,
        Input::Request {
            req: ReqId(1),
            body: Request::SetConfig(Box::default()),
        },
    );
    assert_eq!(settle(&mut d, &mut b, &mut || t0, &mut sink, 100), Ok(1));
    d.handle(
        t0,
        Input::Request {
            req: ReqId(2),
            body: start_request(),
        },
    );
    let r = settle(&mut d, &mut b, &mut || t0, &mut sink, max_steps);
    (r, sink, d, b)
}

#[test]
fn settle_counts_every_output_and_reports_hitting_its_bound() {
    // Launch command, Started reply, sandbox event.
    let (r, sink, _, _) = started(100);
    assert_eq!(r, Ok(3));
    assert_eq!(sink.commands, 1);
    assert!(matches!(
        sink.replies.last(),
        Some((ReqId(2), Ok(Reply::Started(_))))
    ));
    assert_eq!(sink.events.len(), 1);
    // Exactly enough steps is enough; one fewer is a liveness failure.
    assert_eq!(started(3).0, Ok(3));
    let (r, sink, _, _) = started(2);
    assert_eq!(r, Err(3));
    assert_eq!(sink.events.len(), 0, "nothing past the bound is delivered");
}

#[test]
fn settle_feeds_observations_until_quiet() {
    let (_, _, mut d, mut b) = started(100);
    let t0 = Instant::now();
    let mut sink = Collect::default();
    d.handle(
        t0,
        Input::Request {
            req: ReqId(3),
            body: Request::Wait(task()),
        },
    );
    assert_eq!(settle(&mut d, &mut b, &mut || t0, &mut sink, 100), Ok(0));
    assert!(b.exit(&task(), 4));
    // Nothing was handled yet: settle pulls the exit from the backend and delivers the reply.
    assert_eq!(settle(&mut d, &mut b, &mut || t0, &mut sink, 100), Ok(1));
    match sink.replies.as_slice() {
        [(ReqId(3), Ok(Reply::Exited(r)))] => assert_eq!(r.exit_code, 4),
        other => panic!("{other:?}"),
    }
    assert!(b.pending().is_empty());
}

#[test]
fn wrong_state_errors_name_the_phase_in_words() {
    let (_, _, mut d, mut b) = started(100);
    let t0 = Instant::now();
    let mut at = t0;
    let mut sink = Collect::default();
    let mut ask = |d: &mut Driver, b: &mut FakeBackend, req: u64, body: Request, at: Instant| {
        d.handle(
            at,
            Input::Request {
                req: ReqId(req),
                body,
            },
        );
        let mut s = Collect::default();
        let _ = settle(d, b, &mut || at, &mut s, 100);
        sink.replies.extend(s.replies.iter().cloned());
        s.replies
            .into_iter()
            .find(|(r, _)| *r == ReqId(req))
            .map(|(_, r)| match r {
                Ok(_) => "ok".to_string(),
                Err(e) => e.to_string(),
            })
            .unwrap_or_default()
    };
    let id = task();
    let destroy = |force| Request::Destroy {
        task: task(),
        force,
    };
    assert_eq!(
        ask(&mut d, &mut b, 10, destroy(false), at),
        format!("task {id} is running; cannot destroy without force")
    );
    b.set_script(&id, ProcScript::forever());
    assert!(b.set_ignores_signals(&id, true));
    let stop = Request::Stop {
        task: id.clone(),
        timeout: Duration::from_secs(5),
        signal: String::new(),
    };
    assert_eq!(ask(&mut d, &mut b, 11, stop, at), "");
    assert_eq!(
        ask(&mut d, &mut b, 12, destroy(false), at),
        format!("task {id} is stopping; cannot destroy without force")
    );
    at += Duration::from_secs(5);
    d.handle(at, Input::Tick);
    let _ = settle(&mut d, &mut b, &mut || at, &mut Collect::default(), 100);
    let signal = Request::Signal {
        task: id.clone(),
        signal: "SIGHUP".into(),
    };
    assert_eq!(
        ask(&mut d, &mut b, 13, signal, at),
        format!("task {id} is exited; cannot signal")
    );
    assert_eq!(ask(&mut d, &mut b, 14, destroy(false), at), "ok");
    assert_eq!(
        ask(&mut d, &mut b, 15, Request::Inspect(id), at),
        "task not found for given id"
    );
}

#[test]
fn a_forced_destroy_waiting_for_its_kill_says_being_destroyed() {
    let mut b = FakeBackend::default();
    b.set_script(
        &task(),
        ProcScript::forever().reaped_after(Duration::from_millis(50)),
    );
    let mut d = Driver::new(b.probe());
    let t0 = Instant::now();
    let mut sink = Collect::default();
    for (req, body) in [
        (1, Request::SetConfig(Box::default())),
        (2, start_request()),
        (
            3,
            Request::Destroy {
                task: task(),
                force: true,
            },
        ),
        (
            4,
            Request::Destroy {
                task: task(),
                force: true,
            },
        ),
    ] {
        d.handle(
            t0,
            Input::Request {
                req: ReqId(req),
                body,
            },
        );
        let _ = settle(&mut d, &mut b, &mut || t0, &mut sink, 100);
    }
    let texts: Vec<(u64, String)> = sink
        .replies
        .iter()
        .map(|(r, x)| {
            (
                r.0,
                x.as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        texts.last(),
        Some(&(
            4,
            format!("task {} is being destroyed; cannot destroy", task())
        ))
    );
    assert!(
        !texts.iter().any(|(r, _)| *r == 3),
        "the first destroy waits for the exit"
    );
    let later = t0 + Duration::from_millis(50);
    b.set_time(Duration::from_millis(50));
    d.handle(later, Input::Tick);
    let _ = settle(&mut d, &mut b, &mut || later, &mut sink, 100);
    assert!(matches!(
        sink.replies.last(),
        Some((ReqId(3), Ok(Reply::Destroyed)))
    ));
}

#[test]
fn an_earlier_now_is_treated_as_the_latest_one() {
    let (_, _, mut d, mut b) = started(100);
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(10);
    d.handle(later, Input::Tick);
    b.set_ignores_signals(&task(), true);
    // A shell whose clock stepped back hands in t0 again: the deadline counts from `later`.
    d.handle(
        t0,
        Input::Request {
            req: ReqId(9),
            body: Request::Stop {
                task: task(),
                timeout: Duration::from_secs(5),
                signal: String::new(),
            },
        },
    );
    let _ = settle(&mut d, &mut b, &mut || t0, &mut Collect::default(), 100);
    assert_eq!(d.poll_timeout(), Some(later + Duration::from_secs(5)));
}

#[test]
fn commands_are_in_flight_until_settle_completes_them() {
    let mut b = FakeBackend::default();
    let mut d = Driver::new(b.probe());
    let t0 = Instant::now();
    let mut sink = Collect::default();
    d.handle(
        t0,
        Input::Request {
            req: ReqId(1),
            body: Request::SetConfig(Box::default()),
        },
    );
    d.handle(
        t0,
        Input::Request {
            req: ReqId(2),
            body: start_request(),
        },
    );
    assert_eq!(d.pending_ops(), 1, "the launch is issued");
    assert_eq!(settle(&mut d, &mut b, &mut || t0, &mut sink, 100), Ok(4));
    assert_eq!(d.pending_ops(), 0);
    assert!(d.plugin_config().is_some());
    assert_eq!(d.task_ids().collect::<Vec<_>>(), vec![&task()]);
}

#[test]
fn stop_events_say_the_grace_period_readably() {
    let (_, _, mut d, mut b) = started(100);
    assert!(b.set_ignores_signals(&task(), true));
    let t0 = Instant::now();
    let mut sink = Collect::default();
    for (req, ms) in [(20u64, 5000u64), (21, 1500), (22, 1000), (23, 250)] {
        d.handle(
            t0,
            Input::Request {
                req: ReqId(req),
                body: Request::Stop {
                    task: task(),
                    timeout: Duration::from_millis(ms),
                    signal: "SIGINT".into(),
                },
            },
        );
        let _ = settle(&mut d, &mut b, &mut || t0, &mut sink, 100);
    }
    let after: Vec<String> = sink
        .events
        .iter()
        .map(|e| {
            e.trim_start_matches("sent SIGINT; killing all task processes after ")
                .to_string()
        })
        .collect();
    assert_eq!(after, ["5s", "1.500s", "1s", "250ms"]);
}
