//! Injected failures, chosen up front by the generator (never by a hidden RNG), so proptest can
//! shrink them and a regression file replays them.

use pledge_core::{FailureClass, TaskId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A backend operation that can be made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultyOp {
    /// [`pledge_core::Backend::launch`].
    Launch,
    /// [`pledge_core::Backend::signal`].
    Signal,
    /// [`pledge_core::Backend::sample`].
    Sample,
    /// [`pledge_core::Backend::cleanup`].
    Cleanup,
}

impl fmt::Display for FaultyOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Launch => "launch",
            Self::Signal => "signal",
            Self::Sample => "sample",
            Self::Cleanup => "cleanup",
        })
    }
}

/// Which calls fail, and how. Keys are 0-based ordinals of calls to that operation over the
/// backend's whole life (plugin crashes included), whatever their arguments, so "the 3rd
/// launch fails" is stable under shrinking of unrelated steps. An injected failure has no
/// effect besides the error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The nth `launch` fails with this class; nothing is created.
    pub fail_launch: BTreeMap<u32, FailureClass>,
    /// The nth `signal` fails; the signal is not delivered.
    pub fail_signal: BTreeMap<u32, FailureClass>,
    /// The nth `sample` fails.
    pub fail_sample: BTreeMap<u32, FailureClass>,
    /// The nth `cleanup` fails; nothing is removed (a later cleanup may succeed).
    pub fail_cleanup: BTreeMap<u32, FailureClass>,
    /// Tasks whose supervisor dies while the plugin is down (at [`crate::FakeBackend::crash_plugin`]),
    /// so their re-attach finds nothing: the task's processes are killed and no status is recorded.
    pub reattach_gone: BTreeSet<TaskId>,
}

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// The planned failure of call number `nth` of `op`, if any.
    pub(crate) fn planned(&self, op: FaultyOp, nth: u32) -> Option<FailureClass> {
        let map = match op {
            FaultyOp::Launch => &self.fail_launch,
            FaultyOp::Signal => &self.fail_signal,
            FaultyOp::Sample => &self.fail_sample,
            FaultyOp::Cleanup => &self.fail_cleanup,
        };
        map.get(&nth).copied()
    }
}
