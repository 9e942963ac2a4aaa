//! Timing helpers: run commands interleaved (so drift and noise hit every variant alike),
//! summarize samples, and format ratios against a baseline measured in the same run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The program could not be started.
    #[error("cannot run {what}: {source}")]
    Spawn {
        /// The variant.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// It ran but failed.
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        /// The variant.
        what: String,
        /// Its exit status.
        status: String,
        /// The tail of its stderr.
        stderr: String,
    },
    /// Its output was not what the harness expects.
    #[error("{what}: unexpected output {output:?}")]
    Output {
        /// The variant.
        what: String,
        /// What it printed.
        output: String,
    },
}

/// One way of launching a program, by name.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Short label for the table.
    pub name: String,
    /// argv.
    pub argv: Vec<String>,
}

impl Variant {
    /// A variant from a label and argv.
    pub fn new(name: &str, argv: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        c
    }

    /// Runs once to completion, stdout discarded; the wall time from spawn to reaped exit.
    pub fn time_once(&self) -> Result<Duration, MeasureError> {
        let mut c = self.command();
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let out = c.output().map_err(|source| MeasureError::Spawn {
            what: self.name.clone(),
            source,
        })?;
        let took = start.elapsed();
        if !out.status.success() {
            return Err(self.failed(&out));
        }
        Ok(took)
    }

    /// Runs once with stdin from `stdin_path`, returning stdout (for self-timing programs).
    pub fn run_capture(&self, stdin_path: &str) -> Result<String, MeasureError> {
        let stdin = std::fs::File::open(stdin_path).map_err(|source| MeasureError::Spawn {
            what: self.name.clone(),
            source,
        })?;
        let mut c = self.command();
        c.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = c.output().map_err(|source| MeasureError::Spawn {
            what: self.name.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(self.failed(&out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn failed(&self, out: &std::process::Output) -> MeasureError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        MeasureError::Failed {
            what: self.name.clone(),
            status: out.status.to_string(),
            stderr: tail,
        }
    }
}

/// Summary of samples, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Smallest.
    pub min: f64,
}

impl Summary {
    /// Summarizes `samples` (any order).
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Self {
            n: s.len(),
            p50: percentile(&s, 50.0),
            p99: percentile(&s, 99.0),
            min: s[0],
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Times every variant `rounds` times, interleaved round-robin after one warm-up round.
/// Returns per-variant samples in ns, in the order given.
pub fn interleaved(variants: &[Variant], rounds: usize) -> Result<Vec<Vec<f64>>, MeasureError> {
    for v in variants {
        v.time_once()?;
    }
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, v) in variants.iter().enumerate() {
            samples[i].push(v.time_once()?.as_nanos() as f64);
        }
    }
    Ok(samples)
}

/// `1.23x`, or `-` when the baseline is zero.
pub fn ratio(value: f64, baseline: f64) -> String {
    if baseline <= 0.0 {
        return "-".to_string();
    }
    format!("{:.2}x", value / baseline)
}

/// A verdict against a goal ratio (`value/baseline <= goal`).
pub fn verdict(value: f64, baseline: f64, goal: f64) -> &'static str {
    if baseline <= 0.0 {
        "n/a"
    } else if value / baseline <= goal {
        "meets goal"
    } else {
        "MISSES goal"
    }
}

/// Human units for a nanosecond figure (only ever printed next to a ratio).
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), 50.0);
        assert_eq!(percentile(&s, 99.0), 99.0);
        assert_eq!(percentile(&s, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        let sum = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((sum.n, sum.p50, sum.min), (3, 2.0, 1.0));
    }

    #[test]
    fn ratios_and_verdicts() {
        assert_eq!(ratio(150.0, 100.0), "1.50x");
        assert_eq!(ratio(1.0, 0.0), "-");
        assert_eq!(verdict(80.0, 100.0, 0.8), "meets goal");
        assert_eq!(verdict(81.0, 100.0, 0.8), "MISSES goal");
    }
}
