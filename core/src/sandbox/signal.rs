//! Linux signals by name. The table is Linux x86_64/aarch64 numbering (identical for these).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A signal that may be sent to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Signal(i32);

/// Name → number, for every standard Linux signal.
const TABLE: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGIOT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPOLL", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// Why a signal name was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?} (expected a name like SIGTERM, SIGHUP, SIGUSR1, or SIGRTMIN+N)")]
pub struct SignalError(pub String);

impl Signal {
    /// SIGTERM, the default stop signal.
    pub const TERM: Self = Self(15);
    /// SIGKILL.
    pub const KILL: Self = Self(9);
    /// SIGINT.
    pub const INT: Self = Self(2);
    /// First real-time signal as glibc exposes it.
    const RTMIN: i32 = 34;
    /// Last real-time signal.
    const RTMAX: i32 = 64;

    /// Parses `SIGTERM`, `TERM`, `sigterm`, `SIGRTMIN+3` or `SIGRTMAX-1`. Unknown names are an
    /// error, never silently mapped to another signal.
    pub fn parse(name: &str) -> Result<Self, SignalError> {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper.clone()
        } else {
            format!("SIG{upper}")
        };
        if let Some((_, n)) = TABLE.iter().find(|(n, _)| *n == full) {
            return Ok(Self(*n));
        }
        let rt = |base: i32, rest: &str, sign: i32| -> Option<Self> {
            let off: i32 = if rest.is_empty() {
                0
            } else {
                rest.parse().ok()?
            };
            let n = base + sign * off;
            (Self::RTMIN..=Self::RTMAX).contains(&n).then_some(Self(n))
        };
        let parsed = if let Some(rest) = full.strip_prefix("SIGRTMIN") {
            rest.strip_prefix('+').map_or_else(
                || rest.is_empty().then_some(Self(Self::RTMIN)),
                |r| rt(Self::RTMIN, r, 1),
            )
        } else if let Some(rest) = full.strip_prefix("SIGRTMAX") {
            rest.strip_prefix('-').map_or_else(
                || rest.is_empty().then_some(Self(Self::RTMAX)),
                |r| rt(Self::RTMAX, r, -1),
            )
        } else {
            None
        };
        parsed.ok_or_else(|| SignalError(name.chars().take(64).collect()))
    }

    /// From a raw number, if it is a valid Linux signal.
    pub fn from_number(n: i32) -> Option<Self> {
        (1..=Self::RTMAX).contains(&n).then_some(Self(n))
    }

    /// The signal number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The canonical name (`SIGTERM`, `SIGRTMIN+2`).
    pub fn name(self) -> String {
        if let Some((n, _)) = TABLE.iter().find(|(_, v)| *v == self.0) {
            return (*n).to_string();
        }
        if self.0 >= Self::RTMIN {
            return format!("SIGRTMIN+{}", self.0 - Self::RTMIN);
        }
        format!("SIG{}", self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
