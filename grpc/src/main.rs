//! nomad-pledge-driver: the plugin binary and its subcommands. Subcommands are dispatched before
//! any thread or async runtime starts, because the supervisor and the launcher fork and exec.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let rest = args.get(2..).unwrap_or(&[]);
    let code = match args.get(1).and_then(|a| a.to_str()) {
        Some("sandbox") => pledge_backend_linux::sandbox::cli::main(rest),
        Some("supervise") => pledge_backend_linux::runtime::supervisor::main(rest),
        _ => {
            eprintln!("nomad-pledge-driver: plugin serving not built yet");
            1
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
