//! nomad-pledge-driver: the plugin binary. Subcommands are dispatched before any thread or
//! async runtime starts, because the supervisor and the launcher fork and exec; the default
//! (no subcommand) serves the plugin to a Nomad agent.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let rest = args.get(2..).unwrap_or(&[]);
    let code = match args.get(1).and_then(|a| a.to_str()) {
        Some("sandbox") => pledge_backend_linux::sandbox::cli::main(rest),
        Some("supervise") => pledge_backend_linux::runtime::supervisor::main(rest),
        Some("run") => pledge_grpc::runner::main(rest),
        Some("learn") => pledge_grpc::learn_job::main(rest),
        _ => serve_plugin(),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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
