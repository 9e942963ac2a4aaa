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
        _ => {
            eprintln!("usage: pledge-runtime-test-supervisor supervise|sandbox ...");
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
