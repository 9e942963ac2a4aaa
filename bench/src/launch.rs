//! Launch cost: `true` bare, under the original driver's `unshare` prefix, under bubblewrap,
//! and under our `sandbox` subcommand, timed interleaved in one run.

use crate::measure::{self, human_ns, ratio, verdict, MeasureError, Summary, Variant};
use crate::report::Table;
use std::path::Path;

/// Goals from the sandbox issue: ours ≤ 1.0× the unshare chain, ≤ 0.8× bwrap.
pub const GOAL_VS_UNSHARE: f64 = 1.0;
/// See [`GOAL_VS_UNSHARE`].
pub const GOAL_VS_BWRAP: f64 = 0.8;

/// The measured launch variants, p50 in ns by name.
pub struct LaunchResult {
    /// Rendered table.
    pub table: Table,
    /// Goal lines.
    pub goals: Vec<String>,
    /// (name, summary), in run order.
    pub summaries: Vec<(String, Summary)>,
}

/// Runs every launch variant `rounds` times. `bwrap` is skipped (with a note) when absent.
pub fn run(driver: &Path, rounds: usize) -> Result<LaunchResult, MeasureError> {
    let driver = driver.to_string_lossy();
    let truth = which("true").unwrap_or_else(|| "/usr/bin/true".into());
    let mut variants = vec![
        Variant::new("true (bare)", &[&truth]),
        Variant::new(
            "unshare --ipc --pid --mount-proc --fork true",
            &[
                "unshare",
                "--ipc",
                "--pid",
                "--mount-proc",
                "--fork",
                &truth,
            ],
        ),
    ];
    let have_bwrap = which("bwrap").is_some();
    if have_bwrap {
        variants.push(Variant::new(
            "bwrap --ro-bind / / --unshare-pid --unshare-ipc true",
            &[
                "bwrap",
                "--ro-bind",
                "/",
                "/",
                "--unshare-pid",
                "--unshare-ipc",
                &truth,
            ],
        ));
    }
    variants.push(Variant::new(
        "ours: sandbox -p \"stdio rpath\" -v r:/usr -- true",
        &[
            &driver,
            "sandbox",
            "-p",
            "stdio rpath",
            "-v",
            "r:/usr",
            "--",
            &truth,
        ],
    ));
    variants.push(Variant::new(
        "ours: sandbox -p \"stdio rpath\" -V -- true (seccomp only)",
        &[&driver, "sandbox", "-p", "stdio rpath", "-V", "--", &truth],
    ));
    let samples = measure::interleaved(&variants, rounds)?;
    let summaries: Vec<(String, Summary)> = variants
        .iter()
        .zip(&samples)
        .map(|(v, s)| (v.name.clone(), Summary::of(s)))
        .collect();
    let p50 = |i: usize| summaries[i].1.p50;
    let bare = p50(0);
    let unshare = p50(1);
    let bwrap = if have_bwrap { p50(2) } else { 0.0 };
    let mut table = Table::new(&["launch", "p50", "p99", "vs bare", "vs unshare", "vs bwrap"]);
    for (name, s) in &summaries {
        table.row(vec![
            name.clone(),
            human_ns(s.p50),
            human_ns(s.p99),
            ratio(s.p50, bare),
            ratio(s.p50, unshare),
            if have_bwrap {
                ratio(s.p50, bwrap)
            } else {
                "-".into()
            },
        ]);
    }
    let ours = p50(if have_bwrap { 3 } else { 2 });
    let mut goals = vec![format!(
        "ours / unshare = {} (goal ≤ {GOAL_VS_UNSHARE:.2}x): {}",
        ratio(ours, unshare),
        verdict(ours, unshare, GOAL_VS_UNSHARE)
    )];
    if have_bwrap {
        goals.push(format!(
            "ours / bwrap = {} (goal ≤ {GOAL_VS_BWRAP:.2}x): {}",
            ratio(ours, bwrap),
            verdict(ours, bwrap, GOAL_VS_BWRAP)
        ));
    } else {
        goals.push("bwrap not installed (apt-get install bubblewrap): no bwrap baseline".into());
    }
    Ok(LaunchResult {
        table,
        goals,
        summaries,
    })
}

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}
