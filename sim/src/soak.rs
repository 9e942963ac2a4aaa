//! Soak mode: long runs drawn from a seed, each run twice to prove the trace is a function of
//! the seed alone (madsim's `check_determinism`, FoundationDB's unseed check). The steps come
//! from the same generators as the property test, drawn with proptest's seeded ChaCha RNG
//! instead of its shrinking runner.

use crate::run::{run, RunStats, Violation};
use crate::step::run_of;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Why a soak seed failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SoakError {
    /// An invariant failed.
    #[error("{0}\nreproduce with SIM_SEED={1}")]
    Violation(Box<Violation>, u64),
    /// Two runs of one seed produced different traces.
    #[error("seed {0} is not deterministic: trace hashes {1:#x} and {2:#x}\nreproduce with SIM_SEED={0}")]
    Nondeterministic(u64, u64, u64),
    /// The generator could not draw a run.
    #[error("generator failed for seed {0}: {1}\nreproduce with SIM_SEED={0}")]
    Generator(u64, String),
}

/// Draws the run for `seed` with `steps` steps.
pub fn draw(
    seed: u64,
    steps: usize,
) -> Result<(pledge_backend_fake::FaultPlan, Vec<crate::Step>), SoakError> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(b"pledgsim");
    let rng = TestRng::from_seed(RngAlgorithm::XorShift, &key[..16]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let tree = run_of(steps..=steps)
        .new_tree(&mut runner)
        .map_err(|e| SoakError::Generator(seed, e.to_string()))?;
    Ok(tree.current())
}

/// Runs seed `seed` twice and compares the traces.
pub fn soak_seed(seed: u64, steps: usize) -> Result<RunStats, SoakError> {
    let (plan, run_steps) = draw(seed, steps)?;
    let (stats, a) =
        run(plan.clone(), &run_steps).map_err(|v| SoakError::Violation(Box::new(v), seed))?;
    let (_, b) = run(plan, &run_steps).map_err(|v| SoakError::Violation(Box::new(v), seed))?;
    if a != b {
        return Err(SoakError::Nondeterministic(seed, a, b));
    }
    Ok(stats)
}
