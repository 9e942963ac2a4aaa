//! The launcher's own start-up leaves nothing behind in the program it execs: the plugin
//! binary skips std's runtime start-up for `sandbox` (see grpc/src/main.rs), so std's
//! ignored SIGPIPE is not inherited, and `true` still runs with the launch-benchmark flags.

mod sandbox_common;
use sandbox_common::*;
use std::process::Stdio;

/// SigIgn of the sandboxed program, as a bit mask.
fn ignored_signals_of_sandboxed_cat() -> u64 {
    let out = sandbox_cmd(&["-p", "stdio rpath", "--", "cat", "/proc/self/status"])
        .stdin(Stdio::null())
        .output()
        .expect("spawn sandbox");
    assert!(out.status.success(), "cat failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn line");
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

#[test]
fn sandboxed_program_does_not_inherit_an_ignored_sigpipe() {
    if !require_root() {
        return;
    }
    // std::process::Command resets SIGPIPE in the launcher it spawns, so an ignored SIGPIPE in
    // the program could only come from the launcher's own start-up.
    let sigpipe_bit = 1u64 << (13 - 1);
    assert_eq!(
        ignored_signals_of_sandboxed_cat() & sigpipe_bit,
        0,
        "SIGPIPE ignored in the sandboxed program"
    );
}

#[test]
fn launch_benchmark_command_runs() {
    if !require_root() {
        return;
    }
    let st = sandbox_cmd(&["-p", "stdio rpath", "-v", "r:/usr", "--", "true"])
        .status()
        .expect("spawn sandbox");
    assert!(st.success(), "{st:?}");
}
