//! The per-task supervisor: the plugin binary re-executed as `nomad-pledge-driver supervise`.

use std::ffi::OsString;

/// Entry point of the `supervise` subcommand; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let _ = args;
    eprintln!("nomad-pledge-driver supervise: not built yet");
    2
}
