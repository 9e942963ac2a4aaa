//! `nomad-pledge-driver run JOB.hcl`: the local runner. It plays the part of a Nomad client for
//! one job file, so a newcomer sees a sandboxed task in one command and without a cluster: it
//! lays out the alloc dir, builds the task environment, renders literal templates, creates the
//! log FIFOs, then drives this very binary as a plugin over the real protocol (go-plugin
//! handshake, BasePlugin, Driver), exactly as Nomad would.
//!
//! Owns: job-file reading ([`job`]), hclspec + cty-msgpack encoding ([`spec`], [`encode`]),
//! alloc dir, env, ports, templates, logs, the plugin client and the failure hints.
//! Must not: decide anything the driver decides (validation, sandboxing, lifecycle) — the
//! plugin does that, as under Nomad; the runner only reports what it answered.

pub mod agent;
pub mod allocdir;
pub mod cgroup;
pub mod encode;
pub mod env;
pub mod hcl_eval;
pub mod hints;
pub mod job;
pub mod logs;
pub mod plugin;
pub mod ports;
pub mod session;
pub mod spec;
pub mod taskconfig;
pub mod template;

use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

/// Run a job file's `driver = "pledge"` tasks locally, through the plugin, as Nomad would.
#[derive(Debug, Parser)]
#[command(
    name = "nomad-pledge-driver run",
    about = "Run a job file's pledge tasks locally, through the plugin protocol, as Nomad would",
    after_help = "Ctrl-C stops the tasks with their kill_signal and kill_timeout.\n\
                  Exit status: the task's exit code (128+N when killed by signal N), 1 when a \
                  task failed to start, 125 when the runner or the plugin failed."
)]
struct Cli {
    /// The job file (HCL2 jobspec), e.g. hack/http.hcl.
    job: PathBuf,
    /// Run only this task.
    #[arg(long)]
    task: Option<String>,
    /// Run only this group.
    #[arg(long)]
    group: Option<String>,
    /// Agent config with a `plugin "nomad-pledge-driver" { config { … } }` block.
    #[arg(long, value_name = "FILE")]
    plugin_config: Option<PathBuf>,
    /// Stop the tasks after this long (Go duration: 30s, 2m), as Ctrl-C would.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Show every plugin log line, not only warnings and errors.
    #[arg(long, short)]
    verbose: bool,
    /// Keep the temporary alloc dir afterwards and print where it is.
    #[arg(long)]
    keep: bool,
    /// The plugin binary to drive (default: this executable).
    #[arg(long, value_name = "PATH")]
    plugin: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    job::parse_go_duration(s)
}

/// Entry point of the `run` subcommand; `args` are the arguments after `run`.
pub fn main(args: &[OsString]) -> i32 {
    let argv =
        std::iter::once(OsString::from("nomad-pledge-driver run")).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nomad-pledge-driver run: cannot start the async runtime: {e}");
            return session::EXIT_RUNNER_FAILED;
        }
    };
    let opts = session::Options {
        job: cli.job,
        group: cli.group,
        task: cli.task,
        plugin_config: cli.plugin_config,
        timeout: cli.timeout,
        verbose: cli.verbose,
        keep: cli.keep,
        plugin: cli.plugin,
    };
    match rt.block_on(session::run(opts)) {
        Ok(code) => code,
        Err(e) => {
            session::say(&format!("error: {e}"));
            session::EXIT_RUNNER_FAILED
        }
    }
}
