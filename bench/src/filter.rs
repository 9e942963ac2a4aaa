//! Filter cost: a syscall-heavy C loop (getppid, fstat, read of /dev/zero, openat+close) run
//! unfiltered and under our sandbox with `stdio`, `stdio rpath` and every promise, with and
//! without Landlock. The loop times itself, so launch cost is excluded.

use crate::measure::{human_ns, ratio, verdict, MeasureError, Summary, Variant};
use crate::report::Table;
use pledge_core::Promise;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Goal from the sandbox issue: filtered ≤ 1.05× unfiltered.
pub const GOAL: f64 = 1.05;

const SOURCE: &str = include_str!("syscall_loop.c");

/// Why the loop program could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// IO in the scratch dir.
    #[error("writing the loop source to {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No C compiler worked.
    #[error("cannot compile the syscall loop with cc (apt-get install gcc libc6-dev): {0}")]
    Compile(String),
}

/// Compiles the loop into `dir`, statically when libc.a is there (no loader in the numbers).
pub fn build_loop(dir: &Path) -> Result<PathBuf, BuildError> {
    let src = dir.join("syscall_loop.c");
    let exe = dir.join("syscall_loop");
    std::fs::write(&src, SOURCE).map_err(|source| BuildError::Io {
        path: src.clone(),
        source,
    })?;
    let mut last = String::new();
    for static_link in [true, false] {
        let mut cc = Command::new("cc");
        cc.arg("-O2").arg("-o").arg(&exe).arg(&src);
        if static_link {
            cc.arg("-static");
        }
        match cc.output() {
            Ok(out) if out.status.success() => return Ok(exe),
            Ok(out) => last = String::from_utf8_lossy(&out.stderr).into_owned(),
            Err(e) => last = e.to_string(),
        }
    }
    Err(BuildError::Compile(last))
}

/// One row: a label, the loop's argv, and which unfiltered row is its baseline.
struct Row {
    variant: Variant,
    baseline: Option<usize>,
    /// The allow-all-filter row of the same loop: what any seccomp filter costs here.
    floor: Option<usize>,
}

/// Measured rows and goal verdicts.
pub struct FilterResult {
    /// Rendered table.
    pub table: Table,
    /// Goal lines.
    pub goals: Vec<String>,
}

/// Runs every row `runs` times interleaved, `iterations` loop iterations each.
pub fn run(
    driver: &Path,
    loop_exe: &Path,
    iterations: u64,
    runs: usize,
) -> Result<FilterResult, MeasureError> {
    let driver = driver.to_string_lossy().into_owned();
    let exe = loop_exe.to_string_lossy().into_owned();
    let n = iterations.to_string();
    let all: Vec<&str> = Promise::ALL.iter().map(|p| p.name()).collect();
    let all = all.join(" ");
    let unveil_exe = format!("rx:{exe}");
    let sandboxed = |name: &str, promises: &str, landlock: bool, open: &str, base: usize| {
        let mut argv: Vec<&str> = vec![&driver, "sandbox", "-p", promises];
        if landlock {
            argv.extend(["-v", "r:/dev/zero", "-v", &unveil_exe]);
        } else {
            argv.push("-V");
        }
        argv.extend(["--", &exe, &n, open]);
        Row {
            variant: Variant::new(name, &argv),
            baseline: Some(base),
            floor: Some(base + 1),
        }
    };
    let rows = [
        Row {
            variant: Variant::new("unfiltered: getppid+fstat+read", &[&exe, &n, "0"]),
            baseline: None,
            floor: None,
        },
        Row {
            variant: Variant::new(
                "floor: 1-instruction allow-all filter",
                &[&exe, &n, "0", "floor"],
            ),
            baseline: Some(0),
            floor: None,
        },
        sandboxed("stdio (-V)", "stdio", false, "0", 0),
        Row {
            variant: Variant::new("unfiltered: + openat/close", &[&exe, &n, "1"]),
            baseline: None,
            floor: None,
        },
        Row {
            variant: Variant::new(
                "floor: + openat/close, allow-all filter",
                &[&exe, &n, "1", "floor"],
            ),
            baseline: Some(3),
            floor: None,
        },
        sandboxed(
            "stdio rpath, unveil r:/dev/zero",
            "stdio rpath",
            true,
            "1",
            3,
        ),
        sandboxed(
            "stdio rpath (-V, seccomp only)",
            "stdio rpath",
            false,
            "1",
            3,
        ),
        sandboxed("all 24 promises, unveil r:/dev/zero", &all, true, "1", 3),
        sandboxed("all 24 promises (-V, seccomp only)", &all, false, "1", 3),
    ];
    let mut samples = vec![Vec::with_capacity(runs); rows.len()];
    // One warm-up pass, then `runs` interleaved passes.
    for pass in 0..=runs {
        for (i, row) in rows.iter().enumerate() {
            let out = row.variant.run_capture("/dev/zero")?;
            let ns: f64 = out.trim().parse().map_err(|_| MeasureError::Output {
                what: row.variant.name.clone(),
                output: out.clone(),
            })?;
            if pass > 0 {
                samples[i].push(ns);
            }
        }
    }
    let p50: Vec<f64> = samples.iter().map(|s| Summary::of(s).p50).collect();
    let mut table = Table::new(&[
        "loop (per iteration)",
        "p50",
        "vs unfiltered",
        "goal ≤1.05x",
        "vs allow-all filter",
    ]);
    let mut goals = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (vs, v) = match row.baseline {
            Some(b) => (ratio(p50[i], p50[b]), verdict(p50[i], p50[b], GOAL)),
            None => ("baseline".to_string(), ""),
        };
        let vs_floor = row.floor.map(|f| ratio(p50[i], p50[f])).unwrap_or_default();
        if row.baseline.is_some() {
            let beyond = if vs_floor.is_empty() {
                String::new()
            } else {
                format!("; {vs_floor} of the allow-all floor")
            };
            goals.push(format!(
                "filter cost {}: {vs} ({v}){beyond}",
                row.variant.name
            ));
        }
        table.row(vec![
            row.variant.name.clone(),
            human_ns(p50[i]),
            vs,
            v.to_string(),
            vs_floor,
        ]);
    }
    Ok(FilterResult { table, goals })
}
