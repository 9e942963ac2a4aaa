//! How a fake task's main process behaves: when it exits by itself, how it answers signals, how
//! many children it forks.

use std::time::Duration;

/// What the main process does with a catchable, terminating signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalResponse {
    /// The default action: terminating signals kill it at once; SIGCHLD, SIGCONT, SIGURG and
    /// SIGWINCH are ignored; stop signals are ignored too (job control is not modelled).
    #[default]
    Default,
    /// It ignores (or blocks) every signal it can; only SIGKILL ends it.
    Ignore,
    /// It handles the signal and exits with `code` after `delay` (a server draining). Further
    /// signals during the drain change nothing, except SIGKILL.
    ExitAfter {
        /// How long the drain takes.
        delay: Duration,
        /// The exit code it then exits with.
        code: i32,
    },
}

/// The behaviour of one launched task, set with [`crate::FakeBackend::set_script`] before the
/// launch. The default runs until it is signalled or killed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcScript {
    /// Exit by itself with this code after this long.
    pub exit_after: Option<(Duration, i32)>,
    /// Signal handling.
    pub on_signal: SignalResponse,
    /// Children forked at launch. They live in the task's cgroup and survive the main process's
    /// own exit (daemons), dying only by `kill_all`, an OOM kill, a lost supervisor or `cleanup`.
    pub children: u8,
    /// How long a SIGKILL or `kill_all` takes to end the processes. Zero: at once. Real kills
    /// are asynchronous (`cgroup.kill` returns before the processes are reaped), so the exit
    /// is observed later; a non-zero delay lets the sim explore that window.
    pub reap_delay: Duration,
}

impl ProcScript {
    /// Runs until signalled.
    pub fn forever() -> Self {
        Self::default()
    }

    /// Exits by itself with `code` after `after`.
    pub fn exits(after: Duration, code: i32) -> Self {
        Self {
            exit_after: Some((after, code)),
            ..Self::default()
        }
    }

    /// Ignores every catchable signal.
    pub fn ignoring_signals(mut self) -> Self {
        self.on_signal = SignalResponse::Ignore;
        self
    }

    /// Kills take `delay` to end the processes.
    pub fn reaped_after(mut self, delay: Duration) -> Self {
        self.reap_delay = delay;
        self
    }

    /// Forks `n` children at launch.
    pub fn with_children(mut self, n: u8) -> Self {
        self.children = n;
        self
    }
}
