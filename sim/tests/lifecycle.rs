//! The lifecycle simulation: a property test over generated runs (shrinking to a minimal
//! failing sequence, persisted in `proptest-regressions/`) and the seeded soak.

use pledge_sim::soak::soak_seed;
use pledge_sim::step::run_of;
use pledge_sim::{run, RunStats};
use proptest::prelude::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn cases() -> u32 {
    u32::try_from(env_u64("PROPTEST_CASES", 512)).unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 20_000,
        // One committed file, relative to the package (cargo runs tests from sim/).
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/lifecycle.txt"),
        )),
        .. ProptestConfig::default()
    })]

    /// Every invariant holds after every step of every generated run.
    #[test]
    fn lifecycle_invariants_hold((faults, steps) in run_of(1..60)) {
        if let Err(v) = run(faults, &steps) {
            return Err(TestCaseError::fail(v.to_string()));
        }
    }
}

/// Long seeded runs, each run twice to check the trace is identical. `SIM_SEED=<n>` replays one
/// seed; `SIM_SEEDS=<count>` (default 1000) and `SIM_SEED_START` pick a range; `SIM_STEPS`
/// sets the run length (default 200).
#[test]
fn soak() {
    let steps = usize::try_from(env_u64("SIM_STEPS", 200)).unwrap_or(200);
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => match s.trim().parse() {
            Ok(n) => vec![n],
            Err(_) => panic!("SIM_SEED={s:?} is not a number"),
        },
        Err(_) => {
            let start = env_u64("SIM_SEED_START", 0);
            let n = env_u64("SIM_SEEDS", 1000);
            (start..start.saturating_add(n)).collect()
        }
    };
    let mut total = RunStats::default();
    for seed in &seeds {
        match soak_seed(*seed, steps) {
            Ok(s) => {
                total.steps += s.steps;
                total.requests += s.requests;
                total.started += s.started;
                total.kills += s.kills;
                total.restarts += s.restarts;
                total.exits_reported += s.exits_reported;
                total.leaked_state += s.leaked_state;
            }
            Err(e) => panic!("{e}"),
        }
    }
    println!(
        "soak: {} seeds x {steps} steps, each twice: {} steps, {} requests, {} starts, {} kills, \
         {} restarts, {} exit results, {} tasks with leaked state",
        seeds.len(),
        total.steps,
        total.requests,
        total.started,
        total.kills,
        total.restarts,
        total.exits_reported,
        total.leaked_state
    );
    // The runs must reach the interesting states, or the soak proves little.
    if seeds.len() >= 100 {
        assert!(
            total.started > seeds.len(),
            "too few successful starts: {total:?}"
        );
        assert!(
            total.kills > 0,
            "no stop deadline or forced destroy ever killed: {total:?}"
        );
        assert!(total.restarts > 0, "no plugin restart: {total:?}");
        assert!(
            total.exits_reported > 0,
            "no exit result reported: {total:?}"
        );
    }
}
