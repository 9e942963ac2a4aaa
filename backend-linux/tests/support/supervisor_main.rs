//! Test-only stand-in for the plugin binary's subcommand dispatch: backend-linux's integration
//! tests cannot depend on the grpc crate's `nomad-pledge-driver`, so they run the runtime's
//! `supervise` subcommand (and `sandbox`) from this small binary instead. Production always
//! re-executes the plugin binary itself.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let rest = args.get(2..).unwrap_or(&[]);
    let code = match args.get(1).and_then(|a| a.to_str()) {
        Some("supervise") => pledge_backend_linux::runtime::supervisor::main(rest),
        Some("sandbox") => pledge_backend_linux::sandbox::cli::main(rest),
        Some("plugin-sim") => plugin_sim(),
        _ => {
            eprintln!("usage: pledge-runtime-test-supervisor supervise|sandbox|plugin-sim ...");
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// A stand-in plugin process for the "SIGKILL the plugin" test: reads one SandboxPlan per
/// stdin line, launches each with a LinuxBackend whose supervisor is this binary, prints each
/// DriverState as a JSON line, then waits to be killed.
fn plugin_sim() -> i32 {
    use pledge_core::Backend;
    use std::io::{BufRead, Write};
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("plugin-sim: {e}");
            return 1;
        }
    };
    let opts = pledge_backend_linux::runtime::BackendOptions {
        supervisor_exe: exe,
        ..Default::default()
    };
    let mut backend = match pledge_backend_linux::runtime::LinuxBackend::with_options(
        std::sync::Arc::new(|| {}),
        opts,
    ) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("plugin-sim: {e}");
            return 1;
        }
    };
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.is_empty() {
            break;
        }
        let plan: pledge_core::SandboxPlan = match serde_json::from_str(&line) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("plugin-sim: bad plan: {e}");
                return 1;
            }
        };
        match backend.launch(&plan) {
            Ok(l) => {
                let _ = serde_json::to_writer(&mut out, &l.state);
                let _ = writeln!(out);
                let _ = out.flush();
            }
            Err(e) => {
                eprintln!(
                    "plugin-sim: launch: {}",
                    pledge_core::backend::error_chain(&e)
                );
                return 1;
            }
        }
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
