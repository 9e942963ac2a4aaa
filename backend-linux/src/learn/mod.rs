//! Learn mode: run a program under observation and tell the operator which promises and
//! unveils it needs.
//!
//! Owns: the observer ([`observe`]: a seccomp filter that answers every syscall with
//! `SECCOMP_RET_USER_NOTIF`, and a loop in the parent that records each call and lets it
//! continue), the recording of calls and paths ([`record`]), the minimal promise set ([`cover`],
//! an exact set cover over the core's promise table — the same data the enforcing filter is
//! compiled from), the unveil collapse ([`paths`]) and the output ([`report`], [`cli`]).
//!
//! Must not: enforce anything (the observed program runs with everything allowed, except the
//! calls enforcement always answers with ENOSYS, which are answered the same way so the program
//! takes the same code paths it will take when enforced), or decide policy of its own: whether a
//! call is allowed is always [`pledge_core::policy::promises::promises_allowing`].
//!
//! Contract: [`observe::observe`] forks; call it before any thread is started (the CLI does, from
//! `main`'s subcommand dispatch).

pub mod cli;
pub mod complain;
pub mod cover;
pub mod observe;
pub mod paths;
pub mod record;
pub mod report;

pub use observe::{observe, LearnError, ObserveOptions, Observed};
pub use record::{Recorder, Requirement};
pub use report::{learn_config, LearnInputs, Learned};
