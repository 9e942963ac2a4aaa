//! CPU percentages from two raw [`Usage`] samples, for the TaskStats stream.
//!
//! Nomad shows `cpu.percent` as percent of **one** core (200 = two cores busy), and the user
//! and system modes likewise. The result is correct from the first sample when the stream
//! starts from [`Usage::baseline`] at the task's start time: CPU counters start at zero there.

use crate::backend::Usage;
use std::time::SystemTime;

/// CPU use between two samples, in percent of one core.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuPercent {
    /// User mode.
    pub user: f64,
    /// System (kernel) mode.
    pub system: f64,
    /// Both.
    pub total: f64,
}

impl Usage {
    /// The zero sample at `started_at`: what a task's cgroup counters read when it starts.
    pub fn baseline(started_at: SystemTime) -> Self {
        Self {
            at: Some(started_at),
            ..Self::default()
        }
    }
}

/// CPU percent of one core between `prev` and `cur`. Zero when either lacks a timestamp, time
/// did not advance, or a counter went backwards (a reset, e.g. after re-attach to a new cgroup).
pub fn cpu_percent(prev: &Usage, cur: &Usage) -> CpuPercent {
    let elapsed_ns = match (prev.at, cur.at) {
        (Some(a), Some(b)) => match b.duration_since(a) {
            Ok(d) if !d.is_zero() => d.as_nanos() as f64,
            _ => return CpuPercent::default(),
        },
        _ => return CpuPercent::default(),
    };
    let (Some(user), Some(system)) = (
        cur.cpu_user_ns.checked_sub(prev.cpu_user_ns),
        cur.cpu_system_ns.checked_sub(prev.cpu_system_ns),
    ) else {
        return CpuPercent::default();
    };
    let pct = |ns: u64| ns as f64 * 100.0 / elapsed_ns;
    CpuPercent {
        user: pct(user),
        system: pct(system),
        total: pct(user.saturating_add(system)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, user_ms: u64, sys_ms: u64) -> Usage {
        Usage {
            at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + secs)),
            cpu_user_ns: user_ms * 1_000_000,
            cpu_system_ns: sys_ms * 1_000_000,
            ..Usage::default()
        }
    }

    #[test]
    fn first_sample_against_task_start() {
        let start = Usage::baseline(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
        let p = cpu_percent(&start, &at(2, 500, 500));
        assert_eq!(
            p,
            CpuPercent {
                user: 25.0,
                system: 25.0,
                total: 50.0
            }
        );
    }

    #[test]
    fn two_busy_cores_is_two_hundred_percent() {
        let p = cpu_percent(&at(1, 0, 0), &at(2, 1500, 500));
        assert_eq!(p.total, 200.0);
        assert_eq!(p.user, 150.0);
    }

    #[test]
    fn degenerate_inputs_are_zero_not_nan_or_panic() {
        assert_eq!(
            cpu_percent(&at(2, 0, 0), &at(2, 10, 10)),
            CpuPercent::default()
        );
        assert_eq!(
            cpu_percent(&at(3, 0, 0), &at(2, 10, 10)),
            CpuPercent::default()
        );
        assert_eq!(
            cpu_percent(&at(1, 50, 0), &at(2, 10, 10)),
            CpuPercent::default()
        );
        assert_eq!(
            cpu_percent(&Usage::default(), &at(2, 10, 10)),
            CpuPercent::default()
        );
        let big = Usage {
            cpu_user_ns: u64::MAX,
            cpu_system_ns: u64::MAX,
            ..at(2, 0, 0)
        };
        assert!(cpu_percent(&at(1, 0, 0), &big).total.is_finite());
    }
}
