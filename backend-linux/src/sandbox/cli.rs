//! `nomad-pledge-driver sandbox [-p PROMISES]... [-v [PERM:]PATH]... [-u USER] [-g GROUP]
//! [-k] [-V] [-T pledge|unveil] -- COMMAND [ARGS...]`
//!
//! Flags mean what they mean for pledge.com (pledge.md a.9): default promises `stdio rpath`,
//! `-k` kills instead of EPERM, `-V` skips unveil, `-T` tests for support (exit 0 yes, 1 no,
//! 2 unknown test). The plan it builds goes through the same [`super::prepare`] /
//! [`super::enter_and_exec`] path as the driver's tasks. Exit codes follow pledge.com where it
//! has one: 1 usage, 10 program not found, 20 bad unveil, 21 bad promise, 127 exec failed.
//! Ours: `-B` accepts partial Landlock enforcement (the plugin's `unveil_best_effort`);
//! `--bind-port=N` / `--connect-port=N` restrict TCP ports (the task's `bind_ports` /
//! `connect_ports`); `--net-bind-service` keeps CAP_NET_BIND_SERVICE as an ambient
//! capability. pledge.com's limits `-O -P -F -M -C` set RLIMIT_NOFILE/NPROC/FSIZE/AS/CPU
//! (unlike pledge.com, unset limits stay inherited, and -C is plain seconds).

use super::{enter_and_exec, prepare, SandboxError};
use pledge_core::config::RlimitDefaults;
use pledge_core::policy::unveils;
use pledge_core::sandbox::plan::{CgroupPlan, NamespacePlan};
use pledge_core::{PromiseSet, SandboxMode, SandboxPlan, TaskId, UnveilRule};
use std::ffi::OsString;
use std::path::PathBuf;

const USAGE: &str = "usage: nomad-pledge-driver sandbox [-p PROMISES]... [-v [PERM:]PATH]... \
[-u USER] [-g GROUP] [-k] [-V] [-B] [-T pledge|unveil] [-O N] [-P N] [-F N] [-M N] [-C N] [--net-bind-service] [--bind-port=N]... [--connect-port=N]... \
-- COMMAND [ARGS...]

  -p PROMISES  pledge promises, space separated, repeatable (default: stdio rpath)
  -v PERM:PATH unveil PATH with PERM letters r w x c (default r), repeatable
  -u USER      run as USER (name or uid)
  -g GROUP     run as GROUP (name or gid)
  -k           kill the process on a violation instead of failing the call with EPERM
  -V           do not unveil (seccomp only)
  -B           run even if the kernel can only partly enforce the unveils
  -T WHAT      test whether `pledge` or `unveil` is supported; exit 0 if so, 1 if not
  -O FILES     RLIMIT_NOFILE     -P PROCS  RLIMIT_NPROC     -C SECS  RLIMIT_CPU
  -F BYTES     RLIMIT_FSIZE      -M BYTES  RLIMIT_AS        (sizes take k, m, g)
  --net-bind-service
               keep CAP_NET_BIND_SERVICE (ambient) to bind ports below 1024 as a non-root user
  --bind-port=N, --connect-port=N
               allow only these TCP ports for bind/connect (Landlock ABI 4), repeatable
";

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) promises: Vec<String>,
    pub(crate) unveils: Vec<String>,
    pub(crate) user: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) kill: bool,
    pub(crate) no_unveil: bool,
    pub(crate) best_effort: bool,
    pub(crate) test: Option<String>,
    pub(crate) rlimits: RlimitDefaults,
    pub(crate) net_bind_service: bool,
    pub(crate) bind_ports: Option<Vec<u16>>,
    pub(crate) connect_ports: Option<Vec<u16>>,
    pub(crate) help: bool,
    pub(crate) command: Vec<String>,
}

/// Parses getopt-style: `-p X`, `-pX`, clustered flags (`-kV`), `--` ends options, the first
/// non-option starts the command.
pub(crate) fn parse(args: &[OsString]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .peekable();
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if arg == "--net-bind-service" {
            out.net_bind_service = true;
            continue;
        }
        if let Some(rest) = arg.strip_prefix("--") {
            let (name, val) = rest
                .split_once('=')
                .ok_or_else(|| format!("option --{rest} needs =PORT"))?;
            let port: u16 = val
                .parse()
                .map_err(|_| format!("--{name}: {val:?} is not a port (0-65535)"))?;
            match name {
                "bind-port" => out.bind_ports.get_or_insert_with(Vec::new).push(port),
                "connect-port" => out.connect_ports.get_or_insert_with(Vec::new).push(port),
                _ => return Err(format!("unknown option --{name}")),
            }
            continue;
        }
        if !arg.starts_with('-') || arg == "-" {
            out.command.push(arg);
            break;
        }
        for (i, c) in arg[1..].char_indices() {
            match c {
                'k' => out.kill = true,
                'V' => out.no_unveil = true,
                'B' => out.best_effort = true,
                'h' => out.help = true,
                'p' | 'v' | 'u' | 'g' | 'T' | 'O' | 'P' | 'F' | 'M' | 'C' => {
                    let rest = &arg[1 + i + 1..];
                    let val = if rest.is_empty() {
                        it.next()
                            .ok_or_else(|| format!("option -{c} needs a value"))?
                    } else {
                        rest.to_string()
                    };
                    match c {
                        'p' => out.promises.push(val),
                        'v' => out.unveils.push(val),
                        'u' => out.user = Some(val),
                        'g' => out.group = Some(val),
                        'T' => out.test = Some(val),
                        lim => {
                            let n = parse_size(&val).ok_or_else(|| {
                                format!(
                                    "-{lim}: {val:?} is not a number (suffixes k, m, g allowed)"
                                )
                            })?;
                            let r = &mut out.rlimits;
                            match lim {
                                'O' => r.nofile = Some(n),
                                'P' => r.nproc = Some(n),
                                'F' => r.fsize = Some(n),
                                'M' => r.address_space = Some(n),
                                _ => r.cpu = Some(n),
                            }
                        }
                    }
                    break;
                }
                other => return Err(format!("unknown option -{other}")),
            }
        }
    }
    out.command.extend(it);
    Ok(out)
}

/// `123`, `64k`, `512m`, `4g` (powers of 1024, as pledge.com's sizetol).
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()?.to_ascii_lowercase() {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Why a command line could not become a plan, with pledge.com's exit code.
#[derive(Debug)]
pub(crate) struct PlanError {
    pub(crate) code: i32,
    pub(crate) message: String,
}

/// Builds the plan the subcommand runs.
pub(crate) fn build_plan(a: &Args) -> Result<SandboxPlan, PlanError> {
    let promises = if a.promises.is_empty() {
        PromiseSet::default_cli()
    } else {
        PromiseSet::parse(&a.promises.join(" ")).map_err(|e| PlanError {
            code: 21,
            message: format!("-p: {e}"),
        })?
    };
    let mut rules = Vec::with_capacity(a.unveils.len());
    for v in &a.unveils {
        rules.push(UnveilRule::parse(v).map_err(|e| PlanError {
            code: 20,
            message: format!("-v {v:?}: {e}"),
        })?);
    }
    let env: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != "LD_PRELOAD" && k != "_PLEDGE")
        .collect();
    let tmp_dir = PathBuf::from(env.get("TMPDIR").map_or("/tmp", String::as_str));
    let mut defaults = unveils::promise_unveils(&promises);
    if promises.contains(pledge_core::Promise::Tmppath) {
        defaults.push(UnveilRule::new(
            tmp_dir.clone(),
            pledge_core::UnveilPerm::READ
                | pledge_core::UnveilPerm::WRITE
                | pledge_core::UnveilPerm::CREATE,
        ));
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut argv = a.command.iter();
    let command = argv.next().cloned().unwrap_or_default();
    let task = TaskId::parse("sandbox-cli").map_err(|e| PlanError {
        code: 1,
        message: e.to_string(),
    })?;
    Ok(SandboxPlan {
        task,
        alloc_id: String::new(),
        task_name: "sandbox".into(),
        command,
        args: argv.cloned().collect(),
        env,
        cwd,
        user: a.user.clone(),
        group: a.group.clone(),
        stdout: PathBuf::new(),
        stderr: PathBuf::new(),
        promises,
        unveil: unveils::merge(rules.into_iter().chain(defaults)),
        unveil_enabled: !a.no_unveil,
        unveil_best_effort: a.best_effort,
        kill_on_violation: a.kill,
        mode: SandboxMode::Enforce,
        namespaces: NamespacePlan::default(),
        cgroup: CgroupPlan::default(),
        rlimits: a.rlimits.clone(),
        bind_ports: a.bind_ports.clone(),
        connect_ports: a.connect_ports.clone(),
        net_bind_service: a.net_bind_service,
        tmp_dir,
        pledge_executable: None,
        state_dir: PathBuf::new(),
    })
}

fn exit_code(e: &SandboxError) -> i32 {
    match e {
        SandboxError::ProgramNotFound { .. } => 10,
        SandboxError::UnveilPath { .. } | SandboxError::LandlockUnenforceable { .. } => 20,
        SandboxError::Exec { .. } => 127,
        _ => 1,
    }
}

/// Prints `e` with its causes on one line.
fn print_error(e: &dyn std::error::Error) {
    eprintln!(
        "nomad-pledge-driver sandbox: {}",
        pledge_core::backend::error_chain(e)
    );
}

/// Entry point of the `sandbox` subcommand; returns the exit code (it execs on success).
pub fn main(args: &[OsString]) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nomad-pledge-driver sandbox: {e}\n{USAGE}");
            return 1;
        }
    };
    if a.help {
        print!("{USAGE}");
        return 0;
    }
    if let Some(t) = &a.test {
        return match t.as_str() {
            "pledge" => i32::from(!super::report::seccomp_available()),
            "unveil" => i32::from(super::landlock_rules::probe_abi() == 0),
            _ => 2,
        };
    }
    if a.command.is_empty() {
        eprintln!("nomad-pledge-driver sandbox: missing COMMAND\n{USAGE}");
        return 1;
    }
    let plan = match build_plan(&a) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nomad-pledge-driver sandbox: {}", e.message);
            return e.code;
        }
    };
    let prepared = match prepare(&plan) {
        Ok(p) => p,
        Err(e) => {
            print_error(&e);
            return exit_code(&e);
        }
    };
    if std::env::var_os("PLEDGE_SANDBOX_REPORT").is_some() {
        if let Ok(j) = serde_json::to_string(prepared.report()) {
            eprintln!("{j}");
        }
    }
    match enter_and_exec(prepared) {
        Ok(never) => match never {},
        Err(e) => {
            print_error(&e);
            exit_code(&e)
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
    fn parses_like_getopt() {
        let a = parse(&os(&[
            "-p", "stdio", "-pinet", "-kV", "-v", "rw:/tmp", "--", "ls", "-l",
        ]))
        .expect("parses");
        assert_eq!(a.promises, vec!["stdio", "inet"]);
        assert_eq!(a.unveils, vec!["rw:/tmp"]);
        assert!(a.kill && a.no_unveil);
        assert_eq!(a.command, vec!["ls", "-l"]);
        let a = parse(&os(&["-u", "nobody", "true", "-p", "x"])).expect("parses");
        assert_eq!(
            a.command,
            vec!["true", "-p", "x"],
            "options stop at the command"
        );
        assert!(parse(&os(&["-p"])).is_err());
        assert!(parse(&os(&["-z"])).is_err());
        let a = parse(&os(&[
            "-O",
            "1024",
            "-M4g",
            "-C",
            "5",
            "--net-bind-service",
            "x",
        ]))
        .expect("parses");
        assert_eq!(a.rlimits.nofile, Some(1024));
        assert_eq!(a.rlimits.address_space, Some(4 << 30));
        assert_eq!(a.rlimits.cpu, Some(5));
        assert!(a.net_bind_service);
        assert!(parse(&os(&["-O", "lots", "x"])).is_err());
        assert!(parse(&os(&["--bind-port=70000", "x"])).is_err());
    }

    #[test]
    fn plan_defaults_and_errors() {
        let a = parse(&os(&["--", "true"])).expect("parses");
        let p = build_plan(&a).expect("plan");
        assert_eq!(p.promises.to_string(), "stdio rpath");
        assert!(p
            .unveil
            .iter()
            .any(|r| r.path == std::path::Path::new("/dev/null")));
        let bad = parse(&os(&["-p", "stdio inett", "true"])).expect("parses");
        assert_eq!(build_plan(&bad).map(|_| ()).unwrap_err().code, 21);
        let bad = parse(&os(&["-v", "r:relative", "true"])).expect("parses");
        assert_eq!(build_plan(&bad).map(|_| ()).unwrap_err().code, 20);
    }
}
