//! `nomad-pledge-driver learn [-v]... [--seconds N] [--json FILE] -- COMMAND [ARGS...]`
//!
//! Runs COMMAND under observation (environment, cwd and `$TMPDIR` as the `sandbox` subcommand
//! would give it), then prints the learned `config { }` block on stdout. The exit status is the
//! program's (128+N for signal N), or 0 when learn stopped it (`--seconds`, Ctrl-C). `--job` is
//! handled by the plugin binary (it needs the local runner) and ends in [`learn_plan`].

use super::observe::{observe, LearnError, ObserveOptions, Observed};
use super::record::Recorder;
use super::report::{learn_config, LearnInputs, Learned};
use pledge_core::policy::unveils::{self, TaskDirs};
use pledge_core::{Promise, PromiseSet, SandboxPlan, UnveilPerm, UnveilRule};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The usage text.
pub const USAGE: &str =
    "usage: nomad-pledge-driver learn [-v]... [--seconds N] [--json FILE] -- COMMAND [ARGS...]
       nomad-pledge-driver learn [-v]... [--seconds N] [--json FILE] --job JOB.hcl [--task NAME]

Runs the program with every syscall observed (seccomp user notification; nothing is denied)
and prints the smallest `promises` and the `unveil` rules that allow everything it did, as a
config { } block to paste into the task.

  -v            print each new distinct call as it happens (-vv: every path too)
  --seconds N   stop the program (SIGTERM, then SIGKILL) after N seconds
  --json FILE   also write the result as JSON to FILE
  --job FILE    learn a task of a job file, laid out as the local runner does (Ctrl-C stops it)
  --task NAME   which task of the job (default: the only pledge task)
";

/// Learn-mode settings shared by the command and job forms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Verbosity (count of `-v`).
    pub verbose: u8,
    /// `--seconds`.
    pub deadline: Option<Duration>,
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--job FILE`.
    pub job: Option<PathBuf>,
    /// `--task NAME`.
    pub task: Option<String>,
    /// `-h`.
    pub help: bool,
    /// COMMAND ARGS...
    pub command: Vec<String>,
}

/// Parses the command line (after `learn`).
pub fn parse(args: &[OsString]) -> Result<Settings, String> {
    let mut s = Settings::default();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--" => break,
            "-h" | "--help" => s.help = true,
            "--seconds" => {
                let v = value("--seconds")?;
                let n: f64 = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite() && *n > 0.0)
                    .ok_or_else(|| format!("--seconds: {v:?} is not a positive number"))?;
                s.deadline = Some(Duration::from_secs_f64(n));
            }
            "--json" => s.json = Some(PathBuf::from(value("--json")?)),
            "--job" => s.job = Some(PathBuf::from(value("--job")?)),
            "--task" => s.task = Some(value("--task")?),
            v if v.starts_with("-v") && v[1..].chars().all(|c| c == 'v') => {
                s.verbose = s
                    .verbose
                    .saturating_add(u8::try_from(v.len() - 1).unwrap_or(u8::MAX));
            }
            v if v.starts_with('-') => return Err(format!("unknown option {v}")),
            v => {
                s.command.push(v.to_string());
                break;
            }
        }
    }
    s.command.extend(it);
    Ok(s)
}

/// What the sandbox adds by itself for `plan`'s program, found by preparing it exactly as
/// enforcement will (same program resolution, same ELF inspection).
fn sandbox_additions(
    plan: &SandboxPlan,
) -> Result<(PathBuf, PromiseSet, Vec<UnveilRule>), LearnError> {
    let mut probe = plan.clone();
    probe.promises = PromiseSet::new();
    probe.unveil_enabled = false;
    probe.user = None;
    probe.group = None;
    let prepared = crate::sandbox::prepare(&probe)?;
    let report = prepared.report();
    let rx = UnveilPerm::READ | UnveilPerm::EXEC;
    let mut extra = vec![UnveilRule::new(report.program.clone(), rx)];
    if let Some(i) = &report.interpreter {
        extra.push(UnveilRule::new(i.clone(), rx));
    }
    if report.implicit_promises.contains(Promise::ProtExec) {
        extra.extend(unveils::loader_unveils());
    }
    Ok((
        report.program.clone(),
        report.implicit_promises.clone(),
        extra,
    ))
}

/// Observes `plan`'s program (its command, args, env and cwd; no namespaces, cgroup or user
/// switch) and learns its configuration. `task_dirs`: a Nomad task's directories and the alloc
/// dir they are in (`--job`).
pub fn learn_plan(
    plan: &SandboxPlan,
    task_dirs: Option<(TaskDirs, PathBuf)>,
    settings: &Settings,
    stop_on_signal: bool,
) -> Result<(Learned, Observed), LearnError> {
    let (program, implicit, extra_defaults) = sandbox_additions(plan)?;
    let opts = ObserveOptions {
        program,
        argv: std::iter::once(plan.command.clone())
            .chain(plan.args.iter().cloned())
            .collect(),
        env: plan.env.clone(),
        cwd: plan.cwd.clone(),
        deadline: settings.deadline,
        stop_on_signal,
        verbose: settings.verbose,
    };
    let observed = observe(&opts, Recorder::new())?;
    let learned = learn_config(
        &observed.recorder,
        &LearnInputs {
            implicit,
            extra_defaults,
            path_names: task_dirs
                .as_ref()
                .map(|(d, _)| {
                    vec![
                        (d.local_dir.clone(), "${NOMAD_TASK_DIR}".to_string()),
                        (d.secrets_dir.clone(), "${NOMAD_SECRETS_DIR}".to_string()),
                        (d.alloc_data_dir.clone(), "${NOMAD_ALLOC_DIR}".to_string()),
                    ]
                })
                .unwrap_or_default(),
            unnamed_root: task_dirs.as_ref().map(|(_, root)| root.clone()),
            task_dirs: task_dirs.map(|(d, _)| d),
            tmp_dir: Some(plan.tmp_dir.clone()),
        },
    );
    Ok((learned, observed))
}

/// Prints the result (block on stdout, summary on stderr, JSON file) and returns the exit code.
pub fn finish(learned: &Learned, observed: &Observed, settings: &Settings) -> i32 {
    eprintln!(
        "nomad-pledge-driver learn: program {}; {} notifications in {:.2}s",
        if observed.stopped {
            "stopped by learn".to_string()
        } else {
            format!("exited with status {}", observed.exit.status())
        },
        observed.notifications,
        observed.elapsed.as_secs_f64()
    );
    print!("{}", learned.to_hcl());
    if let Some(path) = &settings.json {
        if let Err(e) = std::fs::write(path, learned.to_json()) {
            eprintln!("nomad-pledge-driver learn: writing {}: {e}", path.display());
            return 1;
        }
    }
    if observed.stopped {
        0
    } else {
        observed.exit.status()
    }
}

/// Prints `e` with its causes on one line.
pub fn print_error(e: &dyn std::error::Error) {
    eprintln!(
        "nomad-pledge-driver learn: {}",
        pledge_core::backend::error_chain(e)
    );
}

/// Entry point of `learn -- COMMAND`; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let settings = match parse(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nomad-pledge-driver learn: {e}\n{USAGE}");
            return 1;
        }
    };
    if settings.help {
        print!("{USAGE}");
        return 0;
    }
    if settings.job.is_some() {
        eprintln!("nomad-pledge-driver learn: --job is handled by the plugin binary\n{USAGE}");
        return 1;
    }
    run_command(&settings)
}

/// `learn -- COMMAND`: the plan the `sandbox` subcommand would build for COMMAND.
pub fn run_command(settings: &Settings) -> i32 {
    if settings.command.is_empty() {
        eprintln!("nomad-pledge-driver learn: missing COMMAND\n{USAGE}");
        return 1;
    }
    let cli = crate::sandbox::cli::Args {
        command: settings.command.clone(),
        ..Default::default()
    };
    let plan = match crate::sandbox::cli::build_plan(&cli) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nomad-pledge-driver learn: {}", e.message);
            return e.code;
        }
    };
    match learn_plan(&plan, None, settings, true) {
        Ok((learned, observed)) => finish(&learned, &observed, settings),
        Err(e) => {
            print_error(&e);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses() {
        let s = parse(&os(&[
            "-vv",
            "--seconds",
            "2.5",
            "--json",
            "/tmp/x",
            "--",
            "ls",
            "-l",
        ]))
        .expect("ok");
        assert_eq!(s.verbose, 2);
        assert_eq!(s.deadline, Some(Duration::from_millis(2500)));
        assert_eq!(s.command, vec!["ls", "-l"]);
        let s = parse(&os(&["ls", "-v"])).expect("ok");
        assert_eq!((s.verbose, s.command.len()), (0, 2));
        assert!(parse(&os(&["--seconds", "-1", "ls"])).is_err());
        assert!(parse(&os(&["--seconds"])).is_err());
        assert!(parse(&os(&["--bogus"])).is_err());
    }
}
