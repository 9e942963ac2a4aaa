//! `nomad-pledge-driver sandbox [-p PROMISES]... [-v [PERM:]PATH]... -- COMMAND [ARGS...]`.

use std::ffi::OsString;

/// Entry point of the `sandbox` subcommand; returns the exit code (it execs on success).
pub fn main(args: &[OsString]) -> i32 {
    let _ = args;
    eprintln!("nomad-pledge-driver sandbox: not built yet");
    2
}
