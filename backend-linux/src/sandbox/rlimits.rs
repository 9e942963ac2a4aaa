//! Resource limits from the plan. `None` leaves the inherited limit in place; a value sets
//! soft and hard (RLIMIT_CPU: hard one second later, so SIGXCPU comes before SIGKILL).

use super::SandboxError;
use pledge_core::RlimitPlan;

/// The limits to apply, as (resource, soft, hard, name).
pub(crate) type Limits = Vec<(u32, u64, u64, &'static str)>;

/// Turns the plan into setrlimit calls.
// The resource type is u32 on glibc and c_int on musl; the casts are not no-ops everywhere.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn from_plan(p: &RlimitPlan) -> Limits {
    let mut v = Vec::new();
    let mut push = |res: u32, val: Option<u64>, extra: u64, name| {
        if let Some(x) = val {
            v.push((res, x, x.saturating_add(extra), name));
        }
    };
    push(libc::RLIMIT_NOFILE as u32, p.nofile, 0, "RLIMIT_NOFILE");
    push(libc::RLIMIT_NPROC as u32, p.nproc, 0, "RLIMIT_NPROC");
    push(libc::RLIMIT_FSIZE as u32, p.fsize, 0, "RLIMIT_FSIZE");
    push(libc::RLIMIT_CPU as u32, p.cpu, 1, "RLIMIT_CPU");
    push(libc::RLIMIT_AS as u32, p.address_space, 0, "RLIMIT_AS");
    v
}

/// Applies the limits. Raising above the current hard limit without privilege is retried
/// clamped to it (pledge.com's SetLimit).
pub(crate) fn apply(limits: &Limits) -> Result<(), SandboxError> {
    for &(res, soft, hard, name) in limits {
        let want = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `want` is a valid rlimit struct on our stack.
        if unsafe { libc::setrlimit(res as _, &want) } == 0 {
            continue;
        }
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `cur` is a valid out-pointer.
        if unsafe { libc::getrlimit(res as _, &mut cur) } != 0 {
            return Err(SandboxError::last_os(format!("getrlimit({name})")));
        }
        let clamped = libc::rlimit {
            rlim_cur: soft.min(cur.rlim_max),
            rlim_max: hard.min(cur.rlim_max),
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(res as _, &clamped) } != 0 {
            return Err(SandboxError::last_os(format!("setrlimit({name}, {soft})")));
        }
    }
    Ok(())
}
