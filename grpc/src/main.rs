//! nomad-pledge-driver: the plugin binary. Subcommands are dispatched before any thread or
//! async runtime starts, because the supervisor and the launcher fork and exec; the default
//! (no subcommand) serves the plugin to a Nomad agent.
//!
//! `#![no_main]`: std's start-up (`lang_start`) costs about 0.2 ms of CPU per exec on our
//! 2-core VM (it reads /proc/self/maps for the main thread's stack guard, installs a
//! sigaltstack SIGSEGV handler, polls fds 0-2, ignores SIGPIPE). The `sandbox` launcher runs
//! once per task start and execs at once, so it skips all of that — which also keeps std's
//! ignored SIGPIPE from leaking into the sandboxed program. The long-running subcommands get
//! the parts they rely on from [`long_running_init`]. std itself needs no init: on glibc it
//! reads argv from its own `.init_array` hook.

// Under `cargo test --all-targets` the bin is also built as a test harness, which brings its
// own `main`: only then are std's entry point and an unused dispatcher allowed.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]

use std::ffi::OsString;
use std::io::Write;

/// The C entry point glibc's start code calls; argc/argv come to std through its own hook.
// The `unsafe_code` lint fires on `no_mangle`: this symbol is the process entry that replaces
// std's generated `main` (that is all `no_main` changes), so nothing else can define it.
#[allow(unsafe_code)]
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    let args: Vec<OsString> = std::env::args_os().collect();
    let rest = args.get(2..).unwrap_or(&[]);
    let sub = args.get(1).and_then(|a| a.to_str());
    if sub != Some("sandbox") {
        long_running_init();
    }
    let code = match sub {
        Some("sandbox") => pledge_backend_linux::sandbox::cli::main(rest),
        Some("supervise") => pledge_backend_linux::runtime::supervisor::main(rest),
        Some("run") => pledge_grpc::runner::main(rest),
        Some("learn") => pledge_grpc::learn_job::main(rest),
        _ => serve_plugin(),
    };
    // std's runtime would flush stdout at exit; returning to libc does not.
    let _ = std::io::stdout().flush();
    std::ffi::c_int::from(u8::try_from(code).unwrap_or(1))
}

/// What std's start-up did that the plugin, runner, learner and supervisor rely on: fds 0-2
/// are open (so a later socket or log file never lands on stdout), and SIGPIPE is ignored
/// (a write to a closed pipe or socket is an EPIPE error, not death).
fn long_running_init() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    // Opening /dev/null takes the lowest free fd: keep the ones that land on 0-2.
    while let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        if f.as_raw_fd() > 2 {
            break;
        }
        let _stays_open_as_std_fd = f.into_raw_fd();
    }
    ignore_sigpipe();
}

#[allow(unsafe_code)]
fn ignore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code; we are still single-threaded here.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Nomad launches the binary without arguments (or with the agent's `args`, which we ignore).
/// The Linux runtime backs the shell; if it cannot start (no epoll or eventfd: a broken
/// host), the plugin still serves, fingerprints UNHEALTHY and refuses to start tasks.
fn serve_plugin() -> i32 {
    use pledge_grpc::plugin::Wired;
    use pledge_grpc::unwired::Fallback;
    pledge_grpc::plugin::main(|waker| {
        match pledge_backend_linux::runtime::LinuxBackend::new(waker) {
            Ok(b) => Wired {
                backend: Fallback::Real(b),
                runtime: true,
                exec: Some(std::sync::Arc::new(pledge_grpc::linux::LinuxExec::default())),
            },
            Err(e) => {
                eprintln!("nomad-pledge-driver: task runtime unavailable: {e}");
                Wired {
                    backend: Fallback::Unwired(pledge_grpc::unwired::UnwiredBackend),
                    runtime: false,
                    exec: None,
                }
            }
        }
    })
}
